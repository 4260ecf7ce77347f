#include "model/model_directory.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/checkpoint_layout.h"
#include "model/file_util.h"
#include "model/safetensors.h"
#include "model/status_macros.h"
#include "model/torch_interop.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;

// Tensors Hugging Face checkpoints carry that this model has no use for.
bool IsIgnorableTensor(const std::string& name) {
  return absl::EndsWith(name, "position_ids");
}

// FNV-1a, 64 bit: a fingerprint to tell models apart, not a security hash
// (snapshots are authenticated separately).
uint64_t Fnv1a(const void* data, size_t size, uint64_t hash) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

// Compares the weights file with the tensors `config` implies, before any
// parameter is allocated: a config that disagrees with its checkpoint (a
// typo'd hidden_size, the wrong file) is refused by name instead of making
// torch allocate whatever the config asks for.
absl::Status CheckWeightsMatchConfig(const SafetensorsFile& file,
                                     const ModelConfig& config) {
  std::set<std::string> expected;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    auto view = file.Get(spec.name);
    if (!view.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": missing tensor \"", spec.name, "\""));
    }
    if (view->dtype != DType::kF32 && view->dtype != DType::kF16 &&
        view->dtype != DType::kBF16) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": tensor \"", spec.name, "\" has dtype ",
                       std::string(DTypeName(view->dtype)),
                       "; weights must be F32, F16 or BF16"));
    }
    if (view->shape != spec.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": tensor \"", spec.name, "\" has shape [",
          absl::StrJoin(view->shape, ", "), "] but config.json implies [",
          absl::StrJoin(spec.shape, ", "), "]"));
    }
    expected.insert(spec.name);
  }
  for (const auto& [name, view] : file.tensors()) {
    if (!expected.count(name) && !IsIgnorableTensor(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": unexpected tensor \"", name,
                       "\" (does config.json describe this checkpoint?)"));
    }
  }
  return absl::OkStatus();
}

// `file` has passed CheckWeightsMatchConfig; a mismatch here means
// CheckpointLayout and RmtModel disagree, a bug rather than a bad file.
absl::Status CopyWeights(const SafetensorsFile& file, RmtModelImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    auto view = file.Get(name);
    if (!view.ok() || view->shape != param.sizes().vec()) {
      return absl::InternalError(
          absl::StrCat(file.path(), ": parameter \"", name,
                       "\" does not match CheckpointLayout (a bug)"));
    }
    ASSIGN_OR_RETURN(torch::Tensor value, TensorFromView(*view));
    param.copy_(value);
  }
  return absl::OkStatus();
}

// The torch half of loading: allocates the model, copies the weights and
// moves them to the device. Torch reports failures (out of memory, a
// device that does not exist, ...) by throwing; they become a status here
// so that no exception leaves model loading.
absl::StatusOr<RmtModel> BuildModel(const ModelConfig& config,
                                    const SpecialTokens& special_tokens,
                                    const SafetensorsFile& weights,
                                    const LoadOptions& options) {
  try {
    RmtModel model(config, special_tokens);
    RETURN_IF_ERROR(CopyWeights(weights, *model));
    model->to(options.device, options.dtype);
    model->eval();
    return model;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(weights.path(), ": out of memory building the model on ",
                     options.device.str()));
  } catch (const c10::OutOfMemoryError& error) {  // a GPU out of memory
    return absl::ResourceExhaustedError(absl::StrCat(
        weights.path(), ": out of memory building the model on ",
        options.device.str(), ": ", error.what_without_backtrace()));
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat(
        weights.path(),
        ": building the model failed: ", error.what_without_backtrace()));
  } catch (const std::exception& error) {
    return absl::InternalError(absl::StrCat(
        weights.path(), ": building the model failed: ", error.what()));
  }
}

}  // namespace

SpecialTokens SpecialTokensOf(const Vocabulary& vocab) {
  return SpecialTokens{vocab.cls_id(), vocab.sep_id(), vocab.pad_id()};
}

absl::StatusOr<std::shared_ptr<ModelBundle>> LoadModelDirectory(
    const std::string& directory, const LoadOptions& options) {
  // The error_code overload: the throwing one would let a permission error
  // escape as an exception.
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    return absl::NotFoundError(
        absl::StrCat(directory, ": not a model directory"));
  }
  const std::string config_path =
      (fs::path(directory) / "config.json").string();
  const std::string weights_path =
      (fs::path(directory) / "model.safetensors").string();
  auto bundle = std::make_shared<ModelBundle>();
  bundle->directory = directory;
  fs::path normal = fs::path(directory).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "dir/"
  bundle->name = normal.filename().string();

  ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  ASSIGN_OR_RETURN(bundle->config,
                   ModelConfig::FromJson(config_text, config_path));
  ASSIGN_OR_RETURN(std::unique_ptr<WordPieceTokenizer> tokenizer,
                   LoadTokenizer(directory));
  const int64_t expected_vocab = bundle->config.content_vocab_size();
  if (tokenizer->vocab().size() != expected_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        (fs::path(directory) / "vocab.txt").string(), ": has ",
        tokenizer->vocab().size(), " tokens but config.json's vocab_size ",
        bundle->config.vocab_size, " minus ", bundle->config.rmt.num_mem_tokens,
        " memory tokens is ", expected_vocab));
  }
  bundle->tokenizer = std::move(tokenizer);

  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> weights,
                   SafetensorsFile::Open(weights_path));
  RETURN_IF_ERROR(CheckWeightsMatchConfig(*weights, bundle->config));
  ASSIGN_OR_RETURN(
      bundle->model,
      BuildModel(bundle->config, SpecialTokensOf(bundle->tokenizer->vocab()),
                 *weights, options));

  uint64_t hash =
      Fnv1a(config_text.data(), config_text.size(), 1469598103934665603ull);
  for (const auto& [name, view] : weights->tensors()) {
    hash = Fnv1a(name.data(), name.size(), hash);
    hash = Fnv1a(view.data, view.nbytes, hash);
  }
  bundle->fingerprint = absl::StrFormat("%016x", hash);
  return bundle;
}

absl::Status SaveModelDirectory(const std::string& directory,
                                RmtModelImpl& model, const Vocabulary& vocab,
                                const TokenizerOptions& tokenizer_options,
                                torch::ScalarType weights_dtype) {
  if (weights_dtype != torch::kFloat && weights_dtype != torch::kBFloat16 &&
      weights_dtype != torch::kHalf) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights are stored as float32, bfloat16 or float16, not ",
                     c10::toString(weights_dtype)));
  }
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) {
    return absl::InternalError(absl::StrCat(
        directory, ": cannot create directory: ", error.message()));
  }
  const ModelConfig& config = model.config();
  if (vocab.size() != config.content_vocab_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocabulary has ", vocab.size(), " tokens, config needs ",
                     config.content_vocab_size()));
  }
  RETURN_IF_ERROR(WriteStringToFile(
      (fs::path(directory) / "config.json").string(), config.ToJson()));
  RETURN_IF_ERROR(WriteStringToFile(
      (fs::path(directory) / "tokenizer_config.json").string(),
      tokenizer_options.ToJson()));
  RETURN_IF_ERROR(vocab.Save((fs::path(directory) / "vocab.txt").string()));

  std::vector<torch::Tensor> keep_alive;
  std::vector<std::pair<std::string, TensorView>> tensors;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    keep_alive.push_back(
        item.value().detach().to(torch::kCPU, weights_dtype).contiguous());
    ASSIGN_OR_RETURN(TensorView view, ViewOfTensor(keep_alive.back()));
    tensors.emplace_back(name, view);
  }
  return WriteSafetensors((fs::path(directory) / "model.safetensors").string(),
                          tensors, {{"format", "pt"}});
}

RmtModel CreateRandomModel(const ModelConfig& config,
                           const SpecialTokens& special_tokens, uint64_t seed,
                           const RandomInit& init) {
  RmtModel model(config, special_tokens);
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  const auto parameters = model->named_parameters();
  for (const auto& item : parameters) {
    const std::string& name = item.key();
    torch::Tensor param = item.value();
    if (absl::StrContains(name, "LayerNorm")) {
      param.fill_(absl::EndsWith(name, ".weight") ? 1.0 : 0.0);
    } else if (absl::StrContains(name, "embeddings.")) {
      param.normal_(0.0,
                    init.form == InitForm::kTorch ? 1.0 : init.embedding_std,
                    generator);
    } else if (init.form == InitForm::kBert) {
      if (absl::EndsWith(name, ".bias")) {
        param.zero_();
      } else {
        param.normal_(0.0, init.weight_std, generator);
      }
    } else {
      // A bias shares its layer's bound: the fan-in of the layer's weight.
      const std::string weight =
          absl::EndsWith(name, ".bias")
              ? absl::StrCat(name.substr(0, name.size() - 4), "weight")
              : name;
      const double bound =
          1.0 / std::sqrt(static_cast<double>(parameters[weight].size(1)));
      param.uniform_(-bound, bound, generator);
    }
  }
  model->eval();
  return model;
}

}  // namespace rmt
