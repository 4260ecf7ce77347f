// Conversions between torch tensors and the project's torch-free types
// (TensorView from safetensors, HostTensor for memories that leave the
// device), and device-name parsing.
#ifndef RMT_MODEL_TORCH_INTEROP_H_
#define RMT_MODEL_TORCH_INTEROP_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/config.h"
#include "model/host_tensor.h"
#include "model/safetensors.h"

namespace rmt {

absl::StatusOr<torch::ScalarType> ToScalarType(DType dtype);
absl::StatusOr<DType> ToDType(torch::ScalarType type);

// Copies the bytes of `view` into a new CPU tensor of the same dtype.
absl::StatusOr<torch::Tensor> TensorFromView(const TensorView& view);
// A view of a contiguous CPU tensor; valid while the tensor lives.
absl::StatusOr<TensorView> ViewOfTensor(const torch::Tensor& tensor);

absl::StatusOr<HostTensor> ToHostTensor(const torch::Tensor& tensor);
absl::StatusOr<torch::Tensor> FromHostTensor(const HostTensor& host);

// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else CPU).
// INVALID_ARGUMENT for other names, UNAVAILABLE when CUDA is asked for but
// this build or machine has none.
absl::StatusOr<torch::Device> ParseDevice(absl::string_view name);

// The precision weights are converted to at load: "float32", "bfloat16" or
// "float16" (also "fp32", "bf16", "fp16"). INVALID_ARGUMENT otherwise.
absl::StatusOr<torch::ScalarType> ParseComputeDType(absl::string_view name);

torch::ScalarType ScalarTypeOf(MemoryDType dtype);

}  // namespace rmt

#endif  // RMT_MODEL_TORCH_INTEROP_H_
