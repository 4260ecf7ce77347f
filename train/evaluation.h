// Running task samples through an RMT model, batched across samples, and
// measuring accuracy.
#ifndef RMT_TRAIN_EVALUATION_H_
#define RMT_TRAIN_EVALUATION_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/rmt_model.h"
#include "train/tasks.h"

namespace rmt {

// The number of segments of `ids` at `segment_size` tokens a segment.
int64_t SegmentCount(const std::vector<int32_t>& ids, int64_t segment_size);

// Reads every sample's document segment by segment (all samples of a batch
// must have the same number of segments), then its question: (B, labels)
// logits. Gradients flow when the caller has them enabled.
//
// The questions of the last `assisted` samples also read their last document
// segment's states beside the memory (the trainer's reader assist, see
// TrainOptions::assist_steps); that needs the autograd path.
//
// With `backprop_segments` > 0, only the last that many document segments
// (and the question) are on the autograd path; the ones before run without
// gradients (TrainOptions::backprop_segments).
torch::Tensor DocumentLogits(RmtModelImpl& model,
                             const std::vector<Sample>& samples,
                             int64_t assisted = 0,
                             int64_t backprop_segments = 0);

struct AccuracyOptions {
  int samples = 500;
  int batch_size = 64;
  Split split = Split::kTest;
  uint32_t seed = 1;
};

// Fraction of `options.samples` samples of `task` with `segments` segments
// that the model answers right (eval mode, no gradients): the name of its
// label (model.config().labels) is the sample's answer. The model's labels
// need not be TaskLabels(); an answer it has no label for (a model trained
// before the unknown task has no "unknown") counts as wrong.
double Accuracy(RmtModelImpl& model, const TaskGenerator& generator, Task task,
                int segments, const AccuracyOptions& options);

}  // namespace rmt

#endif  // RMT_TRAIN_EVALUATION_H_
