// KernelProfiler in a build without RMT_CUDA: no GPU kernels to profile.
#include "bench/kernel_profile.h"

namespace rmt {

KernelProfiler::~KernelProfiler() = default;

absl::Status KernelProfiler::Start() {
  return absl::UnimplementedError(
      "this build has no CUDA sources: build with a CUDA LibTorch 2.x and "
      "-DRMT_CUDA=ON to profile GPU kernels");
}

absl::StatusOr<KernelProfile> KernelProfiler::Stop(torch::Device) {
  return absl::FailedPreconditionError("the profiler was not started");
}

}  // namespace rmt
