#include "model/untrained_model.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/status_macros.h"

namespace rmt {
namespace {

std::vector<std::string> CharacterVocabulary() {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                     "[MASK]"};
  for (char c = '!'; c <= '~'; ++c) {
    if (c >= 'A' && c <= 'Z') continue;  // lower-cased away
    tokens.emplace_back(1, c);
    tokens.push_back(std::string("##") + c);
  }
  return tokens;
}

}  // namespace

absl::StatusOr<std::string> CreateUntrainedModel(
    const std::string& directory, const UntrainedModelOptions& options) {
  ASSIGN_OR_RETURN(auto vocab, Vocabulary::FromTokens(CharacterVocabulary()));
  ModelConfig config;
  config.rmt.num_mem_tokens = options.num_mem_tokens;
  config.rmt.segment_size = options.segment_size;
  config.vocab_size = vocab->size() + config.rmt.num_mem_tokens;
  config.hidden_size = options.hidden_size;
  config.num_hidden_layers = options.num_hidden_layers;
  config.num_attention_heads = options.num_attention_heads;
  config.intermediate_size = options.intermediate_size;
  // Room for [CLS], the memory tokens, two [SEP] and the segment.
  config.max_position_embeddings =
      std::max<int64_t>(256, options.segment_size + options.num_mem_tokens + 3);
  for (int i = 0; i < options.num_labels; ++i) {
    config.labels.push_back(absl::StrCat("untrained-", i));
  }
  RETURN_IF_ERROR(config.Validate("untrained model"));
  RmtModel model =
      CreateRandomModel(config, SpecialTokensOf(*vocab), options.seed);
  if (options.weight_scale != 1.0) {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      if (item.key().find("LayerNorm") == std::string::npos) {
        item.value().mul_(options.weight_scale);
      }
    }
  }
  RETURN_IF_ERROR(SaveModelDirectory(directory, *model, *vocab));
  std::ofstream(std::filesystem::path(directory) / "README.txt")
      << "UNTRAINED: random weights made to exercise the code path. Its "
         "answers mean nothing.\n";
  return directory;
}

absl::StatusOr<ResolvedModel> ResolveModelDirectory(
    const std::string& requested, const std::string& untrained_dir) {
  if (!requested.empty()) return ResolvedModel{requested, false};
  if (std::filesystem::is_directory(kBundledModelDirectory)) {
    return ResolvedModel{kBundledModelDirectory, false};
  }
  ASSIGN_OR_RETURN(std::string directory, CreateUntrainedModel(untrained_dir));
  return ResolvedModel{directory, true};
}

}  // namespace rmt
