// DeviceMemory: what PyTorch's caching allocator holds on a CUDA device, for
// benchmarks that must show memory per session and memory against document
// length (bench/rmt_bench.cc). Built only with RMT_CUDA (CUDA LibTorch 2.x);
// elsewhere every call is UNIMPLEMENTED.
//
//   RETURN_IF_ERROR(ResetPeakDeviceMemory(device));
//   ... work ...
//   ASSIGN_OR_RETURN(DeviceMemory m, DeviceMemoryInUse(device));
//
// Thread-safety: as the allocator's (safe from any thread).
#ifndef RMT_MODEL_DEVICE_MEMORY_H_
#define RMT_MODEL_DEVICE_MEMORY_H_

#include <torch/torch.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rmt {

struct DeviceMemory {
  int64_t allocated_bytes = 0;       // in live tensors now
  int64_t peak_allocated_bytes = 0;  // since the last ResetPeakDeviceMemory
  int64_t reserved_bytes = 0;        // held by the allocator (cached included)
};

// INVALID_ARGUMENT for a device that is not CUDA.
absl::StatusOr<DeviceMemory> DeviceMemoryInUse(torch::Device device);
absl::Status ResetPeakDeviceMemory(torch::Device device);

}  // namespace rmt

#endif  // RMT_MODEL_DEVICE_MEMORY_H_
