#include "model/memory_pool.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "model/device_copy.h"
#include "model/status_macros.h"

namespace rmt {
namespace {

torch::Tensor RowIndex(const std::vector<int64_t>& rows, torch::Device device) {
  return IndexTensor(rows, device);  // on a GPU, without waiting for it
}

// True when `rows` are r, r + 1, ..., r + n - 1: one slice of the pool.
bool Consecutive(const std::vector<int64_t>& rows) {
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i] != rows[0] + static_cast<int64_t>(i)) return false;
  }
  return !rows.empty();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MemoryPool>> MemoryPool::Create(
    const MemoryPoolOptions& options, const torch::Tensor& initial_memory,
    torch::Device device) {
  if (options.device_capacity <= 0 || options.host_capacity < 0) {
    return absl::InvalidArgumentError(
        "memory pool needs device_capacity > 0 and host_capacity >= 0");
  }
  if (initial_memory.dim() != 2) {
    return absl::InvalidArgumentError("initial memory must be (m, d)");
  }
  torch::Tensor initial = initial_memory.detach().to(device).clone();
  return std::unique_ptr<MemoryPool>(new MemoryPool(options, initial, device));
}

MemoryPool::MemoryPool(const MemoryPoolOptions& options, torch::Tensor initial,
                       torch::Device device)
    : options_(options),
      initial_(initial),
      device_(device),
      rows_(torch::empty(
          {options.device_capacity, initial.size(0), initial.size(1)},
          initial.options())),
      next_id_(1) {
  free_rows_.reserve(options.device_capacity);
  // Handing out low rows first keeps the live part of the tensor compact.
  for (int64_t row = options.device_capacity - 1; row >= 0; --row) {
    free_rows_.push_back(row);
  }
}

absl::StatusOr<MemoryPool::Slot*> MemoryPool::Find(SlotId id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) {
    return absl::NotFoundError(absl::StrCat("no memory slot ", id));
  }
  return &it->second;
}

void MemoryPool::MoveToHost(Slot& slot) {
  torch::Tensor row = rows_[slot.row];
  torch::TensorOptions host_options = row.options().device(torch::kCPU);
  // Pinned host memory lets the copy back to the GPU run asynchronously.
  if (device_.is_cuda()) host_options = host_options.pinned_memory(true);
  slot.host = torch::empty(row.sizes(), host_options);
  slot.host.copy_(row);
  free_rows_.push_back(slot.row);
  slot.row = -1;
  ++offloaded_;
  ++offloads_;
}

absl::StatusOr<int64_t> MemoryPool::TakeRow(bool frees_host_place) {
  if (free_rows_.empty()) {
    Slot* victim = nullptr;
    // A slot coming back from host memory leaves its host place to the
    // victim: that swap needs no free host place, so a full pool can always
    // trade an idle resident memory for a parked one.
    const int64_t host_free =
        options_.host_capacity - offloaded_ + (frees_host_place ? 1 : 0);
    if (host_free > 0) {
      uint64_t oldest = std::numeric_limits<uint64_t>::max();
      for (auto& [id, slot] : slots_) {
        if (slot.row >= 0 && slot.pins == 0 && slot.last_use < oldest) {
          oldest = slot.last_use;
          victim = &slot;
        }
      }
    }
    if (victim == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("memory pool is full: ", options_.device_capacity,
                       " memories on the device and ", offloaded_, " of ",
                       options_.host_capacity, " in host memory"));
    }
    MoveToHost(*victim);
  }
  int64_t row = free_rows_.back();
  free_rows_.pop_back();
  return row;
}

absl::Status MemoryPool::MakeResident(Slot& slot) {
  if (slot.row >= 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(int64_t row, TakeRow(/*frees_host_place=*/true));
  rows_[row].copy_(slot.host, /*non_blocking=*/true);
  slot.row = row;
  slot.host = torch::Tensor();
  --offloaded_;
  ++restores_;
  return absl::OkStatus();
}

absl::StatusOr<SlotId> MemoryPool::Allocate() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(int64_t row, TakeRow(/*frees_host_place=*/false));
  rows_[row].copy_(initial_);
  const SlotId id = next_id_++;
  Slot& slot = slots_[id];
  slot.row = row;
  slot.last_use = ++clock_;
  return id;
}

absl::Status MemoryPool::Free(SlotId id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, Find(id));
  if (slot->pins > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory slot ", id, " is in use by a batch"));
  }
  if (slot->row >= 0) {
    free_rows_.push_back(slot->row);
  } else {
    --offloaded_;
  }
  slots_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> MemoryPool::Gather(
    const std::vector<SlotId>& ids) {
  absl::MutexLock lock(&mu_);
  std::vector<Slot*> slots;
  slots.reserve(ids.size());
  for (SlotId id : ids) {
    ASSIGN_OR_RETURN(Slot * slot, Find(id));
    slots.push_back(slot);
  }
  // Pin first, so restoring one slot never evicts another of this batch.
  for (Slot* slot : slots) ++slot->pins;
  std::vector<int64_t> rows;
  rows.reserve(slots.size());
  for (Slot* slot : slots) {
    absl::Status status = MakeResident(*slot);
    if (!status.ok()) {
      for (Slot* pinned : slots) --pinned->pins;
      return status;
    }
    slot->last_use = ++clock_;
    rows.push_back(slot->row);
  }
  // A batch that takes consecutive rows in order reads them in place.
  if (Consecutive(rows)) {
    return rows_.narrow(0, rows[0], static_cast<int64_t>(rows.size()));
  }
  return rows_.index_select(0, RowIndex(rows, device_));  // (B, m, d)
}

absl::Status MemoryPool::Scatter(const std::vector<SlotId>& ids,
                                 const torch::Tensor& values) {
  absl::MutexLock lock(&mu_);
  if (values.dim() != 3 || values.size(0) != static_cast<int64_t>(ids.size()) ||
      values.size(1) != rows_.size(1) || values.size(2) != rows_.size(2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("scatter of ", c10::str(values.sizes()), " into ",
                     ids.size(), " slots of ", c10::str(initial_.sizes())));
  }
  std::vector<int64_t> rows;
  rows.reserve(ids.size());
  for (SlotId id : ids) {
    ASSIGN_OR_RETURN(Slot * slot, Find(id));
    if (slot->pins == 0 || slot->row < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("memory slot ", id, " was not gathered"));
    }
    rows.push_back(slot->row);
  }
  if (Consecutive(rows)) {
    rows_.narrow(0, rows[0], static_cast<int64_t>(rows.size()))
        .copy_(values.detach());
  } else {
    rows_.index_copy_(0, RowIndex(rows, device_),
                      values.detach().to(rows_.dtype()));
  }
  return absl::OkStatus();
}

void MemoryPool::Unpin(const std::vector<SlotId>& ids) {
  absl::MutexLock lock(&mu_);
  for (SlotId id : ids) {
    auto it = slots_.find(id);
    if (it != slots_.end() && it->second.pins > 0) --it->second.pins;
  }
}

absl::Status MemoryPool::Offload(SlotId id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, Find(id));
  if (slot->row < 0) return absl::OkStatus();
  if (slot->pins > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory slot ", id, " is in use by a batch"));
  }
  if (offloaded_ >= options_.host_capacity) {
    return absl::ResourceExhaustedError(
        absl::StrCat("host memory for ", options_.host_capacity,
                     " offloaded memories is full"));
  }
  MoveToHost(*slot);
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> MemoryPool::Read(SlotId id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, Find(id));
  if (slot->row < 0) return slot->host.clone();
  return rows_[slot->row].to(torch::kCPU, /*non_blocking=*/false,
                             /*copy=*/true);
}

absl::Status MemoryPool::Write(SlotId id, const torch::Tensor& value) {
  if (value.sizes() != initial_.sizes()) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory must be ", c10::str(initial_.sizes()), ", got ",
                     c10::str(value.sizes())));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, Find(id));
  if (slot->pins > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory slot ", id, " is in use by a batch"));
  }
  if (slot->row < 0) {
    slot->host.copy_(value);
  } else {
    rows_[slot->row].copy_(value);
  }
  return absl::OkStatus();
}

bool MemoryPool::Contains(SlotId id) const {
  absl::MutexLock lock(&mu_);
  return slots_.contains(id);
}

bool MemoryPool::IsResident(SlotId id) const {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(id);
  return it != slots_.end() && it->second.row >= 0;
}

MemoryPoolStats MemoryPool::Stats() const {
  absl::MutexLock lock(&mu_);
  MemoryPoolStats stats;
  stats.slots = static_cast<int64_t>(slots_.size());
  stats.offloaded = offloaded_;
  stats.resident = stats.slots - offloaded_;
  stats.device_capacity = options_.device_capacity;
  stats.host_capacity = options_.host_capacity;
  stats.bytes_per_slot = initial_.nbytes();
  stats.device_bytes = rows_.nbytes();
  stats.host_bytes = offloaded_ * stats.bytes_per_slot;
  stats.offloads = offloads_;
  stats.restores = restores_;
  return stats;
}

}  // namespace rmt
