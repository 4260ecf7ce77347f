// rmt-import (tools/hf_import.h) on the tiny Hugging Face fixture
// (tests/golden/hf/, written by transformers' save_pretrained): the imported
// model's encoder still computes what transformers computes, memory rows
// and a classifier are added, and layers, vocabulary and dtype are cut as
// asked.
#include "tools/hf_import.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"
#include "tests/plain_bert.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using ::rmt::testing::FixtureTensor;
using ::rmt::testing::MaxAbsError;
using ::rmt::testing::RunPlainBert;

const std::string kHfDir = RMT_SOURCE_DIR "/tests/golden/hf";
constexpr double kTolerance = 1e-5;

torch::Tensor Load(const SafetensorsFile& file, const std::string& name) {
  torch::Tensor tensor = FixtureTensor(file, name);
  return tensor.defined() ? tensor.to(torch::kFloat) : tensor;
}

class HfImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat(
               "rmt_hf_import_test_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto expected = SafetensorsFile::Open(kHfDir + "/expected.safetensors");
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = std::move(*expected);
    auto source = SafetensorsFile::Open(kHfDir + "/model/model.safetensors");
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = std::move(*source);
    options_.labels = {"yes", "no", "maybe", "unknown"};
    options_.num_mem_tokens = 3;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Out() const { return (dir_ / "out").string(); }

  std::shared_ptr<ModelBundle> Import() {
    auto report = ImportHfCheckpoint(kHfDir + "/model", Out(), options_);
    EXPECT_TRUE(report.ok()) << report.status();
    if (!report.ok()) return nullptr;
    report_ = *report;
    auto bundle = LoadModelDirectory(Out());
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    return bundle.ok() ? *bundle : nullptr;
  }

  fs::path dir_;
  ImportOptions options_;
  ImportReport report_;
  std::unique_ptr<SafetensorsFile> expected_;
  std::unique_ptr<SafetensorsFile> source_;
};

TEST_F(HfImportTest, KeepsTheEncoderAndAddsMemoryAndClassifier) {
  auto bundle = Import();
  ASSERT_NE(bundle, nullptr);
  const ModelConfig& config = bundle->config;
  EXPECT_EQ(config.rmt.num_mem_tokens, 3);
  EXPECT_EQ(config.vocab_size, 121 + 3);
  EXPECT_EQ(config.rmt.segment_size, 64 - 3 - 3);
  EXPECT_EQ(config.labels, options_.labels);
  EXPECT_EQ(bundle->tokenizer->vocab().size(), 121);

  torch::Tensor words =
      bundle->model->bert->embeddings->word_embeddings->weight.detach();
  torch::Tensor source_words =
      Load(*source_, "bert.embeddings.word_embeddings.weight");
  EXPECT_TRUE(torch::equal(words.slice(0, 0, 121), source_words));
  // The memory rows: new, normal(0, initializer_range = 0.2).
  torch::Tensor memory = words.slice(0, 121);
  EXPECT_GT(memory.std().item<double>(), 0.1);
  EXPECT_LT(memory.std().item<double>(), 0.3);
  EXPECT_TRUE(torch::equal(bundle->model->InitMemory(1)[0], memory));
  EXPECT_EQ(bundle->model->classifier->weight.sizes(),
            (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(bundle->model->classifier->bias.abs().max().item<double>(), 0);

  auto out = RunPlainBert(*bundle->model, Load(*expected_, "input_ids"),
                          Load(*expected_, "attention_mask"));
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    EXPECT_LT(MaxAbsError(out.hidden_states[i],
                          Load(*expected_, absl::StrCat("hidden_states.", i))),
              kTolerance)
        << i;
  }
}

TEST_F(HfImportTest, KeepsOnlyTheFirstLayers) {
  options_.keep_layers = 1;
  auto bundle = Import();
  ASSERT_NE(bundle, nullptr);
  EXPECT_EQ(bundle->config.num_hidden_layers, 1);
  EXPECT_EQ(report_.source_layers, 2);
  auto out = RunPlainBert(*bundle->model, Load(*expected_, "input_ids"),
                          Load(*expected_, "attention_mask"));
  ASSERT_EQ(out.hidden_states.size(), 2u);
  EXPECT_LT(
      MaxAbsError(out.hidden_states[1], Load(*expected_, "hidden_states.1")),
      kTolerance);
}

TEST_F(HfImportTest, PrunesTheVocabularyToACorpus) {
  fs::create_directories(dir_);
  const std::string corpus = (dir_ / "corpus.txt").string();
  const std::string text = "The cat sat on the mat. Where is Mary? Tokenizers!";
  std::ofstream(corpus) << text;
  options_.prune_corpus = {corpus};
  auto bundle = Import();
  ASSERT_NE(bundle, nullptr);
  auto original = LoadTokenizer(kHfDir + "/model");
  ASSERT_TRUE(original.ok()) << original.status();
  const int32_t kept = bundle->tokenizer->vocab().size();
  EXPECT_LT(kept, 40);
  EXPECT_EQ(report_.kept_vocab, kept);
  EXPECT_EQ(bundle->config.vocab_size, kept + 3);
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    EXPECT_GE(bundle->tokenizer->vocab().Find(special), 0) << special;
  }
  // The corpus tokenizes to the same pieces, and each kept piece keeps its
  // embedding row.
  auto before = (*original)->Encode(text);
  auto after = bundle->tokenizer->Encode(text);
  ASSERT_TRUE(before.ok() && after.ok());
  ASSERT_EQ(before->size(), after->size());
  torch::Tensor source_words =
      Load(*source_, "bert.embeddings.word_embeddings.weight");
  torch::Tensor words =
      bundle->model->bert->embeddings->word_embeddings->weight.detach();
  for (size_t i = 0; i < before->size(); ++i) {
    EXPECT_EQ((*original)->vocab().Token((*before)[i]),
              bundle->tokenizer->vocab().Token((*after)[i]));
    EXPECT_TRUE(torch::equal(words[(*after)[i]], source_words[(*before)[i]]));
  }
}

TEST_F(HfImportTest, StoresHalfPrecision) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    options_.dtype = dtype;
    options_.truncate_positions = true;
    auto bundle = Import();
    ASSERT_NE(bundle, nullptr);
    auto file = SafetensorsFile::Open(Out() + "/model.safetensors");
    ASSERT_TRUE(file.ok()) << file.status();
    for (const auto& [name, view] : (*file)->tensors()) {
      EXPECT_EQ(view.dtype, dtype) << name;
    }
    EXPECT_EQ(bundle->config.max_position_embeddings,
              bundle->config.segment_length());
    // Every source weight, rounded once.
    torch::Tensor source =
        Load(*source_, "bert.encoder.layer.1.output.dense.weight");
    auto scalar = ToScalarType(dtype);
    ASSERT_TRUE(scalar.ok());
    torch::Tensor stored =
        Load(**file, "bert.encoder.layer.1.output.dense.weight");
    EXPECT_TRUE(torch::equal(stored, source.to(*scalar).to(torch::kFloat)));
    EXPECT_EQ(report_.weight_bytes, report_.parameters * 2);
  }
}

TEST_F(HfImportTest, RefusesBadOptions) {
  auto fails = [&](const ImportOptions& options) {
    auto report = ImportHfCheckpoint(kHfDir + "/model", Out(), options);
    return report.status().code();
  };
  ImportOptions options = options_;
  options.labels = {};
  EXPECT_EQ(fails(options), absl::StatusCode::kInvalidArgument);
  options.labels = {"a", "a"};
  EXPECT_EQ(fails(options), absl::StatusCode::kInvalidArgument);
  options = options_;
  options.keep_layers = 3;
  EXPECT_EQ(fails(options), absl::StatusCode::kInvalidArgument);
  options = options_;
  options.segment_size = 64;  // no room for [CLS], memory and [SEP]s
  EXPECT_EQ(fails(options), absl::StatusCode::kInvalidArgument);
  options = options_;
  options.num_mem_tokens = 0;
  EXPECT_EQ(fails(options), absl::StatusCode::kInvalidArgument);
  // An imported model is an RMT already.
  ASSERT_NE(Import(), nullptr);
  auto again = ImportHfCheckpoint(Out(), (dir_ / "again").string(), options_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rmt
