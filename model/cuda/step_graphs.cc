// StepGraphs on CUDA (RMT_CUDA builds only; see model/step_graphs.h).
#include "model/step_graphs.h"

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/cuda/streams.h"

namespace rmt {
namespace {

// One bucket: inputs shared by its two graphs, and each graph's outputs.
struct Bucket {
  int64_t rows = 0;
  torch::Tensor memory;          // (rows, m, d), the memory dtype
  torch::Tensor input_ids;       // (rows, T) int64
  torch::Tensor attention_mask;  // (rows, T) bool
  // [padded]: graph 1 applies the mask, graph 0 runs without one.
  std::array<std::unique_ptr<at::cuda::CUDAGraph>, 2> graphs;
  std::array<StepOutput, 2> outputs;  // memory (rows, m, d), logits
};

class CudaStepGraphs final : public StepGraphs {
 public:
  CudaStepGraphs(RmtModel model, std::vector<int64_t> sizes)
      : model_(std::move(model)), sizes_(std::move(sizes)) {}

  absl::Status Capture(torch::ScalarType memory_dtype,
                       const StepGraphsOptions& options) {
    const ModelConfig& config = model_->config();
    const torch::Tensor& weights =
        model_->bert->embeddings->word_embeddings->weight;
    const torch::Device device = weights.device();
    c10::cuda::CUDAGuard device_guard(device);
    torch::NoGradGuard no_grad;
    // The static inputs, allocated on the stream that Run uses.
    buckets_.resize(sizes_.size());
    for (size_t i = 0; i < sizes_.size(); ++i) {
      Bucket& bucket = buckets_[i];
      bucket.rows = sizes_[i];
      bucket.memory = torch::zeros(
          {bucket.rows, config.rmt.num_mem_tokens, config.hidden_size},
          weights.options().dtype(memory_dtype));
      SegmentBatch filler = model_->MakeBatch(
          std::vector<std::vector<int32_t>>(bucket.rows, Filler()),
          config.segment_length());
      bucket.input_ids = filler.input_ids.clone();
      bucket.attention_mask = filler.attention_mask.clone();
    }
    const at::cuda::MempoolId_t pool = at::cuda::graph_pool_handle();
    SideStream side(device);
    // Largest first: the shared pool grows once, smaller buckets reuse it.
    for (size_t i = sizes_.size(); i-- > 0;) {
      Bucket& bucket = buckets_[i];
      for (int padded = 0; padded < 2; ++padded) {
        SegmentBatch inputs{bucket.input_ids, bucket.attention_mask};
        inputs.padded = padded == 1;
        for (int pass = 0; pass < options.warmup_passes; ++pass) {
          model_->Forward(bucket.memory, inputs, /*with_logits=*/true);
        }
        auto graph = std::make_unique<at::cuda::CUDAGraph>();
        // Thread-local capture: other threads' CUDA calls (another engine,
        // a memory read) neither fail the capture nor are caught in it.
        graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
        bucket.outputs[padded] =
            model_->Forward(bucket.memory, inputs, /*with_logits=*/true);
        graph->capture_end();
        bucket.graphs[padded] = std::move(graph);
      }
    }
    return absl::OkStatus();
  }

  StepOutput Run(const torch::Tensor& memory,
                 const std::vector<std::vector<int32_t>>& segments) override {
    const int64_t rows = static_cast<int64_t>(segments.size());
    auto it = std::lower_bound(sizes_.begin(), sizes_.end(), rows);
    TORCH_CHECK(rows > 0 && it != sizes_.end(), "a batch of ", rows,
                " rows; the CUDA graphs take 1 to ", sizes_.back());
    TORCH_CHECK(memory.size(0) == rows, "memory of ", memory.size(0),
                " rows for ", rows, " segments");
    Bucket& bucket = buckets_[it - sizes_.begin()];
    c10::cuda::CUDAGuard device_guard(bucket.memory.device());
    // Filler rows are full segments, so they never make a batch padded.
    std::vector<std::vector<int32_t>> padded_segments = segments;
    padded_segments.resize(bucket.rows, Filler());
    SegmentBatch batch =
        model_->MakeBatch(padded_segments, model_->config().segment_length());
    bucket.input_ids.copy_(batch.input_ids, /*non_blocking=*/true);
    if (batch.padded) {
      bucket.attention_mask.copy_(batch.attention_mask, /*non_blocking=*/true);
    }
    bucket.memory.narrow(0, 0, rows).copy_(memory, /*non_blocking=*/true);
    bucket.graphs[batch.padded ? 1 : 0]->replay();
    const StepOutput& out = bucket.outputs[batch.padded ? 1 : 0];
    StepOutput rows_out;
    rows_out.memory = out.memory.narrow(0, 0, rows);
    rows_out.logits = out.logits.narrow(0, 0, rows);
    return rows_out;
  }

  const std::vector<int64_t>& buckets() const override { return sizes_; }

 private:
  // The content of a row no session uses: a full segment of [PAD] ids.
  std::vector<int32_t> Filler() const {
    return std::vector<int32_t>(model_->config().rmt.segment_size,
                                model_->special_tokens().pad);
  }

  // Constant after construction.
  RmtModel model_;
  const std::vector<int64_t> sizes_;
  // Set by Capture; the tensors' contents change on every Run.
  std::vector<Bucket> buckets_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StepGraphs>> StepGraphs::Create(
    RmtModel model, torch::ScalarType memory_dtype,
    const StepGraphsOptions& options) {
  if (model.is_empty()) return absl::InvalidArgumentError("no model");
  if (options.max_batch < 1 || options.warmup_passes < 1) {
    return absl::InvalidArgumentError(
        "CUDA graphs need max_batch >= 1 and warmup_passes >= 1");
  }
  const torch::Device device =
      model->bert->embeddings->word_embeddings->weight.device();
  if (!device.is_cuda()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA graphs need the model on a CUDA device, not ", device.str()));
  }
  if (model->is_training()) {
    return absl::FailedPreconditionError(
        "CUDA graphs capture the eval-mode model; call eval() first");
  }
  auto graphs = std::make_unique<CudaStepGraphs>(
      std::move(model), BatchBuckets(options.max_batch));
  try {
    absl::Status status = graphs->Capture(memory_dtype, options);
    if (!status.ok()) return status;
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("capturing the CUDA graphs failed: ", e.what()));
  }
  return graphs;
}

bool StepGraphsBuilt() { return true; }

}  // namespace rmt
