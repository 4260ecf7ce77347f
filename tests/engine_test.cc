// The engine against the model run directly: whatever the interleaving of
// sessions and batches, each session ends with the memory it would have had
// alone.
#include "model/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "model/torch_interop.h"
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
using ::rmt::testing::TinyConfig;
using ::rmt::testing::TinyModel;

// Records every batch the engine reports.
class RecordingObserver : public EngineObserver {
 public:
  void OnBatch(const BatchReport& report) override {
    absl::MutexLock lock(&mu_);
    reports_.push_back(report);
  }
  std::vector<BatchReport> reports() const {
    absl::MutexLock lock(&mu_);
    return reports_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<BatchReport> reports_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<Engine> MakeEngine(RmtModel model, EngineOptions options,
                                   EngineObserver* observer = nullptr) {
  auto engine = Engine::Create(model.ptr(), options, observer);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

torch::Tensor EngineMemory(const Engine& engine, SlotId slot) {
  auto host = engine.ReadMemory(slot);
  EXPECT_TRUE(host.ok()) << host.status();
  return *FromHostTensor(*host);
}

Document RandomDocument(std::mt19937& rng, const ModelConfig& config) {
  std::uniform_int_distribution<int> segments(1, 6);
  std::uniform_int_distribution<int> length(1, config.rmt.segment_size);
  Document document(segments(rng));
  for (auto& segment : document)
    segment = RandomTokens(rng, length(rng), config);
  return document;
}

struct PropertyCase {
  int max_batch;
  int delay_us;
  int device_slots;
  int host_slots;
};

class EnginePropertyTest : public ::testing::TestWithParam<PropertyCase> {};

// Many sessions submitted from several threads in random interleavings end
// with the same memories and answers as each session processed alone.
TEST_P(EnginePropertyTest, ConcurrentSessionsMatchSessionsAlone) {
  const PropertyCase param = GetParam();
  RmtModel model = TinyModel(5);
  EngineOptions options;
  options.max_batch = param.max_batch;
  options.max_queue_delay = absl::Microseconds(param.delay_us);
  options.device_slots = param.device_slots;
  options.host_slots = param.host_slots;
  RecordingObserver observer;
  auto engine = MakeEngine(model, options, &observer);

  for (uint32_t seed = 1; seed <= 3; ++seed) {
    std::mt19937 rng(seed);
    constexpr int kSessions = 12;
    std::vector<Document> documents;
    std::vector<std::vector<int32_t>> questions;
    std::vector<SlotId> slots;
    for (int s = 0; s < kSessions; ++s) {
      documents.push_back(RandomDocument(rng, model->config()));
      questions.push_back(RandomTokens(rng, 5, model->config()));
      auto slot = engine->OpenSlot();
      ASSERT_TRUE(slot.ok()) << slot.status();
      slots.push_back(*slot);
    }
    // Four submitter threads each own a subset of sessions and interleave
    // their segments randomly, sleeping now and then.
    InterleavedResults submitted =
        SubmitInterleaved(*engine, slots, documents, questions, /*top_k=*/2,
                          seed, /*pause=*/true);
    for (int s = 0; s < kSessions; ++s) {
      for (auto& result : submitted.segments[s]) {
        ASSERT_TRUE(result.get().ok());
      }
      absl::StatusOr<Answer> answer = submitted.answers[s].get();
      ASSERT_TRUE(answer.ok()) << answer.status();
      torch::Tensor alone = AloneMemory(model, documents[s]);
      EXPECT_LT(RelativeError(EngineMemory(*engine, slots[s]), alone), 1e-5)
          << "session " << s << " seed " << seed;
      torch::NoGradGuard no_grad;
      torch::Tensor probs = torch::softmax(
          model->Answer(alone.unsqueeze(0), model->MakeBatch({questions[s]})),
          -1)[0];
      const int64_t best = probs.argmax().item<int64_t>();
      EXPECT_EQ(answer->top_k[0].label_id, best);
      EXPECT_NEAR(answer->top_k[0].score, probs[best].item<float>(), 1e-5);
      ASSERT_TRUE(engine->CloseSlot(slots[s]).ok());
    }
  }
  int max_rows = 0;
  for (const auto& report : observer.reports()) {
    EXPECT_LE(report.rows, param.max_batch);
    max_rows = std::max(max_rows, report.rows);
  }
  if (param.max_batch > 1) {
    EXPECT_GT(max_rows, 1) << "never batched";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configurations, EnginePropertyTest,
    ::testing::Values(PropertyCase{1, 0, 64, 0}, PropertyCase{4, 200, 64, 0},
                      PropertyCase{8, 2000, 64, 0},
                      // Fewer device rows than sessions: memories move to host
                      // memory and back between batches.
                      PropertyCase{4, 500, 5, 12}),
    [](const ::testing::TestParamInfo<PropertyCase>& info) {
      const PropertyCase& p = info.param;
      return "batch" + std::to_string(p.max_batch) + "_delay" +
             std::to_string(p.delay_us) + "us_device" +
             std::to_string(p.device_slots) + "_host" +
             std::to_string(p.host_slots);
    });

TEST(EngineTest, NeverTwoSegmentsOfOneSessionInABatch) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Milliseconds(5);
  RecordingObserver observer;
  auto engine = MakeEngine(model, options, &observer);
  SlotId slot = *engine->OpenSlot();
  std::vector<std::future<absl::Status>> results;
  for (int i = 0; i < 5; ++i)
    results.push_back(engine->SubmitSegment(slot, {5, 6}));
  for (auto& r : results) ASSERT_TRUE(r.get().ok());
  auto reports = observer.reports();
  ASSERT_EQ(reports.size(), 5u);
  for (const auto& report : reports) EXPECT_EQ(report.segments, 1);
}

TEST(EngineTest, QuestionsRideWithOtherSessionsSegments) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.max_batch = 4;
  options.max_queue_delay = absl::Seconds(2);  // wait for a full batch
  RecordingObserver observer;
  auto engine = MakeEngine(model, options, &observer);
  SlotId a = *engine->OpenSlot();
  SlotId b = *engine->OpenSlot();
  SlotId c = *engine->OpenSlot();
  auto s1 = engine->SubmitSegment(a, {5, 6, 7});
  auto s2 = engine->SubmitSegment(b, {8});
  auto q1 = engine->SubmitQuestion(c, {9, 10}, 1);
  auto q2 = engine->SubmitQuestion(c, {11}, 1);  // same slot, same batch
  ASSERT_TRUE(s1.get().ok());
  ASSERT_TRUE(s2.get().ok());
  ASSERT_TRUE(q1.get().ok());
  ASSERT_TRUE(q2.get().ok());
  auto reports = observer.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].segments, 2);
  EXPECT_EQ(reports[0].questions, 2);
  EXPECT_EQ(reports[0].tokens, 7);
  // The question rows did not touch c's memory.
  EXPECT_TRUE(
      torch::equal(EngineMemory(*engine, c), model->InitMemory(1)[0].detach()));
}

TEST(EngineTest, BadInputIsRefusedWithoutTouchingOtherSessions) {
  RmtModel model = TinyModel();
  auto engine = MakeEngine(model, EngineOptions{});
  SlotId good = *engine->OpenSlot();
  SlotId other = *engine->OpenSlot();
  const int64_t vocab = model->config().content_vocab_size();
  EXPECT_EQ(engine->SubmitSegment(other, {}).get().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      engine->SubmitSegment(other, std::vector<int32_t>(17, 5)).get().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitSegment(other, {5, int32_t(vocab)}).get().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitQuestion(other, {-3}, 1).get().status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitSegment(9999, {5}).get().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(engine->SubmitSegment(good, {5, 6, 7}).get().ok());
  EXPECT_LT(RelativeError(EngineMemory(*engine, good),
                          AloneMemory(model, {{5, 6, 7}})),
            1e-6);
  // The refused session's memory is untouched.
  EXPECT_TRUE(torch::equal(EngineMemory(*engine, other),
                           model->InitMemory(1)[0].detach()));
}

TEST(EngineTest, TopKIsSortedAndClamped) {
  RmtModel model = TinyModel();
  auto engine = MakeEngine(model, EngineOptions{});
  SlotId slot = *engine->OpenSlot();
  auto answer = engine->SubmitQuestion(slot, {5, 6}, 100).get();
  ASSERT_TRUE(answer.ok());
  ASSERT_EQ(answer->top_k.size(), model->config().labels.size());
  float total = 0;
  for (size_t i = 0; i < answer->top_k.size(); ++i) {
    total += answer->top_k[i].score;
    if (i > 0) {
      EXPECT_GE(answer->top_k[i - 1].score, answer->top_k[i].score);
    }
    EXPECT_EQ(answer->top_k[i].label,
              model->config().labels[answer->top_k[i].label_id]);
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_EQ(engine->SubmitQuestion(slot, {5}, 0).get()->top_k.size(), 1u);
}

TEST(EngineTest, CloseCancelsQueuedWorkAndFreesTheSlot) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.max_batch = 64;
  options.max_queue_delay = absl::Seconds(5);  // keeps work queued
  auto engine = MakeEngine(model, options);
  SlotId slot = *engine->OpenSlot();
  auto pending = engine->SubmitSegment(slot, {5});
  EXPECT_EQ(engine->PendingWork(slot), 1);
  EXPECT_EQ(engine->ReadMemory(slot).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(engine->CloseSlot(slot).ok());
  EXPECT_EQ(pending.get().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(engine->CloseSlot(slot).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->Counters().slots, 0);
}

TEST(EngineTest, FullEngineRefusesNewSlots) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.device_slots = 2;
  auto engine = MakeEngine(model, options);
  ASSERT_TRUE(engine->OpenSlot().ok());
  ASSERT_TRUE(engine->OpenSlot().ok());
  EXPECT_EQ(engine->OpenSlot().status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(EngineTest, MemoryRoundTripsThroughHostTensor) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.host_slots = 4;
  auto engine = MakeEngine(model, options);
  SlotId a = *engine->OpenSlot();
  ASSERT_TRUE(engine->SubmitSegment(a, {5, 6, 7}).get().ok());
  auto saved = engine->ReadMemory(a);
  ASSERT_TRUE(saved.ok());
  SlotId b = *engine->OpenSlot();
  ASSERT_TRUE(engine->WriteMemory(b, *saved).ok());
  ASSERT_TRUE(engine->Offload(b).ok());
  ASSERT_TRUE(engine->SubmitSegment(a, {8}).get().ok());
  ASSERT_TRUE(engine->SubmitSegment(b, {8}).get().ok());
  EXPECT_TRUE(torch::equal(EngineMemory(*engine, a), EngineMemory(*engine, b)));
  HostTensor wrong = *saved;
  wrong.shape = {2, 2};
  wrong.bytes.resize(16);
  EXPECT_EQ(engine->WriteMemory(b, wrong).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EngineTest, CountersAddUp) {
  RmtModel model = TinyModel();
  auto engine = MakeEngine(model, EngineOptions{});
  SlotId slot = *engine->OpenSlot();
  ASSERT_TRUE(engine->SubmitSegment(slot, {5, 6, 7}).get().ok());
  ASSERT_TRUE(engine->SubmitQuestion(slot, {5}, 1).get().ok());
  EngineCounters counters = engine->Counters();
  EXPECT_EQ(counters.segments, 1);
  EXPECT_EQ(counters.questions, 1);
  EXPECT_EQ(counters.tokens, 4);
  EXPECT_EQ(counters.slots, 1);
  EXPECT_EQ(counters.bytes_per_slot, 4 * 32 * 4);
  EXPECT_GT(counters.compute, absl::ZeroDuration());
}

// memory_dtype bfloat16: the pool stores half the bytes, the encoder still
// computes in fp32, and the memory stays within bf16 rounding of fp32.
TEST(EngineTest, Bfloat16MemoriesHalveStateAndTrackFp32) {
  ModelConfig config = TinyConfig();
  config.rmt.memory_dtype = MemoryDType::kBFloat16;
  RmtModel fp32 = TinyModel();
  RmtModel bf16 = CreateRandomModel(config, SpecialTokens{}, 1);
  {
    torch::NoGradGuard no_grad;
    auto source = fp32->named_parameters();
    for (auto& item : bf16->named_parameters()) {
      item.value().copy_(*source.find(item.key()));
    }
  }
  auto engine32 = MakeEngine(fp32, EngineOptions{});
  auto engine16 = MakeEngine(bf16, EngineOptions{});
  EXPECT_EQ(engine16->Counters().bytes_per_slot,
            engine32->Counters().bytes_per_slot / 2);
  SlotId a = *engine32->OpenSlot();
  SlotId b = *engine16->OpenSlot();
  std::mt19937 rng(3);
  for (int s = 0; s < 4; ++s) {
    const std::vector<int32_t> segment = RandomTokens(rng, 16, config);
    ASSERT_TRUE(engine32->SubmitSegment(a, segment).get().ok());
    ASSERT_TRUE(engine16->SubmitSegment(b, segment).get().ok());
  }
  auto memory16 = engine16->ReadMemory(b);
  ASSERT_TRUE(memory16.ok());
  EXPECT_EQ(memory16->dtype, DType::kBF16);
  EXPECT_LT(
      RelativeError(EngineMemory(*engine16, b), EngineMemory(*engine32, a)),
      3e-2);
}

TEST(EngineTest, ShutdownFailsQueuedWork) {
  RmtModel model = TinyModel();
  EngineOptions options;
  options.max_batch = 64;
  options.max_queue_delay = absl::Seconds(10);
  auto engine = MakeEngine(model, options);
  SlotId slot = *engine->OpenSlot();
  auto pending = engine->SubmitSegment(slot, {5});
  engine.reset();
  EXPECT_EQ(pending.get().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace rmt
