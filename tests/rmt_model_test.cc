// The RMT core against the independent Python reference (golden fixtures),
// plus the properties batching and training rely on.
#include "model/rmt_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"
#include "tests/golden_fixture.h"
#include "tests/tiny_model.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using ::rmt::testing::GoldenDir;
using ::rmt::testing::kBfloat16LogitsTolerance;
using ::rmt::testing::kBfloat16MemoryTolerance;
using ::rmt::testing::NormRelativeError;
using ::rmt::testing::RandomTokens;
using ::rmt::testing::RelativeError;
using ::rmt::testing::TinyConfig;
using ::rmt::testing::TinyModel;
using ::testing::HasSubstr;

constexpr double kGoldenTolerance = 1e-5;

torch::Tensor Expected(const SafetensorsFile& file, const std::string& name) {
  auto view = file.Get(name);
  EXPECT_TRUE(view.ok()) << view.status();
  auto tensor = TensorFromView(*view);
  EXPECT_TRUE(tensor.ok()) << tensor.status();
  return *tensor;
}

std::vector<int32_t> Ids(const torch::Tensor& tensor) {
  torch::Tensor ids = tensor.to(torch::kInt).contiguous();
  return std::vector<int32_t>(ids.data_ptr<int32_t>(),
                              ids.data_ptr<int32_t>() + ids.numel());
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto bundle = LoadModelDirectory(GoldenDir(GetParam()) + "/model");
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *bundle;
    auto expected =
        SafetensorsFile::Open(GoldenDir(GetParam()) + "/expected.safetensors");
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = std::move(*expected);
    batch_ = Expected(*expected_, "memory.0").size(0);
    while (expected_->tensors().count(absl::StrCat("memory.", segments_))) {
      ++segments_;
    }
    ASSERT_GE(segments_, 2);
  }

  std::vector<int32_t> Tokens(int64_t segment, int64_t sample) const {
    return Ids(
        Expected(*expected_, absl::StrCat("tokens.", segment, ".", sample)));
  }

  std::vector<std::vector<int32_t>> Questions() const {
    std::vector<std::vector<int32_t>> questions;
    for (int64_t b = 0; b < batch_; ++b) {
      questions.push_back(
          Ids(Expected(*expected_, absl::StrCat("question.", b))));
    }
    return questions;
  }

  std::shared_ptr<ModelBundle> bundle_;
  std::unique_ptr<SafetensorsFile> expected_;
  int64_t batch_ = 0;
  int64_t segments_ = 0;
};

TEST_P(GoldenTest, InitialMemoryIsTheLastEmbeddingRows) {
  torch::NoGradGuard no_grad;
  EXPECT_LT(RelativeError(bundle_->model->InitMemory(1)[0],
                          Expected(*expected_, "init_memory")),
            kGoldenTolerance);
}

// The whole batch at once, padded to its longest segment: padding and
// batching must not change any sample's numbers.
TEST_P(GoldenTest, BatchedMemoriesAndLogitsMatchReference) {
  torch::NoGradGuard no_grad;
  RmtModel& model = bundle_->model;
  torch::Tensor memory = model->InitMemory(batch_);
  for (int64_t s = 0; s < segments_; ++s) {
    std::vector<std::vector<int32_t>> segment;
    for (int64_t b = 0; b < batch_; ++b) segment.push_back(Tokens(s, b));
    memory = model->Step(memory, model->MakeBatch(segment));
    EXPECT_LT(
        RelativeError(memory, Expected(*expected_, absl::StrCat("memory.", s))),
        kGoldenTolerance)
        << "after segment " << s;
  }
  const std::vector<std::vector<int32_t>> questions = Questions();
  torch::Tensor logits = model->Answer(memory, model->MakeBatch(questions));
  EXPECT_LT(RelativeError(logits, Expected(*expected_, "logits")),
            kGoldenTolerance);
}

// One sample at a time, padded to the full segment length (the fixed shape
// a CUDA graph would use).
TEST_P(GoldenTest, EachSampleAloneWithFixedPaddingMatchesReference) {
  torch::NoGradGuard no_grad;
  RmtModel& model = bundle_->model;
  const int64_t full_length = model->config().segment_length();
  for (int64_t b = 0; b < batch_; ++b) {
    torch::Tensor memory = model->InitMemory(1);
    for (int64_t s = 0; s < segments_; ++s) {
      memory =
          model->Step(memory, model->MakeBatch({Tokens(s, b)}, full_length));
      torch::Tensor expected =
          Expected(*expected_, absl::StrCat("memory.", s))[b];
      EXPECT_LT(RelativeError(memory[0], expected), kGoldenTolerance)
          << "sample " << b << " segment " << s;
    }
  }
}

// A check that the fixture is sensitive: a wrong memory gives wrong logits.
TEST_P(GoldenTest, WrongMemoryDoesNotMatch) {
  torch::NoGradGuard no_grad;
  RmtModel& model = bundle_->model;
  const std::vector<std::vector<int32_t>> questions = Questions();
  torch::Tensor logits =
      model->Answer(model->InitMemory(batch_), model->MakeBatch(questions));
  EXPECT_GT(RelativeError(logits, Expected(*expected_, "logits")), 1e-3);
}

// The bf16 compute path (weights converted at load, memory kept in fp32)
// against the reference, within the CUDA path's tolerances (golden_fixture.h:
// why the logits get more), checked on the CPU. Element-wise, single values
// of the memory round up to 1.5% of the largest after four segments.
TEST_P(GoldenTest, Bfloat16ComputeStaysWithinBf16Tolerance) {
  torch::NoGradGuard no_grad;
  LoadOptions load;
  load.dtype = torch::kBFloat16;
  auto bundle = LoadModelDirectory(GoldenDir(GetParam()) + "/model", load);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  RmtModel& model = (*bundle)->model;
  ASSERT_EQ(model->classifier->weight.scalar_type(), torch::kBFloat16);
  torch::Tensor memory = model->InitMemory(batch_).to(torch::kFloat);
  for (int64_t s = 0; s < segments_; ++s) {
    std::vector<std::vector<int32_t>> segment;
    for (int64_t b = 0; b < batch_; ++b) segment.push_back(Tokens(s, b));
    memory = model->Step(memory, model->MakeBatch(segment));
    ASSERT_EQ(memory.scalar_type(), torch::kFloat);
    EXPECT_LT(NormRelativeError(
                  memory, Expected(*expected_, absl::StrCat("memory.", s))),
              kBfloat16MemoryTolerance)
        << "after segment " << s;
  }
  const std::vector<std::vector<int32_t>> questions = Questions();
  torch::Tensor logits = model->Answer(memory, model->MakeBatch(questions));
  EXPECT_LT(NormRelativeError(logits.to(torch::kFloat),
                              Expected(*expected_, "logits")),
            kBfloat16LogitsTolerance);
}

INSTANTIATE_TEST_SUITE_P(BothAttentionModes, GoldenTest,
                         ::testing::Values("full", "bottleneck"));

TEST(RmtModelTest, BottleneckDiffersFromFullAttention) {
  torch::NoGradGuard no_grad;
  RmtModel full = TinyModel(3, MemoryAttention::kFull);
  RmtModel bottleneck = TinyModel(3, MemoryAttention::kBottleneck);
  std::mt19937 rng(1);
  SegmentBatch batch = full->MakeBatch({RandomTokens(rng, 10, full->config())});
  EXPECT_GT(RelativeError(full->Step(full->InitMemory(1), batch),
                          bottleneck->Step(bottleneck->InitMemory(1), batch)),
            1e-3);
}

TEST(RmtModelTest, LayoutIsClsMemorySepTokensSepPad) {
  RmtModel model = TinyModel();
  const auto& config = model->config();
  const int64_t m = config.rmt.num_mem_tokens;
  SegmentBatch batch = model->MakeBatch({{10, 11, 12}, {20}});
  ASSERT_EQ(batch.input_ids.size(1), 3 + m + 3);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto valid = batch.attention_mask.accessor<bool, 2>();
  const SpecialTokens special;
  EXPECT_EQ(ids[0][0], special.cls);
  EXPECT_EQ(ids[0][1], config.vocab_size - m);
  EXPECT_EQ(ids[0][m + 1], special.sep);
  EXPECT_EQ(ids[0][m + 2], 10);
  EXPECT_EQ(ids[0][m + 5], special.sep);
  EXPECT_EQ(ids[1][m + 2], 20);
  EXPECT_EQ(ids[1][m + 3], special.sep);
  EXPECT_EQ(ids[1][m + 4], special.pad);
  EXPECT_TRUE(valid[1][m + 3]);
  EXPECT_FALSE(valid[1][m + 4]);
}

// Training backpropagates through whole documents: the answer's loss must
// reach the embedding of a token seen only in the first of three segments.
TEST(RmtModelTest, GradientsFlowThroughAllSegments) {
  RmtModel model = TinyModel();
  model->train();
  const int32_t first_only = 42;
  std::vector<std::vector<int32_t>> document = {
      {first_only, 5, 6}, {7, 8, 9, 10}, {11, 12}};
  torch::Tensor memory = model->InitMemory(1);
  for (const auto& segment : document) {
    memory = model->Step(memory, model->MakeBatch({segment}));
  }
  torch::Tensor logits = model->Answer(memory, model->MakeBatch({{13, 14}}));
  torch::nn::functional::cross_entropy(logits, torch::tensor({1L})).backward();
  torch::Tensor grad = model->bert->embeddings->word_embeddings->weight.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad[first_only].abs().sum().item<double>(), 0.0);
  const int64_t v = model->config().vocab_size;
  // The learned initial memory is trained too.
  EXPECT_GT(grad[v - 1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad[60].abs().sum().item<double>(), 0.0);  // a token never used
}

// The trainer's reader assist: a question may also read a document
// segment's states. Rows whose context is all masked answer exactly as
// Answer does; a row with context answers differently, and its loss reaches
// the document's token embeddings through the context as well as the memory.
TEST(RmtModelTest, AnswerWithContextReadsTheStatesOnlyWhereValid) {
  for (MemoryAttention attention :
       {MemoryAttention::kFull, MemoryAttention::kBottleneck}) {
    RmtModel model = TinyModel(5, attention);
    model->train();
    const ModelConfig& config = model->config();
    std::mt19937 rng(6);
    SegmentBatch document = model->MakeBatch(
        {RandomTokens(rng, 12, config), RandomTokens(rng, 5, config)});
    SegmentBatch questions = model->MakeBatch(
        {RandomTokens(rng, 4, config), RandomTokens(rng, 6, config)});
    StepOutput step = model->StepWithStates(model->InitMemory(2), document);
    ASSERT_TRUE(step.states.defined());
    ASSERT_EQ(step.states.sizes(),
              torch::IntArrayRef(
                  {2, document.input_ids.size(1), config.hidden_size}));
    EXPECT_LT(
        RelativeError(step.memory,
                      step.states.slice(1, 1, 1 + config.rmt.num_mem_tokens)),
        1e-7);
    torch::Tensor plain = model->Answer(step.memory, questions);
    torch::Tensor none = document.attention_mask & false;
    EXPECT_LT(RelativeError(model->AnswerWithContext(step.memory, questions,
                                                     step.states, none),
                            plain),
              1e-6);
    // Row 1 reads its states, row 0 does not.
    torch::Tensor row1 = document.attention_mask.clone();
    row1[0].fill_(false);
    torch::Tensor assisted =
        model->AnswerWithContext(step.memory, questions, step.states, row1);
    EXPECT_LT(RelativeError(assisted[0], plain[0]), 1e-6);
    EXPECT_GT(RelativeError(assisted[1], plain[1]), 1e-3);

    // Beyond the memory (a slice of the states), the loss reaches row 1's
    // states and none of row 0's.
    torch::Tensor loss =
        torch::nn::functional::cross_entropy(assisted, torch::tensor({0L, 1L}));
    torch::Tensor grad = torch::autograd::grad({loss}, {step.states})[0];
    torch::Tensor beyond_memory =
        grad.slice(1, 1 + config.rmt.num_mem_tokens).abs().sum({1, 2});
    EXPECT_GT(beyond_memory[1].item<double>(), 0.0);
    EXPECT_EQ(beyond_memory[0].item<double>(), 0.0);
  }
}

// Forward in eval mode with gradients off runs the InferenceEncoder (fused
// QKV, cached masks, last layer only where read); with gradients on it runs
// the modules. Both must compute the same numbers, padded or not.
TEST(RmtModelTest, InferencePathMatchesModules) {
  for (MemoryAttention attention :
       {MemoryAttention::kFull, MemoryAttention::kBottleneck}) {
    RmtModel model = TinyModel(5, attention);
    const ModelConfig& config = model->config();
    std::mt19937 rng(3);
    const int full = static_cast<int>(config.rmt.segment_size);
    for (const std::vector<int>& lengths :
         std::vector<std::vector<int>>{{full, full, full}, {full, 1, 7}, {3}}) {
      std::vector<std::vector<int32_t>> segments;
      for (int n : lengths) segments.push_back(RandomTokens(rng, n, config));
      SegmentBatch batch = model->MakeBatch(segments);
      // Rows are padded to the longest.
      const bool padded = std::any_of(lengths.begin(), lengths.end(),
                                      [&](int n) { return n != lengths[0]; });
      EXPECT_EQ(batch.padded, padded);
      torch::Tensor memory =
          torch::randn({static_cast<int64_t>(lengths.size()),
                        config.rmt.num_mem_tokens, config.hidden_size});
      StepOutput expected = model->Forward(memory, batch, true);  // modules
      ASSERT_TRUE(expected.memory.requires_grad());
      StepOutput fast;
      {
        c10::InferenceMode inference;
        fast = model->Forward(memory, batch, true);
      }
      EXPECT_LT(RelativeError(fast.memory, expected.memory), 1e-5);
      EXPECT_LT(RelativeError(fast.logits, expected.logits), 1e-5);
      torch::NoGradGuard no_grad;  // the same path as InferenceMode
      EXPECT_LT(RelativeError(model->Forward(memory, batch, true).memory,
                              expected.memory),
                1e-5);
    }
  }
}

// The inference layout is a copy: changing a parameter in place (an
// optimizer step) or moving the model must be seen by the next step.
TEST(RmtModelTest, InferencePathFollowsParameterChanges) {
  RmtModel model = TinyModel();
  std::mt19937 rng(4);
  SegmentBatch batch =
      model->MakeBatch({RandomTokens(rng, 9, model->config())});
  torch::Tensor memory = model->InitMemory(1).clone();
  auto fast_step = [&] {
    c10::InferenceMode inference;
    return model->Step(memory, batch).clone();
  };
  torch::Tensor before = fast_step();
  {
    torch::NoGradGuard no_grad;
    auto& self =
        *model->bert->encoder->layer->at<BertLayerImpl>(0).attention->self;
    self.key->weight.mul_(0.5);
  }
  torch::Tensor after = fast_step();
  EXPECT_GT(RelativeError(after, before), 1e-3);
  EXPECT_LT(RelativeError(after, model->Step(memory, batch)), 1e-5);
  model->to(torch::kDouble);
  memory = memory.to(torch::kDouble);
  torch::Tensor in_double = fast_step();
  EXPECT_EQ(in_double.scalar_type(), torch::kDouble);
  EXPECT_LT(RelativeError(in_double, after), 1e-5);
}

TEST(RmtModelTest, ValidateSegmentRefusesBadInput) {
  const ModelConfig config = TinyConfig();
  EXPECT_TRUE(ValidateSegment(config, {5, 6}).ok());
  EXPECT_EQ(ValidateSegment(config, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ValidateSegment(
                  config, std::vector<int32_t>(config.rmt.segment_size + 1, 5))
                  .message(),
              HasSubstr("at most"));
  EXPECT_THAT(ValidateSegment(config, {5, -1}).message(), HasSubstr("index 1"));
  EXPECT_EQ(
      ValidateSegment(config, {int32_t(config.content_vocab_size())}).code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rmt
