// A small randomly initialised model directory, for running the code path
// (rmt-cli, rmt-server, tests) when no trained model is at hand. Its answers
// mean nothing; every caller must say so plainly.
//
//   ASSIGN_OR_RETURN(std::string dir, CreateUntrainedModel("build/untrained",
//   {})); ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(dir));
//
// The vocabulary is character-level (every printable ASCII character, whole
// and as a "##" continuation), so any English text tokenizes without [UNK].
// This header is free of torch types.
#ifndef RMT_MODEL_UNTRAINED_MODEL_H_
#define RMT_MODEL_UNTRAINED_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rmt {

struct UntrainedModelOptions {
  int64_t segment_size = 128;
  int64_t num_mem_tokens = 4;
  int64_t hidden_size = 64;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t intermediate_size = 256;
  int num_labels = 4;
  uint64_t seed = 1;
  // Multiplies BERT's std-0.02 initial weights (not LayerNorm). Tests use 10
  // so that every segment visibly changes the memory and the answers.
  double weight_scale = 1.0;
};

// Writes the model into `directory` (created if needed) with a README.txt
// saying it is untrained, and returns the directory.
absl::StatusOr<std::string> CreateUntrainedModel(
    const std::string& directory, const UntrainedModelOptions& options = {});

// The reference model bundled with the repository, relative to its root.
inline constexpr char kBundledModelDirectory[] = "models/rmt-babi";

struct ResolvedModel {
  std::string directory;
  bool untrained = false;
};

// The model directory a binary should load: `requested` when given, else
// the bundled reference model when it is present, else an untrained model
// created in `untrained_dir` (flagged, so the caller can warn).
absl::StatusOr<ResolvedModel> ResolveModelDirectory(
    const std::string& requested, const std::string& untrained_dir);

}  // namespace rmt

#endif  // RMT_MODEL_UNTRAINED_MODEL_H_
