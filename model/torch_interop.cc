#include "model/torch_interop.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rmt {

absl::StatusOr<torch::ScalarType> ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return torch::kFloat;
    case DType::kF16:
      return torch::kHalf;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI32:
      return torch::kInt;
    case DType::kI64:
      return torch::kLong;
  }
  return absl::InvalidArgumentError("unknown dtype");
}

absl::StatusOr<DType> ToDType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return DType::kF32;
    case torch::kHalf:
      return DType::kF16;
    case torch::kBFloat16:
      return DType::kBF16;
    case torch::kInt:
      return DType::kI32;
    case torch::kLong:
      return DType::kI64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported tensor dtype ", c10::toString(type)));
  }
}

absl::StatusOr<torch::Tensor> TensorFromView(const TensorView& view) {
  auto type = ToScalarType(view.dtype);
  if (!type.ok()) return type.status();
  torch::Tensor out = torch::empty(view.shape, torch::dtype(*type));
  if (static_cast<size_t>(out.nbytes()) != view.nbytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor of ", view.nbytes, " bytes does not match shape ",
                     c10::str(out.sizes())));
  }
  if (view.nbytes > 0) std::memcpy(out.data_ptr(), view.data, view.nbytes);
  return out;
}

absl::StatusOr<TensorView> ViewOfTensor(const torch::Tensor& tensor) {
  if (!tensor.device().is_cpu() || !tensor.is_contiguous()) {
    return absl::InvalidArgumentError("tensor must be contiguous on the CPU");
  }
  auto dtype = ToDType(tensor.scalar_type());
  if (!dtype.ok()) return dtype.status();
  TensorView view;
  view.dtype = *dtype;
  view.shape = tensor.sizes().vec();
  view.data = tensor.data_ptr();
  view.nbytes = tensor.nbytes();
  return view;
}

absl::StatusOr<HostTensor> ToHostTensor(const torch::Tensor& tensor) {
  torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  auto view = ViewOfTensor(cpu);
  if (!view.ok()) return view.status();
  HostTensor host;
  host.dtype = view->dtype;
  host.shape = view->shape;
  host.bytes.assign(static_cast<const char*>(view->data), view->nbytes);
  return host;
}

absl::StatusOr<torch::Tensor> FromHostTensor(const HostTensor& host) {
  TensorView view;
  view.dtype = host.dtype;
  view.shape = host.shape;
  view.data = host.bytes.data();
  view.nbytes = host.bytes.size();
  for (int64_t d : host.shape) {
    if (d < 0) return absl::InvalidArgumentError("negative tensor dimension");
  }
  return TensorFromView(view);
}

absl::StatusOr<torch::Device> ParseDevice(absl::string_view name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  }
  int index = 0;
  if (name == "cuda" ||
      (absl::StartsWith(name, "cuda:") &&
       absl::SimpleAtoi(name.substr(5), &index) && index >= 0)) {
    if (!torch::cuda::is_available()) {
      return absl::UnavailableError(absl::StrCat(
          "device \"", name,
          "\" asked for, but this build or machine has no CUDA device"));
    }
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::InvalidArgumentError(
          absl::StrCat("device \"", name, "\": only ",
                       torch::cuda::device_count(), " CUDA devices"));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown device \"", name, "\" (use cpu, cuda, cuda:N or auto)"));
}

absl::StatusOr<torch::ScalarType> ParseComputeDType(absl::string_view name) {
  if (name == "float32" || name == "fp32") return torch::kFloat;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kHalf;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype \"", std::string(name),
                   "\" (use float32, bfloat16 or float16)"));
}

torch::ScalarType ScalarTypeOf(MemoryDType dtype) {
  switch (dtype) {
    case MemoryDType::kBFloat16:
      return torch::kBFloat16;
    case MemoryDType::kFloat16:
      return torch::kHalf;
    case MemoryDType::kFloat32:
      break;
  }
  return torch::kFloat;
}

}  // namespace rmt
