// The engine and the memory pool on a CUDA device: sessions interleaved
// through the engine (eager and CUDA graphs) end with the memories and
// answers they would have had alone; the pool's gather, scatter and host
// offload address the right slots. Built with RMT_CUDA; every test skips,
// saying why, when no CUDA device is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <future>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/engine.h"
#include "model/memory_pool.h"
#include "model/torch_interop.h"
#include "tests/cuda_test_util.h"
#include "tests/engine_test_util.h"
#include "tests/tiny_model.h"

namespace rmt {
namespace {

using ::rmt::testing::AloneMemory;
using ::rmt::testing::Document;
using ::rmt::testing::InterleavedResults;
using ::rmt::testing::RandomTokens;
using ::rmt::testing::RelativeError;
using ::rmt::testing::SubmitInterleaved;
using ::rmt::testing::TinyModel;

const torch::Device kCuda(torch::kCUDA, 0);

RmtModel CudaModel(MemoryAttention attention) {
  RmtModel model = TinyModel(5, attention);
  model->to(kCuda);
  model->eval();
  return model;
}

struct EngineCase {
  MemoryAttention attention;
  bool cuda_graphs;
  int device_slots;  // below the session count: memories swap through host
};

class CudaEngineTest : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override { RMT_REQUIRE_CUDA(); }
};

// Sessions submitted from four threads in random interleavings end with the
// memories and answers of each session run alone (eager, unbatched, on the
// same device).
TEST_P(CudaEngineTest, InterleavedSessionsMatchSessionsAlone) {
  const EngineCase param = GetParam();
  RmtModel model = CudaModel(param.attention);
  EngineOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Microseconds(200);
  options.device_slots = param.device_slots;
  options.host_slots = 16;
  options.cuda_graphs = param.cuda_graphs;
  auto engine = Engine::Create(model.ptr(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();

  constexpr int kSessions = 12;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> segments(1, 5);
  std::uniform_int_distribution<int> length(1,
                                            model->config().rmt.segment_size);
  std::vector<Document> documents(kSessions);
  std::vector<std::vector<int32_t>> questions;
  std::vector<SlotId> slots;
  for (int s = 0; s < kSessions; ++s) {
    documents[s].resize(segments(rng));
    for (auto& segment : documents[s]) {
      segment = RandomTokens(rng, length(rng), model->config());
    }
    questions.push_back(RandomTokens(rng, 4, model->config()));
    auto slot = (*engine)->OpenSlot();
    ASSERT_TRUE(slot.ok()) << slot.status();
    slots.push_back(*slot);
  }
  InterleavedResults submitted =
      SubmitInterleaved(**engine, slots, documents, questions, /*top_k=*/3,
                        /*seed=*/1, /*pause=*/false);
  for (int s = 0; s < kSessions; ++s) {
    for (auto& result : submitted.segments[s]) ASSERT_TRUE(result.get().ok());
    absl::StatusOr<Answer> answer = submitted.answers[s].get();
    ASSERT_TRUE(answer.ok()) << answer.status();
    auto host = (*engine)->ReadMemory(slots[s]);
    ASSERT_TRUE(host.ok()) << host.status();
    torch::Tensor alone = AloneMemory(model, documents[s]);
    EXPECT_LT(RelativeError(*FromHostTensor(*host), alone), 1e-5)
        << "session " << s;
    torch::NoGradGuard no_grad;
    torch::Tensor probs =
        torch::softmax(
            model->Answer(alone.unsqueeze(0), model->MakeBatch({questions[s]})),
            -1)[0]
            .cpu();
    const ScoredLabel& best = answer->top_k[0];
    EXPECT_NEAR(best.score, probs[best.label_id].item<float>(), 1e-5)
        << "session " << s;
    EXPECT_EQ(best.label_id, probs.argmax().item<int64_t>()) << "session " << s;
  }
  EXPECT_EQ((*engine)->Counters().failed_batches, 0);
}

INSTANTIATE_TEST_SUITE_P(
    AttentionGraphsAndSlots, CudaEngineTest,
    ::testing::Values(EngineCase{MemoryAttention::kFull, true, 64},
                      EngineCase{MemoryAttention::kFull, false, 64},
                      EngineCase{MemoryAttention::kBottleneck, true, 64},
                      EngineCase{MemoryAttention::kBottleneck, true, 8}),
    [](const ::testing::TestParamInfo<EngineCase>& info) {
      const EngineCase& c = info.param;
      return absl::StrCat(
          c.attention == MemoryAttention::kFull ? "Full" : "Bottleneck",
          c.cuda_graphs ? "Graphs" : "Eager", c.device_slots, "DeviceSlots");
    });

class CudaMemoryPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { RMT_REQUIRE_CUDA(); }

  static std::unique_ptr<MemoryPool> MakePool(int64_t device, int64_t host) {
    MemoryPoolOptions options;
    options.device_capacity = device;
    options.host_capacity = host;
    auto pool = MemoryPool::Create(options, Initial(), kCuda);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }
  static torch::Tensor Initial() {
    return torch::arange(12, torch::kFloat).view({3, 4});
  }
  // (m, d) filled with `value`, on the GPU.
  static torch::Tensor Filled(float value) {
    return torch::full({3, 4}, value, torch::TensorOptions().device(kCuda));
  }
};

TEST_F(CudaMemoryPoolTest, GatherAndScatterAddressTheRightSlots) {
  auto pool = MakePool(8, 0);
  ASSERT_NE(pool, nullptr);
  std::vector<SlotId> slots;
  for (int i = 0; i < 5; ++i) slots.push_back(*pool->Allocate());
  // Scatter i into slot i, in a shuffled order, through one indexed write.
  std::vector<SlotId> order = {slots[3], slots[0], slots[4], slots[1]};
  ASSERT_TRUE(pool->Gather(order).ok());
  torch::Tensor values = torch::stack(
      {Filled(3), Filled(0), Filled(4), Filled(1)});  // (4, m, d) on the GPU
  ASSERT_TRUE(pool->Scatter(order, values).ok());
  pool->Unpin(order);

  auto gathered = pool->Gather({slots[4], slots[2], slots[1], slots[4]});
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  ASSERT_TRUE(gathered->is_cuda());
  torch::Tensor host = gathered->cpu();
  EXPECT_TRUE(torch::equal(host[0], torch::full({3, 4}, 4.0f)));
  EXPECT_TRUE(torch::equal(host[1], Initial()));  // never written
  EXPECT_TRUE(torch::equal(host[2], torch::full({3, 4}, 1.0f)));
  EXPECT_TRUE(torch::equal(host[3], host[0]));  // repeats allowed
  pool->Unpin({slots[4], slots[2], slots[1], slots[4]});
}

// Memories parked in (pinned) host memory come back bit for bit, whether
// offloaded by hand or evicted when the device rows run out.
TEST_F(CudaMemoryPoolTest, HostOffloadRoundTripsExactly) {
  auto pool = MakePool(2, 4);
  ASSERT_NE(pool, nullptr);
  torch::Tensor noise = torch::randn({4, 3, 4}, torch::kFloat);
  std::vector<SlotId> slots;
  for (int i = 0; i < 4; ++i) {
    slots.push_back(*pool->Allocate());  // the third evicts the first
    ASSERT_TRUE(pool->Write(slots[i], noise[i].to(kCuda)).ok());
  }
  EXPECT_EQ(pool->Stats().offloaded, 2);
  ASSERT_TRUE(pool->Offload(slots[3]).ok());
  EXPECT_FALSE(pool->IsResident(slots[3]));
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(torch::equal(*pool->Read(slots[i]), noise[i])) << i;
  }
  // Bring two parked memories back through the batch path.
  auto gathered = pool->Gather({slots[0], slots[3]});
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_TRUE(torch::equal(gathered->cpu()[0], noise[0]));
  EXPECT_TRUE(torch::equal(gathered->cpu()[1], noise[3]));
  EXPECT_TRUE(pool->IsResident(slots[0]));
  EXPECT_TRUE(pool->IsResident(slots[3]));
  pool->Unpin({slots[0], slots[3]});
  EXPECT_GE(pool->Stats().restores, 2);
}

}  // namespace
}  // namespace rmt
