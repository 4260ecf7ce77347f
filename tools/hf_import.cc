#include "tools/hf_import.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/checkpoint_layout.h"
#include "model/file_util.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"
#include "model/torch_interop.h"
#include "nlohmann/json.hpp"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string PathIn(const std::string& dir, const char* name) {
  return (fs::path(dir) / name).string();
}

// The source config as a plain BERT with the new labels: Hugging Face's
// keys are checked by ModelConfig::FromJson like any model directory's.
absl::StatusOr<std::pair<ModelConfig, double>> ReadSourceConfig(
    const std::string& path, const std::vector<std::string>& labels) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON object"));
  }
  if (root.contains("rmt")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": already an RMT model (has \"rmt\"); import a plain BERT"));
  }
  Json id2label = Json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
  }
  root["id2label"] = id2label;
  root.erase("label2id");
  const double initializer_range = root.value("initializer_range", 0.02);
  if (!(initializer_range > 0 && initializer_range < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": \"initializer_range\" must be in (0, 1)"));
  }
  ASSIGN_OR_RETURN(ModelConfig config,
                   ModelConfig::FromJson(root.dump(), path));
  return std::make_pair(std::move(config), initializer_range);
}

absl::Status CheckLabels(const std::vector<std::string>& labels) {
  if (labels.empty()) return absl::InvalidArgumentError("no labels given");
  std::set<std::string> seen;
  for (const std::string& label : labels) {
    if (label.empty() || !seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels must be non-empty and unique; got \"", label,
                       "\" twice or empty"));
    }
  }
  return absl::OkStatus();
}

// Ids of `vocab` to keep, ascending: all of them, or the special tokens and
// every piece the corpus files tokenize to.
absl::StatusOr<std::vector<int32_t>> KeptIds(
    const WordPieceTokenizer& tokenizer,
    const std::vector<std::string>& corpus) {
  const Vocabulary& vocab = tokenizer.vocab();
  std::vector<int32_t> kept;
  if (corpus.empty()) {
    for (int32_t id = 0; id < vocab.size(); ++id) kept.push_back(id);
    return kept;
  }
  std::set<int32_t> used;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    if (vocab.Find(special) >= 0) used.insert(vocab.Find(special));
  }
  for (const std::string& path : corpus) {
    ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
    auto ids = tokenizer.Encode(text);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", ids.status().message()));
    }
    used.insert(ids->begin(), ids->end());
  }
  return std::vector<int32_t>(used.begin(), used.end());
}

class Importer {
 public:
  Importer(const SafetensorsFile& weights, double initializer_range,
           uint64_t seed)
      : weights_(weights),
        initializer_range_(initializer_range),
        generator_(at::detail::createCPUGenerator(seed)) {
    prefix_ = weights.tensors().count("bert.embeddings.word_embeddings.weight")
                  ? "bert."
                  : "";
  }

  bool Has(const std::string& name) const {
    return weights_.tensors().count(SourceName(name)) > 0;
  }

  // The checkpoint's tensor for our name "bert.…" as float32, with `shape`.
  absl::StatusOr<torch::Tensor> Source(const std::string& name,
                                       const std::vector<int64_t>& shape) {
    auto view = weights_.Get(SourceName(name));
    if (!view.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          weights_.path(), ": missing tensor \"", SourceName(name), "\""));
    }
    if (view->dtype != DType::kF32 && view->dtype != DType::kF16 &&
        view->dtype != DType::kBF16) {
      return absl::InvalidArgumentError(
          absl::StrCat(weights_.path(), ": tensor \"", SourceName(name),
                       "\" is not F32, F16 or BF16"));
    }
    ASSIGN_OR_RETURN(torch::Tensor tensor, TensorFromView(*view));
    if (tensor.sizes().vec() != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          weights_.path(), ": tensor \"", SourceName(name), "\" has shape ",
          c10::str(tensor.sizes()), "; config.json implies ",
          c10::str(torch::IntArrayRef(shape))));
    }
    return tensor.to(torch::kFloat);
  }

  // Hugging Face's initialisation of a new Linear weight or embedding row.
  torch::Tensor Normal(const std::vector<int64_t>& shape) {
    return torch::empty(shape).normal_(0.0, initializer_range_, generator_);
  }

 private:
  std::string SourceName(const std::string& name) const {
    // Our names are "bert.…" and "classifier.…".
    return prefix_ + name.substr(std::string("bert.").size());
  }

  const SafetensorsFile& weights_;
  double initializer_range_;
  at::Generator generator_;
  std::string prefix_;
};

}  // namespace

absl::StatusOr<ImportReport> ImportHfCheckpoint(const std::string& from,
                                                const std::string& out,
                                                const ImportOptions& options) {
  RETURN_IF_ERROR(CheckLabels(options.labels));
  if (options.num_mem_tokens <= 0) {
    return absl::InvalidArgumentError("num_mem_tokens must be positive");
  }
  if (options.dtype != DType::kF32 && options.dtype != DType::kF16 &&
      options.dtype != DType::kBF16) {
    return absl::InvalidArgumentError("dtype must be F32, F16 or BF16");
  }
  ASSIGN_OR_RETURN(auto source, ReadSourceConfig(PathIn(from, "config.json"),
                                                 options.labels));
  const ModelConfig& src = source.first;
  ASSIGN_OR_RETURN(std::unique_ptr<WordPieceTokenizer> tokenizer,
                   LoadTokenizer(from));
  const Vocabulary& vocab = tokenizer->vocab();
  if (vocab.size() > src.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        PathIn(from, "vocab.txt"), ": has ", vocab.size(),
        " tokens, more than config.json's vocab_size ", src.vocab_size));
  }
  if (options.keep_layers < 0 || options.keep_layers > src.num_hidden_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot keep ", options.keep_layers, " of ",
                     src.num_hidden_layers, " layers"));
  }
  ASSIGN_OR_RETURN(const std::vector<int32_t> kept,
                   KeptIds(*tokenizer, options.prune_corpus));

  ImportReport report;
  report.source_vocab = vocab.size();
  report.kept_vocab = static_cast<int64_t>(kept.size());
  report.source_layers = src.num_hidden_layers;
  ModelConfig config = src;
  config.num_hidden_layers =
      options.keep_layers > 0 ? options.keep_layers : src.num_hidden_layers;
  config.rmt.num_mem_tokens = options.num_mem_tokens;
  config.rmt.segment_size =
      options.segment_size > 0
          ? options.segment_size
          : src.max_position_embeddings - options.num_mem_tokens - 3;
  config.rmt.memory_attention = options.memory_attention;
  config.rmt.memory_dtype = options.memory_dtype;
  config.vocab_size = report.kept_vocab + options.num_mem_tokens;
  if (options.truncate_positions) {
    config.max_position_embeddings =
        std::min(src.max_position_embeddings, config.segment_length());
  }
  RETURN_IF_ERROR(config.Validate("rmt-import options"));
  report.config = config;

  const std::string weights_path = PathIn(from, "model.safetensors");
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> weights,
                   SafetensorsFile::Open(weights_path));
  Importer importer(*weights, source.second, options.seed);
  ASSIGN_OR_RETURN(const torch::ScalarType out_type,
                   ToScalarType(options.dtype));

  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> keep_alive;
  std::vector<std::pair<std::string, TensorView>> tensors;
  const int64_t d = config.hidden_size;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    const std::string& name = spec.name;
    torch::Tensor value;
    if (name == "bert.embeddings.word_embeddings.weight") {
      ASSIGN_OR_RETURN(torch::Tensor words,
                       importer.Source(name, {src.vocab_size, d}));
      torch::Tensor index = torch::tensor(
          std::vector<int64_t>(kept.begin(), kept.end()), torch::kLong);
      value = torch::cat({words.index_select(0, index),
                          importer.Normal({options.num_mem_tokens, d})});
    } else if (name == "bert.embeddings.position_embeddings.weight") {
      ASSIGN_OR_RETURN(torch::Tensor positions,
                       importer.Source(name, {src.max_position_embeddings, d}));
      value = positions.slice(0, 0, config.max_position_embeddings);
    } else if (absl::StartsWith(name, "classifier.") ||
               (absl::StartsWith(name, "bert.pooler.") &&
                !importer.Has(name))) {
      // A new head (and a new pooler for checkpoints saved without one).
      value = absl::EndsWith(name, ".weight") ? importer.Normal(spec.shape)
                                              : torch::zeros(spec.shape);
    } else {
      ASSIGN_OR_RETURN(value, importer.Source(name, spec.shape));
    }
    keep_alive.push_back(value.to(out_type).contiguous());
    ASSIGN_OR_RETURN(TensorView view, ViewOfTensor(keep_alive.back()));
    tensors.emplace_back(name, view);
    report.parameters += keep_alive.back().numel();
    report.weight_bytes += static_cast<int64_t>(keep_alive.back().nbytes());
  }

  std::error_code error;
  fs::create_directories(out, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat(out, ": cannot create directory: ", error.message()));
  }
  std::vector<std::string> tokens;
  tokens.reserve(kept.size());
  for (int32_t id : kept) tokens.push_back(vocab.Token(id));
  ASSIGN_OR_RETURN(auto kept_vocab, Vocabulary::FromTokens(std::move(tokens)));
  RETURN_IF_ERROR(kept_vocab->Save(PathIn(out, "vocab.txt")));
  RETURN_IF_ERROR(WriteStringToFile(PathIn(out, "tokenizer_config.json"),
                                    tokenizer->options().ToJson()));
  RETURN_IF_ERROR(
      WriteStringToFile(PathIn(out, "config.json"), config.ToJson()));
  RETURN_IF_ERROR(WriteSafetensors(PathIn(out, "model.safetensors"), tensors,
                                   {{"format", "pt"}}));
  return report;
}

}  // namespace rmt
