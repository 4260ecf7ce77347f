// The RMT step on a CUDA device: golden parity against the float64 Python
// reference (tests/golden/) in fp32 with TF32 off and in bf16, and CUDA-graph
// replay (model/step_graphs.h) against the eager step. Built with RMT_CUDA;
// every test skips, saying why, when no CUDA device is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/rmt_model.h"
#include "model/step_graphs.h"
#include "tests/cuda_test_util.h"
#include "tests/golden_fixture.h"
#include "tests/tiny_model.h"

namespace rmt {
namespace {

using ::rmt::testing::GoldenFixture;
using ::rmt::testing::kBfloat16LogitsTolerance;
using ::rmt::testing::kBfloat16MemoryTolerance;
using ::rmt::testing::NormRelativeError;
using ::rmt::testing::RandomTokens;
using ::rmt::testing::RelativeError;
using ::rmt::testing::TinyModel;

constexpr double kFloat32Tolerance = 1e-5;  // max-abs relative, as on the CPU

class CudaGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    RMT_REQUIRE_CUDA();
    ASSERT_TRUE(golden_.Load(GetParam()).ok());
  }

  RmtModel LoadModel(torch::ScalarType dtype) {
    LoadOptions load;
    load.device = torch::Device(torch::kCUDA, 0);
    load.dtype = dtype;
    auto bundle = golden_.LoadModel(load);
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    return bundle.ok() ? (*bundle)->model : RmtModel(nullptr);
  }

  GoldenFixture golden_;
};

TEST_P(CudaGoldenTest, Float32WithTf32OffMatchesReference) {
  torch::NoGradGuard no_grad;
  RmtModel model = LoadModel(torch::kFloat);
  ASSERT_FALSE(model.is_empty());
  ASSERT_TRUE(model->classifier->weight.is_cuda());
  torch::Tensor memory = model->InitMemory(golden_.batch());
  for (int64_t s = 0; s < golden_.segments(); ++s) {
    memory = model->Step(memory, model->MakeBatch(golden_.Segment(s)));
    ASSERT_TRUE(memory.is_cuda());
    EXPECT_LT(
        RelativeError(memory, golden_.Expected(absl::StrCat("memory.", s))),
        kFloat32Tolerance)
        << "after segment " << s;
  }
  torch::Tensor logits =
      model->Answer(memory, model->MakeBatch(golden_.Questions()));
  EXPECT_LT(RelativeError(logits, golden_.Expected("logits")),
            kFloat32Tolerance);
}

// bf16 weights and compute, memory kept in fp32 between segments
// (golden_fixture.h: the tolerances and why the logits get more).
TEST_P(CudaGoldenTest, Bfloat16StaysWithinBf16Tolerance) {
  torch::NoGradGuard no_grad;
  RmtModel model = LoadModel(torch::kBFloat16);
  ASSERT_FALSE(model.is_empty());
  ASSERT_EQ(model->classifier->weight.scalar_type(), torch::kBFloat16);
  torch::Tensor memory = model->InitMemory(golden_.batch()).to(torch::kFloat);
  for (int64_t s = 0; s < golden_.segments(); ++s) {
    memory = model->Step(memory, model->MakeBatch(golden_.Segment(s)));
    ASSERT_EQ(memory.scalar_type(), torch::kFloat);
    EXPECT_LT(
        NormRelativeError(memory, golden_.Expected(absl::StrCat("memory.", s))),
        kBfloat16MemoryTolerance)
        << "after segment " << s;
  }
  torch::Tensor logits =
      model->Answer(memory, model->MakeBatch(golden_.Questions()));
  EXPECT_LT(
      NormRelativeError(logits.to(torch::kFloat), golden_.Expected("logits")),
      kBfloat16LogitsTolerance);
}

// The whole golden document through CUDA graphs (the batch of 3 replays the
// bucket of 4 with a filler row) matches the reference as tightly as eager.
TEST_P(CudaGoldenTest, GraphReplayMatchesReference) {
  torch::NoGradGuard no_grad;
  RmtModel model = LoadModel(torch::kFloat);
  ASSERT_FALSE(model.is_empty());
  StepGraphsOptions options;
  options.max_batch = 4;
  auto graphs = StepGraphs::Create(model, torch::kFloat, options);
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  torch::Tensor memory = model->InitMemory(golden_.batch()).clone();
  for (int64_t s = 0; s < golden_.segments(); ++s) {
    memory = (*graphs)->Run(memory, golden_.Segment(s)).memory.clone();
    EXPECT_LT(
        RelativeError(memory, golden_.Expected(absl::StrCat("memory.", s))),
        kFloat32Tolerance)
        << "after segment " << s;
  }
  torch::Tensor logits = (*graphs)->Run(memory, golden_.Questions()).logits;
  EXPECT_LT(RelativeError(logits, golden_.Expected("logits")),
            kFloat32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(BothAttentionModes, CudaGoldenTest,
                         ::testing::Values("full", "bottleneck"));

// Runs everywhere: what needs no GPU.
TEST(StepGraphsBuildTest, BucketsAndRefusals) {
  EXPECT_TRUE(StepGraphsBuilt());
  EXPECT_EQ(BatchBuckets(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(BatchBuckets(6), (std::vector<int64_t>{1, 2, 4, 6}));
  EXPECT_EQ(BatchBuckets(32), (std::vector<int64_t>{1, 2, 4, 8, 16, 32}));
  RmtModel cpu_model = TinyModel();
  cpu_model->eval();
  EXPECT_EQ(StepGraphs::Create(cpu_model, torch::kFloat, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  StepGraphsOptions no_rows;
  no_rows.max_batch = 0;
  EXPECT_EQ(
      StepGraphs::Create(cpu_model, torch::kFloat, no_rows).status().code(),
      absl::StatusCode::kInvalidArgument);
}

class StepGraphsTest : public ::testing::TestWithParam<MemoryAttention> {
 protected:
  void SetUp() override { RMT_REQUIRE_CUDA(); }
};

// Every batch size up to max_batch, with and without padding, replays to
// what the eager step computes for the same rows at the same fixed length;
// a replay leaves no trace in the next one.
TEST_P(StepGraphsTest, ReplayEqualsEagerForEveryBatchSize) {
  torch::NoGradGuard no_grad;
  RmtModel model = TinyModel(11, GetParam());
  model->to(torch::Device(torch::kCUDA, 0));
  model->eval();
  const ModelConfig& config = model->config();
  StepGraphsOptions options;
  options.max_batch = 6;
  auto graphs = StepGraphs::Create(model, torch::kFloat, options);
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  EXPECT_EQ((*graphs)->buckets(), (std::vector<int64_t>{1, 2, 4, 6}));

  std::mt19937 rng(3);
  std::uniform_int_distribution<int> length(1, config.rmt.segment_size);
  for (int rows = 1; rows <= options.max_batch; ++rows) {
    for (bool full : {false, true}) {
      std::vector<std::vector<int32_t>> segments;
      for (int r = 0; r < rows; ++r) {
        segments.push_back(RandomTokens(
            rng, full ? config.rmt.segment_size : length(rng), config));
      }
      torch::Tensor memory =
          torch::randn({rows, config.rmt.num_mem_tokens, config.hidden_size},
                       torch::TensorOptions().device(torch::kCUDA));
      StepOutput eager = model->Forward(
          memory, model->MakeBatch(segments, config.segment_length()),
          /*with_logits=*/true);
      StepOutput replayed = (*graphs)->Run(memory, segments);
      ASSERT_EQ(replayed.memory.sizes(), eager.memory.sizes());
      EXPECT_LT(RelativeError(replayed.memory, eager.memory), 1e-5)
          << rows << " rows, " << (full ? "full" : "padded");
      EXPECT_LT(RelativeError(replayed.logits, eager.logits), 1e-5)
          << rows << " rows, " << (full ? "full" : "padded");
    }
  }
}

TEST_P(StepGraphsTest, RefusesOversizedBatches) {
  torch::NoGradGuard no_grad;
  RmtModel model = TinyModel(11, GetParam());
  model->to(torch::Device(torch::kCUDA, 0));
  model->eval();
  StepGraphsOptions options;
  options.max_batch = 2;
  auto graphs = StepGraphs::Create(model, torch::kFloat, options);
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  std::vector<std::vector<int32_t>> three(3, std::vector<int32_t>{5, 6});
  EXPECT_THROW((*graphs)->Run(model->InitMemory(3), three), c10::Error);
}

INSTANTIATE_TEST_SUITE_P(
    BothAttentionModes, StepGraphsTest,
    ::testing::Values(MemoryAttention::kFull, MemoryAttention::kBottleneck),
    [](const ::testing::TestParamInfo<MemoryAttention>& info) {
      return std::string(info.param == MemoryAttention::kFull ? "full"
                                                              : "bottleneck");
    });

}  // namespace
}  // namespace rmt
