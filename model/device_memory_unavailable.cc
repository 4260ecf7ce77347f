// DeviceMemory in a build without RMT_CUDA: no CUDA allocator to ask.
#include "model/device_memory.h"

namespace rmt {
namespace {

absl::Status NoCudaBuild() {
  return absl::UnimplementedError(
      "this build has no CUDA sources: build with a CUDA LibTorch 2.x and "
      "-DRMT_CUDA=ON to measure device memory");
}

}  // namespace

absl::StatusOr<DeviceMemory> DeviceMemoryInUse(torch::Device) {
  return NoCudaBuild();
}

absl::Status ResetPeakDeviceMemory(torch::Device) { return NoCudaBuild(); }

}  // namespace rmt
