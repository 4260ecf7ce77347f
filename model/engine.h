// Engine: runs every session's segments and questions through the model,
// batching work of different sessions into single forward passes.
//
// Each session owns a memory slot. Work for a slot is applied strictly in
// submission order; one scheduler thread forms batches of at most max_batch
// rows, oldest work first, waiting at most max_queue_delay for a fuller
// batch. A batch never holds two segments of one session (each changes the
// memory the next one reads). Questions do not change the memory, so a run
// of questions for one slot shares a batch, and questions ride in the same
// forward pass as other sessions' segments.
//
//   ASSIGN_OR_RETURN(auto engine, Engine::Create(bundle->model.ptr(), {}));
//   ASSIGN_OR_RETURN(SlotId slot, engine->OpenSlot());
//   engine->SubmitSegment(slot, ids, [](absl::Status s) { ... });
//   auto answer = engine->SubmitQuestion(slot, question_ids, 3).get();
//
// Callbacks run on the scheduler thread: they must be quick and must not
// block (hand off to another thread for anything slow).
//
// Thread-safety: all public methods are thread-safe. This header is free of
// torch types so RPC code can include it cheaply.
#ifndef RMT_MODEL_ENGINE_H_
#define RMT_MODEL_ENGINE_H_

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/host_tensor.h"

namespace rmt {

class RmtModelImpl;
struct ModelConfig;
using SlotId = uint64_t;

struct EngineOptions {
  int max_batch = 32;
  absl::Duration max_queue_delay = absl::Milliseconds(2);
  // Memories held on the model's device, and further ones parked in host
  // memory when the device rows run out.
  int64_t device_slots = 4096;
  int64_t host_slots = 0;
  // Intra-op threads of the scheduler thread's forward passes; 0 keeps
  // torch's default for a new thread. (With OpenMP the count is per calling
  // thread, so it must be set on the scheduler thread itself.)
  int intra_op_threads = 0;
  // On a CUDA device, run every batch through CUDA graphs captured at Create,
  // one per batch-size bucket (model/step_graphs.h); ignored on the CPU.
  // Needs a build with RMT_CUDA: elsewhere Create refuses a CUDA model
  // unless this is off.
  bool cuda_graphs = true;
};

struct ScoredLabel {
  int32_t label_id = 0;
  std::string label;
  float score = 0;  // softmax probability
};

struct Answer {
  std::vector<ScoredLabel> top_k;  // best first; top_k[0] is the answer
};

// One forward pass, as reported to an EngineObserver.
struct BatchReport {
  int rows = 0;  // batch size
  int segments = 0;
  int questions = 0;
  int64_t tokens = 0;  // content tokens of the batch
  absl::Duration compute;
  std::vector<absl::Duration> queue_waits;  // one per row
  bool failed = false;
};

// Receives a report after every batch, on the scheduler thread.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnBatch(const BatchReport& report) = 0;
};

struct EngineCounters {
  int64_t batches = 0;
  int64_t rows = 0;
  int64_t segments = 0;
  int64_t questions = 0;
  int64_t tokens = 0;
  int64_t failed_batches = 0;
  absl::Duration compute;
  absl::Duration queue_wait;
  int64_t queued = 0;  // work waiting now
  // Memory pool occupancy.
  int64_t slots = 0;
  int64_t resident_slots = 0;
  int64_t offloaded_slots = 0;
  int64_t device_memory_bytes = 0;
  int64_t host_memory_bytes = 0;
  int64_t bytes_per_slot = 0;
};

class Engine {
 public:
  using SegmentCallback = std::function<void(absl::Status)>;
  using AnswerCallback = std::function<void(absl::StatusOr<Answer>)>;

  // The engine shares the model (in eval mode) and allocates its memory pool
  // on the model's device.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      std::shared_ptr<RmtModelImpl> model, const EngineOptions& options,
      EngineObserver* observer = nullptr);
  // Stops the scheduler; queued work fails with UNAVAILABLE.
  ~Engine();

  const ModelConfig& config() const;

  // A slot holding the model's initial memory. RESOURCE_EXHAUSTED when full.
  absl::StatusOr<SlotId> OpenSlot();
  // Cancels the slot's queued work (CANCELLED) and frees it once a batch
  // using it, if any, has finished. NOT_FOUND for unknown slots.
  absl::Status CloseSlot(SlotId slot);

  // Validates and queues one segment (1..segment_size content ids). Invalid
  // input and unknown slots are reported through `done`, never thrown.
  void SubmitSegment(SlotId slot, std::vector<int32_t> tokens,
                     SegmentCallback done);
  // Queues a question; sees every segment submitted before it. top_k is
  // clamped to [1, num_labels].
  void SubmitQuestion(SlotId slot, std::vector<int32_t> tokens, int top_k,
                      AnswerCallback done);
  std::future<absl::Status> SubmitSegment(SlotId slot,
                                          std::vector<int32_t> tokens);
  std::future<absl::StatusOr<Answer>> SubmitQuestion(
      SlotId slot, std::vector<int32_t> tokens, int top_k);

  // Work queued or running for the slot.
  int64_t PendingWork(SlotId slot) const;
  // A slot's memory, or replaces it; FAILED_PRECONDITION while it has work
  // pending (the result would depend on timing).
  absl::StatusOr<HostTensor> ReadMemory(SlotId slot) const;
  absl::Status WriteMemory(SlotId slot, const HostTensor& memory);
  // Moves an idle slot's memory to host memory.
  absl::Status Offload(SlotId slot);

  EngineCounters Counters() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rmt

#endif  // RMT_MODEL_ENGINE_H_
