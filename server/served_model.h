// ServedModel: the model a server serves, without torch types, so the rest
// of server/ compiles without LibTorch's headers. Loading (the one torch
// translation unit of the server) lives in served_model.cc.
//
//   ASSIGN_OR_RETURN(ServedModel model, LoadServedModel({.directory = "m"}));
//   ASSIGN_OR_RETURN(auto engine, Engine::Create(model.model, engine_options));
#ifndef RMT_SERVER_SERVED_MODEL_H_
#define RMT_SERVER_SERVED_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/engine.h"
#include "model/tokenizer.h"

namespace rmt::server {

struct ServedModelOptions {
  // A model directory. Empty: "models/rmt-babi" if it exists, else an
  // untrained model created in untrained_dir.
  std::string directory;
  std::string untrained_dir = "build/untrained-model";
  std::string device = "auto";    // cpu, cuda, cuda:N, auto
  std::string dtype = "float32";  // compute precision (ParseComputeDType)
};

struct ServedModel {
  std::string name;
  std::string directory;
  std::string fingerprint;
  std::string device;  // as torch names it: "cpu", "cuda:0"
  // The attention kernel of a step over full segments ("flash attention",
  // "math (unfused)", ...; model/attention_backend.h), for the startup log.
  std::string attention;
  bool untrained = false;
  ModelConfig config;
  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  // Shared with the engine; the type is complete only in model/.
  std::shared_ptr<RmtModelImpl> model;
};

absl::StatusOr<ServedModel> LoadServedModel(const ServedModelOptions& options);

}  // namespace rmt::server

#endif  // RMT_SERVER_SERVED_MODEL_H_
