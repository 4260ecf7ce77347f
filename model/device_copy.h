// Small host-to-device copies that never block the host.
//
// Index vectors (a batch's rows, a pool's slot rows) reach a GPU through
// page-locked memory and a non-blocking copy, so the scheduler thread queues
// the rest of the batch while the copy runs: a copy from ordinary (pageable)
// memory would wait for the device. PyTorch's caching host allocator keeps
// each pinned block until the copies that read it have finished and then
// reuses it, so steady state allocates nothing from the driver. On the CPU
// this is an ordinary tensor.
//
//   torch::Tensor index = IndexTensor(rows, pool.device());  // int64 (n)
//   values.index_select(0, index);
//
// Thread-safety: safe to call from any thread.
#ifndef RMT_MODEL_DEVICE_COPY_H_
#define RMT_MODEL_DEVICE_COPY_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace rmt {

// An int64 tensor of `values` on `device`; on CUDA the copy is queued on the
// current stream and the call returns before it runs.
torch::Tensor IndexTensor(const std::vector<int64_t>& values,
                          torch::Device device);

}  // namespace rmt

#endif  // RMT_MODEL_DEVICE_COPY_H_
