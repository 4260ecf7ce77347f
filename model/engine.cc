#include "model/engine.h"

#include <algorithm>
#include <deque>
#include <numeric>
#include <set>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/device_copy.h"
#include "model/memory_pool.h"
#include "model/rmt_model.h"
#include "model/status_macros.h"
#include "model/step_graphs.h"
#include "model/torch_interop.h"

namespace rmt {
namespace {

struct WorkItem {
  bool is_question = false;
  std::vector<int32_t> tokens;
  int top_k = 1;
  Engine::SegmentCallback on_segment;
  Engine::AnswerCallback on_answer;
  absl::Time enqueued;
  uint64_t seq = 0;  // global arrival order: oldest work goes first
};

struct SlotQueue {
  std::deque<WorkItem> items;
  bool in_flight = false;
  bool closing = false;
};

// A row of a batch: one work item and the slot it belongs to.
struct Row {
  SlotId slot;
  WorkItem item;
};

// What a finished batch hands back to its callbacks.
struct RowResult {
  absl::Status status;
  absl::StatusOr<Answer> answer = absl::UnknownError("not run");
};

absl::Status ErrorFromException(const std::exception& e) {
  const std::string what = e.what();
  if (what.find("out of memory") != std::string::npos) {
    return absl::ResourceExhaustedError(
        absl::StrCat("device out of memory: ", what.substr(0, 200)));
  }
  return absl::InternalError(absl::StrCat("forward pass failed: ", what));
}

}  // namespace

class Engine::Impl {
 public:
  Impl(RmtModel model, const EngineOptions& options, EngineObserver* observer,
       std::unique_ptr<MemoryPool> pool, std::unique_ptr<StepGraphs> graphs)
      : model_(std::move(model)),
        options_(options),
        observer_(observer),
        pool_(std::move(pool)),
        graphs_(std::move(graphs)) {
    scheduler_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    scheduler_.join();
    std::vector<WorkItem> abandoned;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [slot, queue] : queues_) {
        for (auto& item : queue.items) abandoned.push_back(std::move(item));
        queue.items.clear();
      }
    }
    Fail(abandoned, absl::UnavailableError("the engine is shutting down"));
  }

  const ModelConfig& config() const { return model_->config(); }

  absl::StatusOr<SlotId> OpenSlot() {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(SlotId slot, pool_->Allocate());
    queues_[slot];
    return slot;
  }

  absl::Status CloseSlot(SlotId slot) {
    std::vector<WorkItem> cancelled;
    {
      absl::MutexLock lock(&mu_);
      auto it = queues_.find(slot);
      if (it == queues_.end() || it->second.closing) {
        return absl::NotFoundError(absl::StrCat("no memory slot ", slot));
      }
      SlotQueue& queue = it->second;
      if (!queue.items.empty() && !queue.in_flight) {
        ready_.erase({queue.items.front().seq, slot});
      }
      queued_ -= static_cast<int64_t>(queue.items.size());
      for (auto& item : queue.items) cancelled.push_back(std::move(item));
      queue.items.clear();
      if (queue.in_flight) {
        queue.closing = true;  // freed when its batch completes
      } else {
        queues_.erase(it);
        RETURN_IF_ERROR(pool_->Free(slot));
      }
    }
    Fail(cancelled, absl::CancelledError(
                        absl::StrCat("memory slot ", slot, " was closed")));
    return absl::OkStatus();
  }

  void Submit(SlotId slot, WorkItem item) {
    absl::Status invalid = ValidateSegment(config(), item.tokens);
    if (invalid.ok()) {
      absl::MutexLock lock(&mu_);
      auto it = queues_.find(slot);
      if (it == queues_.end() || it->second.closing) {
        invalid = absl::NotFoundError(absl::StrCat("no memory slot ", slot));
      } else if (stop_) {
        invalid = absl::UnavailableError("the engine is shutting down");
      } else {
        SlotQueue& queue = it->second;
        item.enqueued = absl::Now();
        item.seq = next_seq_++;
        if (queue.items.empty() && !queue.in_flight) {
          ready_.insert({item.seq, slot});
        }
        queue.items.push_back(std::move(item));
        ++queued_;
        return;
      }
    }
    std::vector<WorkItem> refused;
    refused.push_back(std::move(item));
    Fail(refused, invalid);
  }

  int64_t PendingWork(SlotId slot) const {
    absl::MutexLock lock(&mu_);
    auto it = queues_.find(slot);
    if (it == queues_.end()) return 0;
    return static_cast<int64_t>(it->second.items.size()) +
           (it->second.in_flight ? 1 : 0);
  }

  absl::StatusOr<HostTensor> ReadMemory(SlotId slot) const {
    // Holding mu_ keeps new work for the slot out while it is read.
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckIdle(slot));
    ASSIGN_OR_RETURN(torch::Tensor memory, pool_->Read(slot));
    return ToHostTensor(memory);
  }

  absl::Status WriteMemory(SlotId slot, const HostTensor& memory) {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckIdle(slot));
    if (memory.dtype != DType::kF32 && memory.dtype != DType::kF16 &&
        memory.dtype != DType::kBF16) {
      return absl::InvalidArgumentError("memory must be F32, F16 or BF16");
    }
    ASSIGN_OR_RETURN(torch::Tensor value, FromHostTensor(memory));
    return pool_->Write(slot, value.to(pool_->dtype()));
  }

  absl::Status Offload(SlotId slot) {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckIdle(slot));
    return pool_->Offload(slot);
  }

  EngineCounters Counters() const {
    EngineCounters counters;
    {
      absl::MutexLock lock(&mu_);
      counters = counters_;
      counters.queued = queued_;
    }
    MemoryPoolStats pool = pool_->Stats();
    counters.slots = pool.slots;
    counters.resident_slots = pool.resident;
    counters.offloaded_slots = pool.offloaded;
    counters.device_memory_bytes = pool.device_bytes;
    counters.host_memory_bytes = pool.host_bytes;
    counters.bytes_per_slot = pool.bytes_per_slot;
    return counters;
  }

 private:
  absl::Status CheckIdle(SlotId slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = queues_.find(slot);
    if (it == queues_.end() || it->second.closing) {
      return absl::NotFoundError(absl::StrCat("no memory slot ", slot));
    }
    if (!it->second.items.empty() || it->second.in_flight) {
      return absl::FailedPreconditionError(absl::StrCat(
          "memory slot ", slot, " has work pending; wait for it to finish"));
    }
    return absl::OkStatus();
  }

  static void Fail(std::vector<WorkItem>& items, const absl::Status& status) {
    for (auto& item : items) {
      if (item.is_question) {
        item.on_answer(status);
      } else {
        item.on_segment(status);
      }
    }
  }

  bool HasReadyOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !ready_.empty();
  }
  bool BatchFullOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || static_cast<int>(ready_.size()) >= options_.max_batch;
  }

  // Takes up to max_batch rows, oldest slot heads first. A slot contributes
  // one segment, or a run of consecutive questions (they read the same
  // memory and change nothing).
  std::vector<Row> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Row> batch;
    // Every slot of a batch must be resident at once: never more slots than
    // the pool has device rows (with fewer rows than max_batch, parked
    // memories swap in batch by batch instead of failing the batch).
    int64_t slots_left = options_.device_slots;
    auto next = ready_.begin();
    while (next != ready_.end() && slots_left-- > 0 &&
           static_cast<int>(batch.size()) < options_.max_batch) {
      const SlotId slot = next->second;
      next = ready_.erase(next);
      SlotQueue& queue = queues_[slot];
      queue.in_flight = true;
      do {
        const bool question = queue.items.front().is_question;
        batch.push_back(Row{slot, std::move(queue.items.front())});
        queue.items.pop_front();
        --queued_;
        if (!question) break;
      } while (!queue.items.empty() && queue.items.front().is_question &&
               static_cast<int>(batch.size()) < options_.max_batch);
    }
    // Rows in slot order (a slot's run of questions stays in order): slots
    // opened one after another hold consecutive pool rows, which the pool
    // then reads and writes in place instead of gathering and scattering.
    std::stable_sort(
        batch.begin(), batch.end(),
        [](const Row& a, const Row& b) { return a.slot < b.slot; });
    return batch;
  }

  void Loop() {
    if (options_.intra_op_threads > 0) {
      at::set_num_threads(options_.intra_op_threads);
    }
    while (true) {
      std::vector<Row> batch;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &Impl::HasReadyOrStop));
        if (stop_) return;
        // Wait for a fuller batch, but never past max_queue_delay after the
        // oldest ready work arrived (backlogged work goes at once).
        while (!stop_ && !ready_.empty() &&
               static_cast<int>(ready_.size()) < options_.max_batch) {
          const WorkItem& oldest =
              queues_[ready_.begin()->second].items.front();
          const absl::Time deadline =
              oldest.enqueued + options_.max_queue_delay;
          if (absl::Now() >= deadline) break;
          mu_.AwaitWithDeadline(absl::Condition(this, &Impl::BatchFullOrStop),
                                deadline);
        }
        if (stop_) return;
        if (ready_.empty()) continue;
        batch = TakeBatch();
      }
      Run(batch);
    }
  }

  // The forward pass of one batch, without the engine lock.
  absl::Status Compute(const std::vector<Row>& batch,
                       std::vector<RowResult>& results) {
    std::vector<SlotId> slots;
    std::vector<std::vector<int32_t>> tokens;
    std::vector<int64_t> segment_rows;
    std::vector<SlotId> segment_slots;
    bool any_question = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      slots.push_back(batch[i].slot);
      tokens.push_back(batch[i].item.tokens);
      if (batch[i].item.is_question) {
        any_question = true;
      } else {
        segment_rows.push_back(static_cast<int64_t>(i));
        segment_slots.push_back(batch[i].slot);
      }
    }
    absl::StatusOr<torch::Tensor> gathered;
    try {
      gathered = pool_->Gather(slots);
    } catch (const std::exception& e) {
      return ErrorFromException(e);
    }
    if (!gathered.ok()) return gathered.status();
    const torch::Tensor& memory = *gathered;
    absl::Status status;
    try {
      c10::InferenceMode inference;  // no autograd bookkeeping at all
      StepOutput out = graphs_ != nullptr
                           ? graphs_->Run(memory, tokens)
                           : model_->Forward(memory, model_->MakeBatch(tokens),
                                             any_question);
      if (segment_rows.size() == batch.size()) {
        status = pool_->Scatter(segment_slots, out.memory);  // every row
      } else if (!segment_rows.empty()) {
        torch::Tensor index = IndexTensor(segment_rows, out.memory.device());
        status =
            pool_->Scatter(segment_slots, out.memory.index_select(0, index));
      }
      if (status.ok() && any_question) {
        torch::Tensor probs =
            torch::softmax(out.logits.to(torch::kFloat), -1).to(torch::kCPU);
        FillAnswers(batch, probs, results);
      }
    } catch (const std::exception& e) {
      status = ErrorFromException(e);
    }
    pool_->Unpin(slots);
    return status;
  }

  void FillAnswers(const std::vector<Row>& batch, const torch::Tensor& probs,
                   std::vector<RowResult>& results) const {
    const auto& labels = config().labels;
    auto probs_a = probs.accessor<float, 2>();
    std::vector<int32_t> order(labels.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].item.is_question) continue;
      const int k = std::clamp<int>(batch[i].item.top_k, 1,
                                    static_cast<int>(labels.size()));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(
          order.begin(), order.begin() + k, order.end(),
          [&](int32_t a, int32_t b) { return probs_a[i][a] > probs_a[i][b]; });
      Answer answer;
      for (int j = 0; j < k; ++j) {
        answer.top_k.push_back(
            ScoredLabel{order[j], labels[order[j]], probs_a[i][order[j]]});
      }
      results[i].answer = std::move(answer);
    }
  }

  void Run(std::vector<Row>& batch) {
    const absl::Time start = absl::Now();
    std::vector<RowResult> results(batch.size());
    const absl::Status status = Compute(batch, results);
    const absl::Duration compute = absl::Now() - start;

    BatchReport report;
    report.rows = static_cast<int>(batch.size());
    report.compute = compute;
    report.failed = !status.ok();
    for (const Row& row : batch) {
      (row.item.is_question ? report.questions : report.segments)++;
      report.tokens += static_cast<int64_t>(row.item.tokens.size());
      report.queue_waits.push_back(start - row.item.enqueued);
    }
    {
      absl::MutexLock lock(&mu_);
      for (const Row& row : batch) {
        auto it = queues_.find(row.slot);
        if (it == queues_.end() || !it->second.in_flight) continue;
        SlotQueue& queue = it->second;
        queue.in_flight = false;
        if (queue.closing) {
          queues_.erase(it);
          pool_->Free(row.slot).IgnoreError();  // not pinned any more
        } else if (!queue.items.empty()) {
          ready_.insert({queue.items.front().seq, row.slot});
        }
      }
      ++counters_.batches;
      counters_.rows += report.rows;
      counters_.segments += report.segments;
      counters_.questions += report.questions;
      counters_.tokens += report.tokens;
      counters_.failed_batches += report.failed ? 1 : 0;
      counters_.compute += compute;
      for (absl::Duration wait : report.queue_waits) {
        counters_.queue_wait += wait;
      }
    }
    // Report before completing, so metrics already count work a caller sees
    // finished.
    if (observer_ != nullptr) observer_->OnBatch(report);
    for (size_t i = 0; i < batch.size(); ++i) {
      WorkItem& item = batch[i].item;
      if (item.is_question) {
        item.on_answer(status.ok() ? std::move(results[i].answer)
                                   : absl::StatusOr<Answer>(status));
      } else {
        item.on_segment(status);
      }
    }
  }

  // Constant after construction.
  RmtModel model_;  // eval mode, gradients off: Forward is const in effect
  const EngineOptions options_;
  EngineObserver* const observer_;
  const std::unique_ptr<MemoryPool> pool_;  // thread-safe itself
  // CUDA graphs of the step; null on the CPU or with cuda_graphs off. Used
  // by the scheduler thread only.
  const std::unique_ptr<StepGraphs> graphs_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<SlotId, SlotQueue> queues_ ABSL_GUARDED_BY(mu_);
  // Slots with work that can run now, keyed by their oldest item's arrival.
  std::set<std::pair<uint64_t, SlotId>> ready_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  EngineCounters counters_ ABSL_GUARDED_BY(mu_);

  std::thread scheduler_;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    std::shared_ptr<RmtModelImpl> model, const EngineOptions& options,
    EngineObserver* observer) {
  if (model == nullptr) return absl::InvalidArgumentError("no model");
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError("max_batch must be at least 1");
  }
  if (options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("intra_op_threads must not be negative");
  }
  if (options.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_queue_delay must not be negative");
  }
  RmtModel holder(model);
  torch::Tensor initial;
  {
    torch::NoGradGuard no_grad;
    // (m, d), in the precision the config stores memories in.
    initial = holder->InitMemory(1)[0].detach().to(
        ScalarTypeOf(holder->config().rmt.memory_dtype), /*non_blocking=*/false,
        /*copy=*/true);
  }
  MemoryPoolOptions pool_options;
  pool_options.device_capacity = options.device_slots;
  pool_options.host_capacity = options.host_slots;
  ASSIGN_OR_RETURN(std::unique_ptr<MemoryPool> pool,
                   MemoryPool::Create(pool_options, initial, initial.device()));
  std::unique_ptr<StepGraphs> graphs;
  if (options.cuda_graphs && initial.device().is_cuda()) {
    StepGraphsOptions graph_options;
    graph_options.max_batch = options.max_batch;
    ASSIGN_OR_RETURN(graphs,
                     StepGraphs::Create(holder, pool->dtype(), graph_options));
  }
  return std::unique_ptr<Engine>(new Engine(std::make_unique<Impl>(
      holder, options, observer, std::move(pool), std::move(graphs))));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

const ModelConfig& Engine::config() const { return impl_->config(); }
absl::StatusOr<SlotId> Engine::OpenSlot() { return impl_->OpenSlot(); }
absl::Status Engine::CloseSlot(SlotId slot) { return impl_->CloseSlot(slot); }

void Engine::SubmitSegment(SlotId slot, std::vector<int32_t> tokens,
                           SegmentCallback done) {
  WorkItem item;
  item.tokens = std::move(tokens);
  item.on_segment = std::move(done);
  impl_->Submit(slot, std::move(item));
}

void Engine::SubmitQuestion(SlotId slot, std::vector<int32_t> tokens, int top_k,
                            AnswerCallback done) {
  WorkItem item;
  item.is_question = true;
  item.tokens = std::move(tokens);
  item.top_k = top_k;
  item.on_answer = std::move(done);
  impl_->Submit(slot, std::move(item));
}

std::future<absl::Status> Engine::SubmitSegment(SlotId slot,
                                                std::vector<int32_t> tokens) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  auto future = promise->get_future();
  SubmitSegment(slot, std::move(tokens), [promise](absl::Status status) {
    promise->set_value(std::move(status));
  });
  return future;
}

std::future<absl::StatusOr<Answer>> Engine::SubmitQuestion(
    SlotId slot, std::vector<int32_t> tokens, int top_k) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Answer>>>();
  auto future = promise->get_future();
  SubmitQuestion(slot, std::move(tokens), top_k,
                 [promise](absl::StatusOr<Answer> answer) {
                   promise->set_value(std::move(answer));
                 });
  return future;
}

int64_t Engine::PendingWork(SlotId slot) const {
  return impl_->PendingWork(slot);
}
absl::StatusOr<HostTensor> Engine::ReadMemory(SlotId slot) const {
  return impl_->ReadMemory(slot);
}
absl::Status Engine::WriteMemory(SlotId slot, const HostTensor& memory) {
  return impl_->WriteMemory(slot, memory);
}
absl::Status Engine::Offload(SlotId slot) { return impl_->Offload(slot); }
EngineCounters Engine::Counters() const { return impl_->Counters(); }

}  // namespace rmt
