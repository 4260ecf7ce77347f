// The BERT encoder (post-LayerNorm, as in Devlin et al. and Hugging Face).
//
// Module and parameter names mirror Hugging Face's BertModel, so
// named_parameters() yields "embeddings.word_embeddings.weight",
// "encoder.layer.0.attention.self.query.weight", ... and loading a checkpoint
// is a name-by-name copy. Attention takes an additive mask, so the caller
// decides who may attend to whom (padding, RMT's memory bottleneck).
//
// Thread-safety: forward() is safe to call concurrently in eval mode with
// gradients disabled; training mutates state and needs one caller.
#ifndef RMT_MODEL_BERT_H_
#define RMT_MODEL_BERT_H_

#include <torch/torch.h>

#include "model/config.h"

namespace rmt {

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const ModelConfig& config);
  // inputs_embeds: (B, T, d) word embeddings, possibly with rows replaced
  // (RMT writes the memory there); adds positions 0..T-1 and token type 0.
  torch::Tensor forward(const torch::Tensor& inputs_embeds);

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};
  torch::nn::Embedding token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const ModelConfig& config);
  // x: (B, T, d); mask: additive, broadcastable to (B, heads, T, T).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

  torch::nn::Linear query{nullptr};
  torch::nn::Linear key{nullptr};
  torch::nn::Linear value{nullptr};

 private:
  int64_t num_heads_;
  int64_t head_dim_;
  double dropout_;
};
TORCH_MODULE(BertSelfAttention);

// A projection back to the residual stream followed by post-LayerNorm; it is
// Hugging Face's BertSelfOutput and BertOutput alike.
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(int64_t in_features, const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(BertResidualOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear dense{nullptr};

 private:
  Activation activation_;
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const ModelConfig& config);
  // hidden: (B, T, d) -> tanh(dense(hidden[:, 0])): (B, d)
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const ModelConfig& config);

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertModel);

// The additive-mask value for "may not attend": the dtype's lowest finite
// value rather than -inf, so a row can never turn into NaN.
double MaskedScore(torch::ScalarType dtype);

}  // namespace rmt

#endif  // RMT_MODEL_BERT_H_
