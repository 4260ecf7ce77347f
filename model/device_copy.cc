#include "model/device_copy.h"

#include <cstring>

namespace rmt {

torch::Tensor IndexTensor(const std::vector<int64_t>& values,
                          torch::Device device) {
  const bool pinned = device.is_cuda();
  torch::Tensor host =
      torch::empty({static_cast<int64_t>(values.size())},
                   torch::dtype(torch::kLong).pinned_memory(pinned));
  if (!values.empty()) {
    std::memcpy(host.data_ptr<int64_t>(), values.data(),
                values.size() * sizeof(int64_t));
  }
  if (!pinned) return host.to(device);
  return host.to(device, /*non_blocking=*/true);
}

}  // namespace rmt
