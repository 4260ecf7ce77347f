#include "model/attention_backend.h"

#include "model/inference_encoder.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/SDPBackend.h>
#endif

namespace rmt {
namespace {

#if TORCH_VERSION_MAJOR >= 2
std::string BackendName(int64_t choice) {
  switch (static_cast<at::SDPBackend>(choice)) {
    case at::SDPBackend::math:
      return "math (unfused)";
    case at::SDPBackend::flash_attention:
      return "flash attention";
    case at::SDPBackend::efficient_attention:
      return "memory-efficient attention";
    case at::SDPBackend::cudnn_attention:
      return "cuDNN attention";
    case at::SDPBackend::overrideable:
      return "overrideable (device extension)";
    case at::SDPBackend::error:
      break;
  }
  return "none (no backend accepts these inputs)";
}
#endif

}  // namespace

StepAttentionBackends ChooseStepAttention(const ModelConfig& config,
                                          torch::Device device,
                                          torch::ScalarType dtype,
                                          int64_t batch) {
#if TORCH_VERSION_MAJOR >= 2
  c10::InferenceMode inference;
  const int64_t heads = config.num_attention_heads;
  const int64_t length = config.segment_length();
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  // q, k and v as the encoder lays them out (inference_encoder.h).
  torch::Tensor q =
      torch::zeros({batch, length, 3, heads, config.head_dim()}, options)
          .select(2, 0)
          .transpose(1, 2);  // (B, h, T, hd)
  if (!InferenceEncoder::StridedAttention(device)) q = q.contiguous();
  // The encoder's additive mask, (B, h, T, T) after its view.
  const torch::Tensor mask = torch::zeros({batch, 1, length, length}, options)
                                 .expand({batch, heads, length, length});
  const std::string masked = BackendName(at::_fused_sdp_choice(q, q, q, mask));
  // MemBottleneck masks every step (sequence tokens see only the memory),
  // so only full attention runs full segments without a mask.
  const bool always_masked =
      config.rmt.memory_attention == MemoryAttention::kBottleneck;
  return StepAttentionBackends{
      always_masked ? masked : BackendName(at::_fused_sdp_choice(q, q, q)),
      masked};
#else
  (void)config;
  (void)device;
  (void)dtype;
  (void)batch;
  const std::string own = "the encoder's own matrix products (LibTorch 1.x)";
  return StepAttentionBackends{own, own};
#endif
}

}  // namespace rmt
