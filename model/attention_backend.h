// Which kernel runs the step's attention: PyTorch's
// scaled_dot_product_attention picks one per call (flash, memory-efficient,
// cuDNN or the unfused math path) from the device, dtype, shapes and whether a
// mask is given. The benchmarks print it, since a step that silently falls back
// to the math path is several times slower on a GPU.
//
//   StepAttentionBackends b = ChooseStepAttention(config, device,
//   torch::kBFloat16, 32);
//   // b.full_segments: "flash attention", b.padded: "memory-efficient
//   attention"
//
// Thread-safety: thread-safe (allocates small tensors on `device`).
#ifndef RMT_MODEL_ATTENTION_BACKEND_H_
#define RMT_MODEL_ATTENTION_BACKEND_H_

#include <torch/torch.h>

#include <string>

#include "model/config.h"

namespace rmt {

struct StepAttentionBackends {
  // Batches of full segments: no mask with full attention, the bottleneck
  // mask with MemBottleneck.
  std::string full_segments;
  std::string padded;  // batches with padding: an additive mask
};

// The backends for `batch` rows of the model's full segment length, as
// model/inference_encoder.cc calls it. With LibTorch 1.x, which has no
// scaled_dot_product_attention, both name the encoder's own matrix products.
StepAttentionBackends ChooseStepAttention(const ModelConfig& config,
                                          torch::Device device,
                                          torch::ScalarType dtype,
                                          int64_t batch);

}  // namespace rmt

#endif  // RMT_MODEL_ATTENTION_BACKEND_H_
