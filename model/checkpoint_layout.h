// The tensors an RMT checkpoint holds for a config: every parameter's
// Hugging Face name and shape, computed from the config alone.
//
//   for (const TensorSpec& spec : CheckpointLayout(config)) {
//     // "bert.encoder.layer.0.attention.self.query.weight", {768, 768}
//   }
//
// It lets a loader compare a weights file against the config before anything
// is allocated (RmtModel's constructor allocates every parameter at once), and
// it is torch-free so tools and fuzzers can use it. model_directory_test
// checks it against RmtModel's named_parameters(), so the two cannot drift.
//
// Thread-safety: stateless.
#ifndef RMT_MODEL_CHECKPOINT_LAYOUT_H_
#define RMT_MODEL_CHECKPOINT_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace rmt {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// In RmtModel's named_parameters() order. `config` must pass Validate (its
// sizes are then bounded, so no shape overflows).
std::vector<TensorSpec> CheckpointLayout(const ModelConfig& config);

}  // namespace rmt

#endif  // RMT_MODEL_CHECKPOINT_LAYOUT_H_
