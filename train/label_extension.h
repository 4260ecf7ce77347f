// Teaching a trained model answers it lacks: its classifier grows a row per
// new label, everything it has learned kept. This is how a model trained
// before the unknown task (the bundled one) goes on to learn it
// (rmt-train --init), as the RMT reference grows the word embeddings for
// memory tokens instead of starting over.
//
//   ASSIGN_OR_RETURN(RmtModel grown, AppendLabels(model, {"unknown"}, seed));
#ifndef RMT_TRAIN_LABEL_EXTENSION_H_
#define RMT_TRAIN_LABEL_EXTENSION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/rmt_model.h"

namespace rmt {

// A copy of `model`, on its device and in its train/eval mode, whose labels
// are its own followed by `labels`. Every parameter and the existing
// classifier rows are copied unchanged, so the old labels' logits are the
// same; each new row starts as a new model's would (normal weights of
// BERT's 0.02, zero bias; deterministic in `seed`). INVALID_ARGUMENT when
// `labels` is empty or repeats a label.
absl::StatusOr<RmtModel> AppendLabels(const RmtModel& model,
                                      const std::vector<std::string>& labels,
                                      uint64_t seed);

}  // namespace rmt

#endif  // RMT_TRAIN_LABEL_EXTENSION_H_
