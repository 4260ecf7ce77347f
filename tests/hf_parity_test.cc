// The loader and the encoder against the real Hugging Face library.
//
// tests/golden/hf/ is written by tests/golden/make_hf_golden.py (pinned
// transformers, scripts/hf_venv.sh): a random BertForSequenceClassification
// saved with save_pretrained, and what transformers computes with it. The
// directory is loaded exactly as Hugging Face wrote it (no "rmt" key: a plain
// BERT, no memory) and our encoder must agree within 1e-5 at every layer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"
#include "nlohmann/json.hpp"
#include "tests/plain_bert.h"

namespace rmt {
namespace {

using ::rmt::testing::FixtureTensor;
using ::rmt::testing::MaxAbsError;
using ::rmt::testing::RunPlainBert;

constexpr double kTolerance = 1e-5;

std::string HfDir() { return absl::StrCat(RMT_SOURCE_DIR, "/tests/golden/hf"); }

class HfParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bundle = LoadModelDirectory(HfDir() + "/model");
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *bundle;
    auto expected = SafetensorsFile::Open(HfDir() + "/expected.safetensors");
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = std::move(*expected);
  }

  std::shared_ptr<ModelBundle> bundle_;
  std::unique_ptr<SafetensorsFile> expected_;
};

TEST_F(HfParityTest, LoadsSavePretrainedDirectoryAsPlainBert) {
  const ModelConfig& config = bundle_->config;
  EXPECT_EQ(config.rmt.num_mem_tokens, 0);
  EXPECT_EQ(config.rmt.segment_size, config.max_position_embeddings - 3);
  EXPECT_EQ(config.labels,
            (std::vector<std::string>{"office", "kitchen", "garden"}));
  EXPECT_EQ(config.vocab_size, bundle_->tokenizer->vocab().size());
  EXPECT_TRUE(bundle_->tokenizer->options().do_lower_case);
  EXPECT_TRUE(bundle_->tokenizer->options().strip_accents);
}

TEST_F(HfParityTest, TokenizerGivesTheFixtureIds) {
  const auto texts = nlohmann::json::parse(expected_->metadata().at("texts"));
  torch::Tensor ids = FixtureTensor(*expected_, "input_ids");
  torch::Tensor mask = FixtureTensor(*expected_, "attention_mask");
  ASSERT_EQ(ids.size(0), static_cast<int64_t>(texts.size()));
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto ours = bundle_->tokenizer->Encode(texts[b].get<std::string>());
    ASSERT_TRUE(ours.ok()) << ours.status();
    std::vector<int64_t> expected;
    const int64_t length = mask[b].sum().item<int64_t>();
    for (int64_t t = 1; t + 1 < length; ++t) {  // without [CLS] and [SEP]
      expected.push_back(ids[b][t].item<int64_t>());
    }
    EXPECT_EQ(std::vector<int64_t>(ours->begin(), ours->end()), expected)
        << texts[b];
  }
}

TEST_F(HfParityTest, HiddenStatesAndLogitsMatchTransformers) {
  auto out =
      RunPlainBert(*bundle_->model, FixtureTensor(*expected_, "input_ids"),
                   FixtureTensor(*expected_, "attention_mask"));
  const int64_t layers = bundle_->config.num_hidden_layers;
  ASSERT_EQ(static_cast<int64_t>(out.hidden_states.size()), layers + 1);
  double worst = 0;
  for (int64_t i = 0; i <= layers; ++i) {
    torch::Tensor expected =
        FixtureTensor(*expected_, absl::StrCat("hidden_states.", i));
    ASSERT_EQ(out.hidden_states[i].sizes(), expected.sizes());
    const double error = MaxAbsError(out.hidden_states[i], expected);
    EXPECT_LT(error, kTolerance) << "hidden_states." << i;
    worst = std::max(worst, error);
  }
  torch::Tensor logits = FixtureTensor(*expected_, "logits");
  ASSERT_EQ(out.logits.sizes(), logits.sizes());
  const double logits_error = MaxAbsError(out.logits, logits);
  EXPECT_LT(logits_error, kTolerance);
  RecordProperty("max_abs_error_hidden", absl::StrCat(worst));
  RecordProperty("max_abs_error_logits", absl::StrCat(logits_error));
  std::cout << "max abs error: hidden states " << worst << ", logits "
            << logits_error << "\n";
}

}  // namespace
}  // namespace rmt
