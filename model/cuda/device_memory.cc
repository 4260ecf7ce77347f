#include "model/device_memory.h"

#include <c10/cuda/CUDACachingAllocator.h>

namespace rmt {
namespace {

// The allocator's statistics are kept per pool; kAggregate sums them.
constexpr size_t kAggregate =
    static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);

absl::Status CheckCuda(torch::Device device) {
  if (!device.is_cuda()) {
    return absl::InvalidArgumentError("device memory is measured on CUDA only");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DeviceMemory> DeviceMemoryInUse(torch::Device device) {
  if (absl::Status s = CheckCuda(device); !s.ok()) return s;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
      device.has_index() ? device.index() : 0);
  DeviceMemory memory;
  memory.allocated_bytes = stats.allocated_bytes[kAggregate].current;
  memory.peak_allocated_bytes = stats.allocated_bytes[kAggregate].peak;
  memory.reserved_bytes = stats.reserved_bytes[kAggregate].current;
  return memory;
}

absl::Status ResetPeakDeviceMemory(torch::Device device) {
  if (absl::Status s = CheckCuda(device); !s.ok()) return s;
  c10::cuda::CUDACachingAllocator::resetPeakStats(
      device.has_index() ? device.index() : 0);
  return absl::OkStatus();
}

}  // namespace rmt
