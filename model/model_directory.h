// A model directory on disk and the loaded model it describes.
//
//   my-model/config.json        ModelConfig (Hugging Face BERT keys + "rmt")
//   my-model/vocab.txt          WordPiece vocabulary, vocab_size - m lines
//   my-model/model.safetensors  BertForSequenceClassification tensor names
//   my-model/tokenizer_config.json   optional (do_lower_case, ...)
//
//   ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory("models/rmt-tiny", {}));
//   bundle->model->Step(...);
//
// Every malformed file is refused at load with INVALID_ARGUMENT naming the
// file and the problem (missing or unexpected tensor, wrong shape, ...).
#ifndef RMT_MODEL_MODEL_DIRECTORY_H_
#define RMT_MODEL_MODEL_DIRECTORY_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/rmt_model.h"
#include "model/tokenizer.h"

namespace rmt {

struct LoadOptions {
  torch::Device device = torch::kCPU;
  // Weights are converted to this type at load.
  torch::ScalarType dtype = torch::kFloat;
};

// A loaded model: immutable after load, shared by everything that serves it.
struct ModelBundle {
  std::string name;  // the directory's base name
  std::string directory;
  ModelConfig config;
  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  RmtModel model{nullptr};  // in eval mode
  // Hex digest of config.json and model.safetensors: snapshots carry it so a
  // memory is never restored into a different model.
  std::string fingerprint;
};

absl::StatusOr<std::shared_ptr<ModelBundle>> LoadModelDirectory(
    const std::string& directory, const LoadOptions& options = {});

// Writes config.json, vocab.txt, tokenizer_config.json and model.safetensors
// into `directory`, creating it if needed. The weights are stored as
// `weights_dtype`: torch::kFloat, torch::kBFloat16 or torch::kHalf
// (INVALID_ARGUMENT otherwise); the model itself is left as it is.
absl::Status SaveModelDirectory(
    const std::string& directory, RmtModelImpl& model, const Vocabulary& vocab,
    const TokenizerOptions& tokenizer_options = {},
    torch::ScalarType weights_dtype = torch::kFloat);

// How a random model starts. BERT's form (its initializer_range) draws
// every matrix and embedding N(0, 0.02) with zero biases. PyTorch's default
// (what LibTorch's Linear and Embedding modules start from) draws linear
// weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and embeddings
// N(0, 1). In the reasoning probe a small model trained from scratch left
// the plateau with PyTorch's form and not with normal weights at the same
// deviations: see models/rmt-babi/notes.md.
enum class InitForm { kBert, kTorch };

struct RandomInit {
  InitForm form = InitForm::kBert;
  // kBert only (kTorch's deviations follow from each layer's fan-in).
  double weight_std = 0.02;     // every matrix but the embeddings
  double embedding_std = 0.02;  // word (memory rows too), position, type
};

// Weights as `init` says, unit LayerNorm; deterministic in `seed`.
RmtModel CreateRandomModel(const ModelConfig& config,
                           const SpecialTokens& special_tokens, uint64_t seed,
                           const RandomInit& init = {});

// The special-token ids of a vocabulary.
SpecialTokens SpecialTokensOf(const Vocabulary& vocab);

}  // namespace rmt

#endif  // RMT_MODEL_MODEL_DIRECTORY_H_
