// What the trainer's tests share (train_test.cc on the CPU, cuda_train_test.cc
// on a GPU): task data over a given noise text, a model small enough to train
// in seconds, and the trainer's JSONL log read back.
#ifndef RMT_TESTS_TRAIN_FIXTURE_H_
#define RMT_TESTS_TRAIN_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "train/noise_text.h"
#include "train/tasks.h"

namespace rmt::testing {

struct TrainFixture {
  NoiseText noise;
  std::shared_ptr<const Vocabulary> vocab;  // built from the noise
  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  std::unique_ptr<TaskGenerator> generator;
};

inline std::unique_ptr<TrainFixture> MakeTrainFixture(
    const std::vector<std::string>& noise_files, int64_t segment_size) {
  auto f = std::make_unique<TrainFixture>();
  auto noise = NoiseText::Load(noise_files);
  EXPECT_TRUE(noise.ok()) << noise.status();
  if (noise.ok()) f->noise = *std::move(noise);
  auto vocab = BuildTaskVocabulary(f->noise, 1500);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  if (!vocab.ok()) return f;
  f->vocab = *vocab;
  f->tokenizer =
      std::make_shared<WordPieceTokenizer>(f->vocab, TokenizerOptions{});
  auto generator = TaskGenerator::Create(f->tokenizer, f->noise, segment_size);
  EXPECT_TRUE(generator.ok()) << generator.status();
  if (generator.ok()) {
    f->generator = std::make_unique<TaskGenerator>(*std::move(generator));
  }
  return f;
}

// Two layers of width 32, two memory tokens, no dropout (so runs on two
// devices see the same computation), the tasks' labels.
inline ModelConfig SmokeConfig(const Vocabulary& vocab, int64_t segment_size) {
  ModelConfig config;
  config.rmt.num_mem_tokens = 2;
  config.rmt.segment_size = segment_size;
  config.vocab_size = vocab.size() + 2;
  config.hidden_size = 32;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  // MemBottleneck learns the memory path in a few hundred steps where full
  // attention stalls for thousands (measured while building the reference
  // model), which keeps the trainer's smoke tests to seconds.
  config.rmt.memory_attention = MemoryAttention::kBottleneck;
  config.intermediate_size = 64;
  config.max_position_embeddings = config.segment_length();
  config.hidden_dropout_prob = 0;
  config.attention_probs_dropout_prob = 0;
  config.labels = TaskLabels();
  return config;
}

// One JSON object per line of the trainer's log.
inline std::vector<nlohmann::json> LogLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

}  // namespace rmt::testing

#endif  // RMT_TESTS_TRAIN_FIXTURE_H_
