// Small randomly initialised models for tests: fast on a CPU, yet with
// weights large enough (std 0.2) that every layer visibly changes the memory.
#ifndef RMT_TESTS_TINY_MODEL_H_
#define RMT_TESTS_TINY_MODEL_H_

#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model_directory.h"
#include "model/rmt_model.h"

namespace rmt::testing {

inline ModelConfig TinyConfig(
    MemoryAttention attention = MemoryAttention::kFull) {
  ModelConfig config;
  config.vocab_size = 64 + 4;
  config.hidden_size = 32;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.intermediate_size = 64;
  config.max_position_embeddings = 40;
  config.hidden_dropout_prob = 0;
  config.attention_probs_dropout_prob = 0;
  config.labels = {"red", "green", "blue", "cyan", "magenta"};
  config.rmt.num_mem_tokens = 4;
  config.rmt.segment_size = 16;
  config.rmt.memory_attention = attention;
  return config;
}

inline RmtModel TinyModel(uint64_t seed = 7,
                          MemoryAttention attention = MemoryAttention::kFull) {
  RmtModel model =
      CreateRandomModel(TinyConfig(attention), SpecialTokens{}, seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    if (item.key().find("LayerNorm") == std::string::npos) {
      item.value().mul_(10.0);  // std 0.02 -> 0.2
    }
  }
  return model;
}

// Random content ids (above the special tokens) of the given length.
inline std::vector<int32_t> RandomTokens(std::mt19937& rng, int length,
                                         const ModelConfig& config) {
  std::uniform_int_distribution<int32_t> id(5, config.content_vocab_size() - 1);
  std::vector<int32_t> tokens(length);
  for (auto& t : tokens) t = id(rng);
  return tokens;
}

// max |a - b| / max |b|: relative error that ignores near-zero entries.
inline double RelativeError(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor x = a.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor y = b.detach().to(torch::kCPU, torch::kDouble);
  double scale = y.abs().max().item<double>();
  if (scale == 0) scale = 1;
  return (x - y).abs().max().item<double>() / scale;
}

// ||a - b|| / ||b|| (Frobenius): the usual measure for reduced-precision
// compute, where single elements may round further than the whole.
inline double NormRelativeError(const torch::Tensor& a,
                                const torch::Tensor& b) {
  torch::Tensor x = a.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor y = b.detach().to(torch::kCPU, torch::kDouble);
  const double scale = y.norm().item<double>();
  return (x - y).norm().item<double>() / (scale == 0 ? 1 : scale);
}

}  // namespace rmt::testing

#endif  // RMT_TESTS_TINY_MODEL_H_
