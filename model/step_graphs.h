// StepGraphs: the model's batched segment step replayed from CUDA graphs.
//
// A forward pass of a small model on a GPU is mostly kernel launches: dozens
// per layer, each a few microseconds of host time. A CUDA graph records them
// once and replays them in one launch. Graphs need fixed shapes and fixed
// addresses, so every batch is padded to the full segment length and its
// row count up to a bucket (1, 2, 4, ... up to max_batch, and max_batch
// itself); each bucket owns static input tensors (memory, ids, mask) and
// two graphs captured at Create: one for batches with padding (the additive
// mask is applied) and one for batches of full segments only (no mask, so the
// fused attention kernels can run). Run copies a batch into its bucket's
// inputs, replays, and returns views of the static outputs.
//
//   ASSIGN_OR_RETURN(auto graphs, StepGraphs::Create(model, torch::kFloat,
//   {})); StepOutput out = graphs->Run(memory, segments);  // memory: (B, m, d)
//   pool->Scatter(slots, out.memory);                // before the next Run
//
// The graphs read the model's weights where they were at Create: a model
// whose parameters change afterwards (training) needs new graphs. Built only
// with RMT_CUDA (CUDA LibTorch 2.x); elsewhere Create is UNIMPLEMENTED.
//
// Thread-safety: none. One caller (the engine's scheduler thread) runs it;
// all graphs share one memory pool, which is safe because replays are
// serialized on the caller's stream and each Run's outputs are consumed
// before the next Run.
#ifndef RMT_MODEL_STEP_GRAPHS_H_
#define RMT_MODEL_STEP_GRAPHS_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/rmt_model.h"

namespace rmt {

struct StepGraphsOptions {
  int max_batch = 32;  // the largest bucket
  // Eager passes per graph before capture: they build what the forward pass
  // caches (fused weights, masks, cuBLAS workspaces) outside the graph.
  int warmup_passes = 2;
};

class StepGraphs {
 public:
  // Captures every bucket's graphs on a side stream. `memory_dtype`: the
  // dtype of the memories Run receives (the memory pool's). The model must
  // be on a CUDA device, in eval mode.
  static absl::StatusOr<std::unique_ptr<StepGraphs>> Create(
      RmtModel model, torch::ScalarType memory_dtype,
      const StepGraphsOptions& options);
  virtual ~StepGraphs() = default;

  // One step for B <= max_batch rows: memory (B, m, d) on the model's device,
  // segments of 1..segment_size ids (validated by the caller). Returns the
  // new memories (B, m, d) and the logits (B, num_labels): views of static
  // outputs, overwritten by the next Run. Queued on the current stream;
  // nothing waits for the device.
  virtual StepOutput Run(const torch::Tensor& memory,
                         const std::vector<std::vector<int32_t>>& segments) = 0;

  // The bucket sizes, ascending.
  virtual const std::vector<int64_t>& buckets() const = 0;
};

// Whether this build has the CUDA sources (RMT_CUDA).
bool StepGraphsBuilt();

// 1, 2, 4, ... below max_batch, then max_batch.
inline std::vector<int64_t> BatchBuckets(int max_batch) {
  std::vector<int64_t> buckets;
  for (int64_t b = 1; b < max_batch; b *= 2) buckets.push_back(b);
  buckets.push_back(max_batch);
  return buckets;
}

}  // namespace rmt

#endif  // RMT_MODEL_STEP_GRAPHS_H_
