#include "server/served_model.h"

#include "absl/strings/str_cat.h"
#include "model/attention_backend.h"
#include "model/model_directory.h"
#include "model/status_macros.h"
#include "model/torch_interop.h"
#include "model/untrained_model.h"
#include "server/log.h"

namespace rmt::server {

absl::StatusOr<ServedModel> LoadServedModel(const ServedModelOptions& options) {
  ASSIGN_OR_RETURN(
      ResolvedModel resolved,
      ResolveModelDirectory(options.directory, options.untrained_dir));
  const std::string& directory = resolved.directory;
  const bool untrained = resolved.untrained;
  ASSIGN_OR_RETURN(torch::Device device, ParseDevice(options.device));
  LoadOptions load;
  load.device = device;
  ASSIGN_OR_RETURN(load.dtype, ParseComputeDType(options.dtype));
  ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(directory, load));
  if (bundle->config.rmt.num_mem_tokens <= 0) {
    // A plain BERT checkpoint loads (config.json without "rmt"), but with
    // no memory nothing of a document reaches the answer.
    return absl::FailedPreconditionError(absl::StrCat(
        directory,
        " is a plain BERT model (no memory tokens): serving it would answer "
        "without reading the document. Turn it into an RMT model with "
        "rmt-import --num_mem_tokens=N and train it (rmt-train --init)."));
  }
  ServedModel served;
  served.name = bundle->name;
  served.directory = bundle->directory;
  served.fingerprint = bundle->fingerprint;
  served.device = device.str();
  served.attention = ChooseStepAttention(bundle->config, device, load.dtype,
                                         /*batch=*/1)
                         .full_segments;
  served.untrained = untrained;
  served.config = bundle->config;
  served.tokenizer = bundle->tokenizer;
  served.model = bundle->model.ptr();
  if (untrained) {
    LogEvent("untrained_model",
             {{"model", served.directory},
              {"message",
               "NO TRAINED MODEL: serving random weights; answers mean "
               "nothing. Pass --model=DIR."}},
             "warning");
  }
  return served;
}

}  // namespace rmt::server
