// The golden fixtures of tests/golden/<mode> (an independent float64 Python
// reference, see tests/golden/README.md): the model directory and the
// expected memories and logits, shared by the CPU and CUDA parity tests.
//
//   GoldenFixture golden;
//   ASSERT_TRUE(golden.Load("full").ok());
//   torch::Tensor want = golden.Expected("memory.0");  // (B, m, d) on the CPU
#ifndef RMT_TESTS_GOLDEN_FIXTURE_H_
#define RMT_TESTS_GOLDEN_FIXTURE_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"

namespace rmt::testing {

// Tolerances of the bf16 compute path (weights converted at load, memory
// kept in fp32) against the float64 reference, norm-wise relative, the same
// on the CPU and on CUDA. The memories stay within 1e-2 through every
// segment. The logits get 2e-2: rounding the golden models' weights to bf16
// alone, with exact float32 arithmetic after it, already puts them 0.8%
// (full) and 1.1% (bottleneck) from the reference, so under 1e-2 they pass
// or fail by how the arithmetic's rounding happens to cancel that (on an
// H100 with cuDNN attention: 1.03% and 1.05%).
inline constexpr double kBfloat16MemoryTolerance = 1e-2;
inline constexpr double kBfloat16LogitsTolerance = 2e-2;

inline std::string GoldenDir(const std::string& mode) {
  return absl::StrCat(RMT_SOURCE_DIR, "/tests/golden/", mode);
}

inline std::vector<int32_t> Ids(const torch::Tensor& tensor) {
  torch::Tensor ids = tensor.to(torch::kInt).contiguous();
  return std::vector<int32_t>(ids.data_ptr<int32_t>(),
                              ids.data_ptr<int32_t>() + ids.numel());
}

class GoldenFixture {
 public:
  // Opens tests/golden/<mode>/expected.safetensors and counts its samples
  // and segments. The model is loaded separately (LoadModel), so a test can
  // choose device and dtype.
  absl::Status Load(const std::string& mode) {
    mode_ = mode;
    auto expected =
        SafetensorsFile::Open(GoldenDir(mode) + "/expected.safetensors");
    if (!expected.ok()) return expected.status();
    expected_ = std::move(*expected);
    batch_ = Expected("memory.0").size(0);
    segments_ = 0;
    while (expected_->tensors().count(absl::StrCat("memory.", segments_))) {
      ++segments_;
    }
    if (segments_ < 2) {
      return absl::DataLossError(
          "the golden fixture has fewer than 2 segments");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<ModelBundle>> LoadModel(
      const LoadOptions& options = {}) const {
    return LoadModelDirectory(GoldenDir(mode_) + "/model", options);
  }

  // A tensor of expected.safetensors, on the CPU.
  torch::Tensor Expected(const std::string& name) const {
    auto view = expected_->Get(name);
    EXPECT_TRUE(view.ok()) << view.status();
    if (!view.ok()) return torch::Tensor();
    auto tensor = TensorFromView(*view);
    EXPECT_TRUE(tensor.ok()) << tensor.status();
    return tensor.ok() ? *tensor : torch::Tensor();
  }

  // Content ids of segment `segment` of sample `sample`.
  std::vector<int32_t> Tokens(int64_t segment, int64_t sample) const {
    return Ids(Expected(absl::StrCat("tokens.", segment, ".", sample)));
  }
  // Segment `segment` of every sample.
  std::vector<std::vector<int32_t>> Segment(int64_t segment) const {
    std::vector<std::vector<int32_t>> rows;
    for (int64_t b = 0; b < batch_; ++b) rows.push_back(Tokens(segment, b));
    return rows;
  }
  // Each sample's question.
  std::vector<std::vector<int32_t>> Questions() const {
    std::vector<std::vector<int32_t>> questions;
    for (int64_t b = 0; b < batch_; ++b) {
      questions.push_back(Ids(Expected(absl::StrCat("question.", b))));
    }
    return questions;
  }

  int64_t batch() const { return batch_; }
  int64_t segments() const { return segments_; }

 private:
  std::string mode_;
  std::unique_ptr<SafetensorsFile> expected_;
  int64_t batch_ = 0;
  int64_t segments_ = 0;
};

}  // namespace rmt::testing

#endif  // RMT_TESTS_GOLDEN_FIXTURE_H_
