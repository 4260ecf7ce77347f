// rmt-train's trainer on a CUDA device: the same run from the same weights
// and data gives the CPU's losses, with the reader assist, validation,
// checkpoints and a second segment on the way; and a checkpoint the CPU wrote
// resumes on the device. Built with RMT_CUDA; every test skips, saying why,
// when no CUDA device is visible. The noise is the repository's (the GPU
// machine has no fortunes).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "nlohmann/json.hpp"
#include "tests/cuda_test_util.h"
#include "tests/train_fixture.h"
#include "train/trainer.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int64_t kSegmentSize = 32;
// Float32 with TF32 off on both sides: the GPU sums in another order, and
// AdamW carries those last-bit differences (about 1e-6) through every step.
// Far below how much training moves the losses (the test checks that too).
constexpr double kLossTolerance = 5e-4;  // relative

using ::rmt::testing::LogLines;
using ::rmt::testing::TrainFixture;

const TrainFixture& Shared() {
  static const TrainFixture* fixture =
      ::rmt::testing::MakeTrainFixture({RMT_SOURCE_DIR "/tests/data/noise.txt"},
                                       kSegmentSize)
          .release();
  return *fixture;
}

RmtModel RandomModel(torch::Device device) {
  const Vocabulary& vocab = *Shared().vocab;
  RmtModel model =
      CreateRandomModel(::rmt::testing::SmokeConfig(vocab, kSegmentSize),
                        SpecialTokensOf(vocab), /*seed=*/3);
  model->to(device);
  return model;
}

// Memorize and reasoning at one and two segments, the assist and its ramp,
// a validation and a checkpoint every 4 steps.
TrainOptions Options(const fs::path& dir) {
  TrainOptions options;
  options.out_dir = dir.string();
  options.tasks = {Task::kMemorize, Task::kReasoning};
  options.target_segments = 2;
  options.batch_size = 8;
  options.learning_rate = 3e-3;
  options.warmup_steps = 2;
  options.max_steps = 16;
  options.stage_max_steps = 4;
  options.advance_accuracy = 2.0;  // stages advance by budget only
  options.assist_steps = 4;
  options.assist_ramp = 4;
  options.eval_every = 4;
  options.eval_samples = 8;
  options.checkpoint_every = 4;
  return options;
}

class CudaTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RMT_REQUIRE_CUDA();
    dir_ = fs::temp_directory_path() /
           absl::StrCat(
               "rmt_cuda_train_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Trains a fresh copy of the same random model on `device`; the JSONL log.
  std::vector<Json> Run(torch::Device device, const TrainOptions& options) {
    RmtModel model = RandomModel(device);
    std::stringstream log;
    auto result =
        Train(model, *Shared().vocab, *Shared().generator, options, &log);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(model->classifier->weight.device(), device);
    return LogLines(log.str());
  }

  fs::path dir_;
};

TEST_F(CudaTrainTest, TrainsAsOnTheCpu) {
  const torch::Device cuda(torch::kCUDA, 0);
  const std::vector<Json> gpu = Run(cuda, Options(dir_ / "cuda"));
  const std::vector<Json> cpu = Run(torch::kCPU, Options(dir_ / "cpu"));
  ASSERT_EQ(gpu.size(), 4u);
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < gpu.size(); ++i) {
    SCOPED_TRACE(gpu[i].dump());
    EXPECT_EQ(gpu[i]["segments"], cpu[i]["segments"]);
    EXPECT_EQ(gpu[i]["assisted"], cpu[i]["assisted"]);
    const double g = gpu[i]["loss"].get<double>();
    const double c = cpu[i]["loss"].get<double>();
    ASSERT_TRUE(std::isfinite(g));
    EXPECT_LT(std::abs(g - c), kLossTolerance * std::abs(c)) << cpu[i].dump();
  }
  // The run saw the assist, its withdrawal and both document lengths
  // (shares: every row to step 8, then 0.75, 0.5, 0.25, 0 of the batch).
  EXPECT_EQ(gpu[0]["assisted"].get<double>(), 1.0);
  EXPECT_EQ(gpu[1]["assisted"].get<double>(), 0.25);
  EXPECT_EQ(gpu[2]["assisted"].get<double>(), 0.0);
  EXPECT_EQ(gpu.back()["segments"].get<int>(), 2);
  // The losses moved far more than the tolerance: the comparison says
  // something about training, not only about the first forward pass.
  const double first = cpu.front()["loss"].get<double>();
  EXPECT_GT(std::abs(first - cpu.back()["loss"].get<double>()),
            10 * kLossTolerance * first);
  // The final model, written from the device, loads on the CPU.
  auto saved = LoadModelDirectory((dir_ / "cuda").string());
  ASSERT_TRUE(saved.ok()) << saved.status();
}

// A checkpoint written on the CPU resumes on the device: the model and
// Adam's moments go onto the GPU (without the moments there, the first
// update fails), and the rest of the run gives the CPU's losses.
TEST_F(CudaTrainTest, ResumesACpuCheckpointOnTheDevice) {
  TrainOptions first = Options(dir_ / "cpu");
  first.max_steps = 8;
  first.checkpoint_every = 8;
  {
    RmtModel model = RandomModel(torch::kCPU);
    auto result =
        Train(model, *Shared().vocab, *Shared().generator, first, nullptr);
    ASSERT_TRUE(result.ok()) << result.status();
  }
  fs::copy(dir_ / "cpu", dir_ / "cuda", fs::copy_options::recursive);

  TrainOptions rest = first;
  rest.resume = true;
  rest.max_steps = 16;
  const std::vector<Json> cpu = Run(torch::kCPU, rest);
  rest.out_dir = (dir_ / "cuda").string();
  const std::vector<Json> gpu = Run(torch::Device(torch::kCUDA, 0), rest);
  ASSERT_EQ(gpu.size(), 2u);  // steps 12 and 16
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < gpu.size(); ++i) {
    SCOPED_TRACE(gpu[i].dump());
    EXPECT_EQ(gpu[i]["step"], cpu[i]["step"]);
    const double c = cpu[i]["loss"].get<double>();
    EXPECT_LT(std::abs(gpu[i]["loss"].get<double>() - c),
              kLossTolerance * std::abs(c))
        << cpu[i].dump();
  }
}

}  // namespace
}  // namespace rmt
