// StepGraphs in a build without RMT_CUDA: CUDA graphs need a CUDA LibTorch
// 2.x (make build-torch2).
#include "model/step_graphs.h"

namespace rmt {

absl::StatusOr<std::unique_ptr<StepGraphs>> StepGraphs::Create(
    RmtModel, torch::ScalarType, const StepGraphsOptions&) {
  return absl::UnimplementedError(
      "this build has no CUDA graphs: build with a CUDA LibTorch 2.x and "
      "-DRMT_CUDA=ON (make build-torch2), or turn CUDA graphs off");
}

bool StepGraphsBuilt() { return false; }

}  // namespace rmt
