#include "server/served_model.h"

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
  ServedModel served;
  served.name = bundle->name;
  served.directory = bundle->directory;
  served.fingerprint = bundle->fingerprint;
  served.device = device.str();
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
