#include "model/checkpoint_layout.h"

#include "absl/strings/str_cat.h"

namespace rmt {
namespace {

// torch::nn::Linear(in, out): weight (out, in), bias (out).
void AddLinear(const std::string& prefix, int64_t in, int64_t out,
               std::vector<TensorSpec>* specs) {
  specs->push_back({prefix + ".weight", {out, in}});
  specs->push_back({prefix + ".bias", {out}});
}

void AddLayerNorm(const std::string& prefix, int64_t d,
                  std::vector<TensorSpec>* specs) {
  specs->push_back({prefix + ".weight", {d}});
  specs->push_back({prefix + ".bias", {d}});
}

}  // namespace

std::vector<TensorSpec> CheckpointLayout(const ModelConfig& config) {
  const int64_t d = config.hidden_size;
  std::vector<TensorSpec> specs;
  specs.push_back(
      {"bert.embeddings.word_embeddings.weight", {config.vocab_size, d}});
  specs.push_back({"bert.embeddings.position_embeddings.weight",
                   {config.max_position_embeddings, d}});
  specs.push_back({"bert.embeddings.token_type_embeddings.weight",
                   {config.type_vocab_size, d}});
  AddLayerNorm("bert.embeddings.LayerNorm", d, &specs);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string layer = absl::StrCat("bert.encoder.layer.", i);
    AddLinear(layer + ".attention.self.query", d, d, &specs);
    AddLinear(layer + ".attention.self.key", d, d, &specs);
    AddLinear(layer + ".attention.self.value", d, d, &specs);
    AddLinear(layer + ".attention.output.dense", d, d, &specs);
    AddLayerNorm(layer + ".attention.output.LayerNorm", d, &specs);
    AddLinear(layer + ".intermediate.dense", d, config.intermediate_size,
              &specs);
    AddLinear(layer + ".output.dense", config.intermediate_size, d, &specs);
    AddLayerNorm(layer + ".output.LayerNorm", d, &specs);
  }
  AddLinear("bert.pooler.dense", d, d, &specs);
  AddLinear("classifier", d, config.num_labels(), &specs);
  return specs;
}

}  // namespace rmt
