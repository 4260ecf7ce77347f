#include "model/bert.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace rmt {
namespace F = torch::nn::functional;

namespace {

torch::nn::LayerNorm MakeLayerNorm(const ModelConfig& config) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size})
                                  .eps(config.layer_norm_eps));
}

torch::Tensor Activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kGelu:
      return torch::gelu(x);  // exact (erf) GELU, as BERT's "gelu"
    case Activation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::kRelu:
      return torch::relu(x);
  }
  return torch::gelu(x);
}

}  // namespace

double MaskedScore(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kHalf:
      return -65504.0;
    case torch::kBFloat16:
      // bf16 has float's exponent but fewer mantissa bits: float's lowest
      // rounds past bf16's, which torch refuses as an overflow.
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kFloat:
      return std::numeric_limits<float>::lowest();
    default:
      return std::numeric_limits<double>::lowest();
  }
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const ModelConfig& config)
    : dropout_(config.hidden_dropout_prob) {
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(config.vocab_size, config.hidden_size));
  position_embeddings = register_module(
      "position_embeddings",
      torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
  token_type_embeddings = register_module(
      "token_type_embeddings",
      torch::nn::Embedding(config.type_vocab_size, config.hidden_size));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(config));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& inputs_embeds) {
  const int64_t length = inputs_embeds.size(1);
  // Every segment restarts at position 0 and token type 0: segments are
  // independent BERT inputs, tied together only through the memory.
  torch::Tensor positions = position_embeddings->weight.slice(0, 0, length);
  torch::Tensor token_type = token_type_embeddings->weight[0];
  torch::Tensor x = inputs_embeds + positions + token_type;  // (B, T, d)
  return F::dropout(LayerNorm(x), F::DropoutFuncOptions().p(dropout_).training(
                                      is_training()));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const ModelConfig& config)
    : num_heads_(config.num_attention_heads),
      head_dim_(config.head_dim()),
      dropout_(config.attention_probs_dropout_prob) {
  const int64_t d = config.hidden_size;
  query = register_module("query", torch::nn::Linear(d, d));
  key = register_module("key", torch::nn::Linear(d, d));
  value = register_module("value", torch::nn::Linear(d, d));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x,
                                             const torch::Tensor& mask) {
  const int64_t batch = x.size(0);
  const int64_t length = x.size(1);
  auto split_heads = [&](const torch::Tensor& t) {
    return t.view({batch, length, num_heads_, head_dim_})
        .transpose(1, 2);  // (B, heads, T, head_dim)
  };
  torch::Tensor q = split_heads(query(x));
  torch::Tensor k = split_heads(key(x));
  torch::Tensor v = split_heads(value(x));
  const double dropout = is_training() ? dropout_ : 0.0;
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernels (flash / memory-efficient) where the device has them.
  torch::Tensor context =
      at::scaled_dot_product_attention(q, k, v, mask, dropout);
#else
  torch::Tensor scores =
      torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(head_dim_));
  torch::Tensor probs = torch::softmax(scores + mask, -1);  // (B, h, T, T)
  probs = F::dropout(probs,
                     F::DropoutFuncOptions().p(dropout).training(dropout > 0));
  torch::Tensor context = torch::matmul(probs, v);  // (B, heads, T, head_dim)
#endif
  return context.transpose(1, 2).reshape(
      {batch, length, num_heads_ * head_dim_});  // (B, T, d)
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in_features,
                                               const ModelConfig& config)
    : dropout_(config.hidden_dropout_prob) {
  dense = register_module("dense",
                          torch::nn::Linear(in_features, config.hidden_size));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(config));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& residual) {
  torch::Tensor h = F::dropout(
      dense(x), F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return LayerNorm(h + residual);
}

BertAttentionImpl::BertAttentionImpl(const ModelConfig& config) {
  self = register_module("self", BertSelfAttention(config));
  output =
      register_module("output", BertResidualOutput(config.hidden_size, config));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x,
                                         const torch::Tensor& mask) {
  return output(self(x, mask), x);
}

BertIntermediateImpl::BertIntermediateImpl(const ModelConfig& config)
    : activation_(config.hidden_act) {
  dense = register_module(
      "dense", torch::nn::Linear(config.hidden_size, config.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) {
  return Activate(dense(x), activation_);
}

BertLayerImpl::BertLayerImpl(const ModelConfig& config) {
  attention = register_module("attention", BertAttention(config));
  intermediate = register_module("intermediate", BertIntermediate(config));
  output = register_module(
      "output", BertResidualOutput(config.intermediate_size, config));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x,
                                     const torch::Tensor& mask) {
  torch::Tensor attended = attention(x, mask);
  return output(intermediate(attended), attended);
}

BertEncoderImpl::BertEncoderImpl(const ModelConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layer->push_back(BertLayer(config));
  }
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor x,
                                       const torch::Tensor& mask) {
  for (const auto& module : *layer) {
    x = module->as<BertLayerImpl>()->forward(x, mask);
  }
  return x;
}

BertPoolerImpl::BertPoolerImpl(const ModelConfig& config) {
  dense = register_module(
      "dense", torch::nn::Linear(config.hidden_size, config.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) {
  return torch::tanh(dense(hidden.select(1, 0)));
}

BertModelImpl::BertModelImpl(const ModelConfig& config) {
  embeddings = register_module("embeddings", BertEmbeddings(config));
  encoder = register_module("encoder", BertEncoder(config));
  pooler = register_module("pooler", BertPooler(config));
}

}  // namespace rmt
