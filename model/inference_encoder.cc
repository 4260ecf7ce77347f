#include "model/inference_encoder.h"

#include <torch/version.h>

#include <cmath>

namespace rmt {

InferenceEncoder::InferenceEncoder(BertModelImpl& bert,
                                   const ModelConfig& config)
    : hidden_size_(config.hidden_size),
      num_heads_(config.num_attention_heads),
      head_dim_(config.head_dim()),
      layer_norm_eps_(config.layer_norm_eps),
      activation_(config.hidden_act) {
  torch::NoGradGuard no_grad;
  BertEmbeddingsImpl& embeddings = *bert.embeddings;
  word_embeddings_ = Track(embeddings.word_embeddings->weight);
  strided_attention_ = StridedAttention(word_embeddings_.device());
  // Every segment restarts at position 0 and token type 0.
  position_type_ = Track(embeddings.position_embeddings->weight) +
                   Track(embeddings.token_type_embeddings->weight)[0];
  embedding_norm_weight_ = Track(embeddings.LayerNorm->weight);
  embedding_norm_bias_ = Track(embeddings.LayerNorm->bias);
  for (const auto& module : *bert.encoder->layer) {
    BertLayerImpl& source = *module->as<BertLayerImpl>();
    BertSelfAttentionImpl& self = *source.attention->self;
    Layer layer;
    layer.qkv_weight =
        torch::cat({Track(self.query->weight), Track(self.key->weight),
                    Track(self.value->weight)})
            .t()
            .contiguous();  // (d, 3d)
    layer.qkv_bias = torch::cat({Track(self.query->bias), Track(self.key->bias),
                                 Track(self.value->bias)});
    BertResidualOutputImpl& attention_output = *source.attention->output;
    layer.output_weight = Transposed(attention_output.dense->weight);
    layer.output_bias = Track(attention_output.dense->bias);
    layer.attention_norm_weight = Track(attention_output.LayerNorm->weight);
    layer.attention_norm_bias = Track(attention_output.LayerNorm->bias);
    layer.intermediate_weight = Transposed(source.intermediate->dense->weight);
    layer.intermediate_bias = Track(source.intermediate->dense->bias);
    layer.ffn_output_weight = Transposed(source.output->dense->weight);
    layer.ffn_output_bias = Track(source.output->dense->bias);
    layer.output_norm_weight = Track(source.output->LayerNorm->weight);
    layer.output_norm_bias = Track(source.output->LayerNorm->bias);
    layers_.push_back(std::move(layer));
  }
  // Scores and softmax in float32 even when the weights are reduced
  // precision, as LibTorch 2.x's fused kernels compute them: rounding the
  // scores to bf16 before the softmax costs more accuracy than all else.
  const torch::ScalarType dtype = word_embeddings_.scalar_type();
  score_dtype_ = dtype == torch::kBFloat16 || dtype == torch::kHalf
                     ? torch::kFloat
                     : dtype;
  zero_ = torch::zeros({}, word_embeddings_.options().dtype(score_dtype_));
}

bool InferenceEncoder::StridedAttention(torch::Device device) {
  return TORCH_VERSION_MAJOR >= 2 && device.is_cuda();
}

torch::Tensor InferenceEncoder::Track(const torch::Tensor& parameter) {
  sources_.push_back(
      Source{parameter, parameter.data_ptr(), parameter._version()});
  return parameter.detach();
}

torch::Tensor InferenceEncoder::Transposed(const torch::Tensor& weight) {
  return Track(weight).t().contiguous();
}

bool InferenceEncoder::IsCurrent() const {
  for (const Source& source : sources_) {
    if (source.parameter.data_ptr() != source.data ||
        source.parameter._version() != source.version) {
      return false;
    }
  }
  return true;
}

torch::Tensor InferenceEncoder::Forward(const torch::Tensor& inputs,
                                        const torch::Tensor& mask,
                                        int64_t output_rows) const {
  const int64_t batch = inputs.size(0);
  const int64_t length = inputs.size(1);
  TORCH_CHECK(length <= position_type_.size(0), "a segment of ", length,
              " positions; the model has ", position_type_.size(0));
  TORCH_CHECK(output_rows >= 1 && output_rows <= length, "output rows ",
              output_rows, " of ", length);
  torch::Tensor x = at::layer_norm(inputs + position_type_.narrow(0, 0, length),
                                   {hidden_size_}, embedding_norm_weight_,
                                   embedding_norm_bias_, layer_norm_eps_);
  // The mask once per call as (B * heads, T, T): a view when it is the same
  // for every row, else materialised here rather than in every layer.
  torch::Tensor mask3;
  if (mask.defined()) {
    const int64_t rows = batch * num_heads_;
    mask3 = mask.dim() == 2 ? mask.expand({rows, length, length})
                            : mask.expand({batch, num_heads_, length, length})
                                  .reshape({rows, length, length});
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool last = i + 1 == layers_.size();
    x = LayerForward(layers_[i], x, mask3, last ? output_rows : length);
  }
  return x;
}

torch::Tensor InferenceEncoder::LayerForward(const Layer& layer,
                                             const torch::Tensor& x,
                                             const torch::Tensor& mask3,
                                             int64_t rows) const {
  const int64_t batch = x.size(0);
  const int64_t length = x.size(1);
  const int64_t d = hidden_size_;
  const torch::Tensor x2 = x.view({batch * length, d});
  torch::Tensor q, k, v;   // (B, heads, rows or T, head_dim)
  torch::Tensor residual;  // (B * rows, d)
  if (rows == length) {
    std::vector<torch::Tensor> qkv =
        SplitHeads(at::addmm(layer.qkv_bias, x2, layer.qkv_weight)
                       .view({batch, length, 3, num_heads_, head_dim_}));
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
    residual = x2;
  } else {
    // Keys and values from every position, queries only for `rows`.
    std::vector<torch::Tensor> kv =
        SplitHeads(at::addmm(layer.qkv_bias.narrow(0, d, 2 * d), x2,
                             layer.qkv_weight.narrow(1, d, 2 * d))
                       .view({batch, length, 2, num_heads_, head_dim_}));
    k = kv[0];
    v = kv[1];
    residual = x.narrow(1, 0, rows).reshape({batch * rows, d});
    q = SplitHeads(at::addmm(layer.qkv_bias.narrow(0, 0, d), residual,
                             layer.qkv_weight.narrow(1, 0, d))
                       .view({batch, rows, 1, num_heads_, head_dim_}))[0];
  }
  torch::Tensor attended = at::addmm(
      layer.output_bias, Attend(q, k, v, mask3, rows), layer.output_weight);
  attended.add_(residual);
  attended = at::layer_norm(attended, {d}, layer.attention_norm_weight,
                            layer.attention_norm_bias, layer_norm_eps_);
  torch::Tensor out =
      at::addmm(layer.ffn_output_bias,
                Activate(at::addmm(layer.intermediate_bias, attended,
                                   layer.intermediate_weight)),
                layer.ffn_output_weight);
  out.add_(attended);
  return at::layer_norm(out, {d}, layer.output_norm_weight,
                        layer.output_norm_bias, layer_norm_eps_)
      .view({batch, rows, d});
}

torch::Tensor InferenceEncoder::Attend(const torch::Tensor& q,
                                       const torch::Tensor& k,
                                       const torch::Tensor& v,
                                       const torch::Tensor& mask3,
                                       int64_t rows) const {
  const int64_t batch = q.size(0);
  const int64_t length = k.size(2);
#if TORCH_VERSION_MAJOR >= 2
  // Without a mask the fused (flash / memory-efficient) kernels can run.
  c10::optional<torch::Tensor> mask;
  if (mask3.defined()) {
    mask = mask3.view({batch, num_heads_, length, length}).narrow(2, 0, rows);
  }
  torch::Tensor context =
      at::scaled_dot_product_attention(q, k, v, mask);  // (B, h, rows, hd)
#else
  const int64_t heads = batch * num_heads_;
  const torch::ScalarType dtype = q.scalar_type();
  const bool widen = score_dtype_ != dtype;
  const torch::Tensor q3 = Widen(q.view({heads, rows, head_dim_}), widen);
  const torch::Tensor k3t =
      Widen(k.view({heads, length, head_dim_}), widen).transpose(1, 2);
  // mask + scale * q k^T in one call; zeros where nothing is masked.
  const torch::Tensor bias = mask3.defined()
                                 ? Widen(mask3.narrow(1, 0, rows), widen)
                                 : zero_.expand({heads, rows, length});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  torch::Tensor scores = at::baddbmm(bias, q3, k3t, 1.0, scale);
  torch::Tensor probs = at::_softmax(scores, -1, false);  // (B*h, rows, T)
  torch::Tensor context = at::bmm(widen ? probs.to(dtype) : probs,
                                  v.view({heads, length, head_dim_}))
                              .view({batch, num_heads_, rows, head_dim_});
#endif
  return context.transpose(1, 2).reshape({batch * rows, hidden_size_});
}

std::vector<torch::Tensor> InferenceEncoder::SplitHeads(
    const torch::Tensor& x) const {
  torch::Tensor heads = x.permute({2, 0, 3, 1, 4});  // (n, B, heads, T, hd)
  if (!strided_attention_) heads = heads.contiguous();
  return heads.unbind(0);
}

torch::Tensor InferenceEncoder::Widen(const torch::Tensor& x, bool widen) {
  return widen ? x.to(torch::kFloat) : x;
}

torch::Tensor InferenceEncoder::Activate(torch::Tensor x) const {
  switch (activation_) {
    case Activation::kGelu:
      return at::gelu_(x);  // exact (erf) GELU, as BERT's "gelu"
    case Activation::kGeluTanh:
      return at::gelu_(x, "tanh");
    case Activation::kRelu:
      return at::relu_(x);
  }
  return at::gelu_(x);
}

}  // namespace rmt
