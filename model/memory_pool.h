// MemoryPool: every session's RMT memory in one preallocated device tensor.
//
// The pool owns a (device_capacity, m, d) tensor on the model's device. A
// session's memory is a slot: an id that maps to a row of that tensor while
// it is resident, or to a host-memory copy while it is parked. A batch reads
// its slots with one indexed read (Gather) and writes them back with one
// indexed write (Scatter), so a forward pass over sessions costs two copies,
// not one per session.
//
// When the device rows run out, the least recently used slot that no batch
// is using is moved to host memory (up to host_capacity slots); only when
// both are full does Allocate fail with RESOURCE_EXHAUSTED. Bringing a parked
// slot back never fails while any resident slot is unpinned: the two swap
// places, even when host memory is full.
//
// Thread-safety: all methods are thread-safe. Slots handed to Gather stay
// pinned (never evicted or offloaded) until Unpin.
#ifndef RMT_MODEL_MEMORY_POOL_H_
#define RMT_MODEL_MEMORY_POOL_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rmt {

using SlotId = uint64_t;

struct MemoryPoolOptions {
  int64_t device_capacity = 1024;  // memories resident on the device
  int64_t host_capacity = 0;       // further memories parked in host memory
};

struct MemoryPoolStats {
  int64_t slots = 0;      // allocated slots
  int64_t resident = 0;   // of which on the device
  int64_t offloaded = 0;  // of which in host memory
  int64_t device_capacity = 0;
  int64_t host_capacity = 0;
  int64_t bytes_per_slot = 0;
  int64_t device_bytes = 0;  // the preallocated device tensor
  int64_t host_bytes = 0;    // host copies of offloaded slots
  int64_t offloads = 0;      // total moves to host memory
  int64_t restores = 0;      // total moves back to the device
};

class MemoryPool {
 public:
  // initial_memory: (m, d) on any device; its dtype is the pool's dtype.
  static absl::StatusOr<std::unique_ptr<MemoryPool>> Create(
      const MemoryPoolOptions& options, const torch::Tensor& initial_memory,
      torch::Device device);

  // A new slot holding the initial memory.
  absl::StatusOr<SlotId> Allocate() ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND for unknown slots, FAILED_PRECONDITION while pinned.
  absl::Status Free(SlotId slot) ABSL_LOCKS_EXCLUDED(mu_);

  // (B, m, d) memories of `slots` (repeats allowed), made resident first;
  // pins them until Unpin. When the slots' rows are consecutive and in
  // order, the result is a view of the pool (no copy): read it before
  // Scatter or Unpin and never write to it. NOT_FOUND for unknown slots,
  // RESOURCE_EXHAUSTED if they cannot all be resident at once.
  absl::StatusOr<torch::Tensor> Gather(const std::vector<SlotId>& slots)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes values (B, m, d) to `slots` (distinct, pinned by Gather).
  absl::Status Scatter(const std::vector<SlotId>& slots,
                       const torch::Tensor& values) ABSL_LOCKS_EXCLUDED(mu_);
  void Unpin(const std::vector<SlotId>& slots) ABSL_LOCKS_EXCLUDED(mu_);

  // Moves an unpinned slot to host memory (no-op if already there).
  absl::Status Offload(SlotId slot) ABSL_LOCKS_EXCLUDED(mu_);
  // A CPU copy (m, d) of a slot's memory, wherever it lives.
  absl::StatusOr<torch::Tensor> Read(SlotId slot) ABSL_LOCKS_EXCLUDED(mu_);
  // Overwrites an unpinned slot's memory with `value` (m, d).
  absl::Status Write(SlotId slot, const torch::Tensor& value)
      ABSL_LOCKS_EXCLUDED(mu_);

  bool Contains(SlotId slot) const ABSL_LOCKS_EXCLUDED(mu_);
  bool IsResident(SlotId slot) const ABSL_LOCKS_EXCLUDED(mu_);
  MemoryPoolStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return initial_.scalar_type(); }

 private:
  struct Slot {
    int64_t row = -1;    // device row, -1 when offloaded
    torch::Tensor host;  // (m, d) on the host when offloaded
    int pins = 0;
    uint64_t last_use = 0;  // for least-recently-used eviction
  };

  MemoryPool(const MemoryPoolOptions& options, torch::Tensor initial,
             torch::Device device);

  absl::StatusOr<Slot*> Find(SlotId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A free device row, evicting the least recently used unpinned slot when
  // none is free and host memory has room. `frees_host_place`: the caller
  // is bringing a parked slot back, whose host place the victim may take.
  absl::StatusOr<int64_t> TakeRow(bool frees_host_place)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MakeResident(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MoveToHost(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const MemoryPoolOptions options_;
  const torch::Tensor initial_;  // (m, d) on the device
  const torch::Device device_;
  const torch::Tensor rows_;  // (device_capacity, m, d); rows guarded by mu_

  mutable absl::Mutex mu_;
  absl::flat_hash_map<SlotId, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> free_rows_ ABSL_GUARDED_BY(mu_);
  int64_t offloaded_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
  SlotId next_id_ ABSL_GUARDED_BY(mu_);
  int64_t offloads_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t restores_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rmt

#endif  // RMT_MODEL_MEMORY_POOL_H_
