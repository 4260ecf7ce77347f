// InferenceEncoder: BertModel's embeddings LayerNorm and encoder for
// inference, the same math as the modules in eval mode with the weights laid
// out once for speed.
//
// - Q, K and V are one (d, 3d) matrix: one matrix product per layer.
// - Every Linear weight is kept transposed, (in, out) and contiguous: the
//   matrix products read it as it lies (measured 4-19% faster than reading
//   the (out, in) weight transposed for 9 to 141 rows, OpenBLAS, 1 thread).
// - Position 0..T-1 and token type 0 embeddings are summed into one table.
// - The last layer computes only the output rows the caller asks for (RMT
//   reads [CLS] and the memory, the first 1 + m positions); keys and values
//   still come from every position.
// - Attention is one scaled product with the additive mask (or none), a
//   softmax and one product with the values; with LibTorch 2.x it is
//   scaled_dot_product_attention, whose fused kernels need no mask where
//   nothing is masked.
//
// The modules stay the source of truth (training, saving, the autograd
// path). The fused and transposed weights and the summed table are copies,
// as much memory again as the encoder's Linear weights (BERT-base: 340 MB);
// biases and LayerNorm parameters are shared. IsCurrent() says whether any
// parameter changed since (an optimizer step, copy_, to()), and RmtModel
// rebuilds it then.
//
//   InferenceEncoder encoder(*model->bert, model->config());
//   torch::Tensor hidden = encoder.Forward(words, mask, 1 + m);  // (B, 1+m, d)
//
// Thread-safety: immutable after construction; Forward is safe to call
// concurrently. Call it with gradients off (it records no autograd graph).
#ifndef RMT_MODEL_INFERENCE_ENCODER_H_
#define RMT_MODEL_INFERENCE_ENCODER_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/bert.h"
#include "model/config.h"

namespace rmt {

class InferenceEncoder {
 public:
  InferenceEncoder(BertModelImpl& bert, const ModelConfig& config);

  // False once a parameter it was built from was written in place or given
  // new storage.
  bool IsCurrent() const;

  // Whether the attention reads q, k and v as strided views of the
  // projection's output on `device` (see strided_attention_).
  static bool StridedAttention(torch::Device device);

  // The word-embedding matrix (vocab, d): the model's own parameter.
  const torch::Tensor& word_embeddings() const { return word_embeddings_; }
  torch::ScalarType dtype() const { return word_embeddings_.scalar_type(); }

  // inputs: (B, T, d) word embeddings (RMT has written the memory in).
  // mask: additive, (T, T) or broadcastable to (B, 1, T, T); undefined when
  // every query may attend to every key. Returns the final hidden states of
  // positions [0, output_rows): (B, output_rows, d).
  torch::Tensor Forward(const torch::Tensor& inputs, const torch::Tensor& mask,
                        int64_t output_rows) const;

 private:
  struct Layer {
    torch::Tensor qkv_weight;  // (d, 3d): query | key | value columns
    torch::Tensor qkv_bias;    // (3d)
    torch::Tensor output_weight, output_bias;  // (d, d), (d)
    torch::Tensor attention_norm_weight, attention_norm_bias;
    torch::Tensor intermediate_weight, intermediate_bias;  // (d, inner)
    torch::Tensor ffn_output_weight, ffn_output_bias;      // (inner, d)
    torch::Tensor output_norm_weight, output_norm_bias;
  };
  // A parameter as it was when copied.
  struct Source {
    torch::Tensor parameter;
    const void* data = nullptr;
    int64_t version = 0;
  };

  // x: (B, T, d) contiguous; mask3 as in Forward, expanded to
  // (B * heads, T, T) or undefined. Returns (B, rows, d).
  torch::Tensor LayerForward(const Layer& layer, const torch::Tensor& x,
                             const torch::Tensor& mask3, int64_t rows) const;
  // q: (B, heads, rows, hd), k, v: (B, heads, T, hd); mask3 rows [0, rows).
  // Returns the context (B * rows, d).
  torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask3,
                       int64_t rows) const;
  // x: (B, T, n, heads, hd), the projection's output; returns its n parts
  // as (B, heads, T, hd), strided views where strided_attention_.
  std::vector<torch::Tensor> SplitHeads(const torch::Tensor& x) const;
  torch::Tensor Activate(torch::Tensor x) const;
  static torch::Tensor Widen(const torch::Tensor& x, bool widen);
  // The parameter's data (detached, shared), recorded for IsCurrent.
  torch::Tensor Track(const torch::Tensor& parameter);
  // A Linear weight (out, in) as a contiguous (in, out) copy.
  torch::Tensor Transposed(const torch::Tensor& weight);

  // Constant after construction.
  int64_t hidden_size_;
  int64_t num_heads_;
  int64_t head_dim_;
  double layer_norm_eps_;
  Activation activation_;
  // On CUDA (LibTorch 2.x) the fused attention kernels read q, k and v
  // straight out of the projection's (B, T, n, heads, hd) output (head dim
  // contiguous) and write the context as (B, T, heads, hd), so the two
  // copies per layer that a contiguous (B, heads, T, hd) layout costs go
  // away: 21% of the device time at 32 sessions of BERT-base on an H100
  // (docs/benchmarks-gpu.md). The CPU keeps the contiguous layout its
  // kernels were tuned on (docs/benchmarks.md), and LibTorch 1.13's
  // attention (bmm on views) needs it.
  bool strided_attention_;
  torch::Tensor word_embeddings_;  // the parameter's data (vocab, d)
  torch::Tensor position_type_;    // (max_positions, d)
  torch::Tensor embedding_norm_weight_, embedding_norm_bias_;
  std::vector<Layer> layers_;
  torch::ScalarType score_dtype_;  // attention scores' (float32 for bf16)
  torch::Tensor zero_;  // 0-dim, score dtype: the mask where none is needed
  std::vector<Source> sources_;
};

}  // namespace rmt

#endif  // RMT_MODEL_INFERENCE_ENCODER_H_
