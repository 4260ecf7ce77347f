// Session, below gRPC: the one owner of a session's pending work, its
// window into the engine, checkpoints and failure.
#include "server/session.h"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "tests/server_test_util.h"

namespace rmt::server::testing {
namespace {

// A plain BERT checkpoint (Hugging Face's save_pretrained, no "rmt"
// config) loads as a model, but the server refuses to serve it: without
// memory tokens no document reaches an answer.
TEST(ServedModelTest, APlainBertWithoutMemoryIsRefused) {
  ServedModelOptions options;
  options.directory = std::string(RMT_SOURCE_DIR) + "/tests/golden/hf/model";
  options.device = "cpu";
  const absl::StatusOr<ServedModel> model = LoadServedModel(options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(model.status().message().find("rmt-import"), std::string::npos)
      << model.status();
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TinyModelDir(/*seed=*/21);
    ServedModelOptions options;
    options.directory = dir_;
    options.device = "cpu";
    auto model = LoadServedModel(options);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    EngineOptions engine_options;
    engine_options.max_batch = 4;
    engine_options.intra_op_threads = 1;
    // Work stays queued until a batch fills: the test sees the queue.
    engine_options.max_queue_delay = absl::Milliseconds(50);
    auto engine = Engine::Create(model_.model, engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<Session> NewSession(int max_in_engine) {
    auto slot = engine_->OpenSlot();
    EXPECT_TRUE(slot.ok()) << slot.status();
    return std::make_shared<Session>("s", "", *slot, engine_.get(), &model_,
                                     nullptr, max_in_engine);
  }

  // Asks and waits for the answer.
  absl::StatusOr<Answer> AskAndWait(Session& session,
                                    const std::string& question) {
    auto ids = session.EncodeQuestion(question);
    if (!ids.ok()) return ids.status();
    auto promise = std::make_shared<std::promise<absl::StatusOr<Answer>>>();
    auto future = promise->get_future();
    absl::Status asked =
        session.Ask(*ids, 3, [promise](absl::StatusOr<Answer> answer) {
          promise->set_value(std::move(answer));
        });
    if (!asked.ok()) return asked;
    return future.get();
  }

  std::string dir_;
  ServedModel model_;
  std::unique_ptr<Engine> engine_;
};

// A hardening defect: a fast sender's whole chunk went into the engine's
// queue at once. Now at most max_in_engine segments of a session wait
// there; the rest wait in the session, which still counts them as pending.
TEST_F(SessionTest, AtMostItsWindowOfSegmentsIsInTheEngine) {
  auto session = NewSession(/*max_in_engine=*/2);
  const std::string doc = MakeDocument(/*seed=*/4, /*words=*/400);
  auto cut = session->FeedText(doc);
  ASSERT_TRUE(cut.ok()) << cut.status();
  ASSERT_GT(*cut, 10);
  EXPECT_LE(engine_->PendingWork(session->slot()), 2);
  EXPECT_EQ(session->Progress().segments_pending +
                session->Progress().segments_processed,
            *cut);
  auto answer = AskAndWait(*session, "where is mary?");
  ASSERT_TRUE(answer.ok()) << answer.status();
  // Every segment before the question is in the memory. (The question
  // itself stops counting as pending just after its answer is delivered.)
  EXPECT_EQ(session->Progress().segments_pending, 0);
  // The answer is the same as the whole document read one segment at a
  // time with nothing held back.
  const Answer direct = DirectAnswer(model_, doc, "where is mary?", 3);
  ASSERT_EQ(answer->top_k.size(), direct.top_k.size());
  for (size_t i = 0; i < direct.top_k.size(); ++i) {
    EXPECT_EQ(answer->top_k[i].label, direct.top_k[i].label);
    EXPECT_NEAR(answer->top_k[i].score, direct.top_k[i].score, 1e-5);
  }
}

// A hardening defect: a session whose segment failed answered later
// questions as if it had read everything. Now it fails visibly.
TEST_F(SessionTest, AFailedSegmentFailsTheSessionForGood) {
  auto session = NewSession(/*max_in_engine=*/2);
  ASSERT_TRUE(session->FeedText(MakeDocument(5, 200)).ok());
  // Closing the slot under the session cancels its queued segments, the
  // way a device failure would fail them.
  ASSERT_TRUE(engine_->CloseSlot(session->slot()).ok());
  auto answer = AskAndWait(*session, "where is mary?");
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kDataLoss)
      << answer.status();
  EXPECT_EQ(session->failure().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(session->FeedText("more text").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(session->Export().status().code(), absl::StatusCode::kDataLoss);
}

// Checkpoints hold later segments back, so a snapshot holds the memory
// after exactly N segments plus everything after it, and restoring it
// reads on to the same answer.
TEST_F(SessionTest, CheckpointHoldsTheMemoryAtExactlyNSegments) {
  class Watcher : public SessionWatcher {
   public:
    void OnSessionProgress() override {}
    void OnCheckpointReady() override { ready.set_value(); }
    void OnSessionFailed(const absl::Status&) override {}
    std::promise<void> ready;
  };
  auto watcher = std::make_shared<Watcher>();
  auto session = NewSession(/*max_in_engine=*/3);
  ASSERT_TRUE(session->TryAcquire(watcher));
  auto reached = session->RequestCheckpoint(5);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_FALSE(*reached);
  const std::string doc = MakeDocument(7, 300);
  auto cut = session->FeedText(doc);
  ASSERT_TRUE(cut.ok());
  ASSERT_GT(*cut, 8);
  watcher->ready.get_future().wait();
  auto state = session->TakeCheckpoint(watcher.get());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->segments_processed, 5);
  EXPECT_EQ(static_cast<int>(state->pending_segments.size()), *cut - 5);
  session->DropCheckpoint(watcher.get());
  session->ResumeAfterCheckpoint();
  auto answer = AskAndWait(*session, "where is mary?");
  ASSERT_TRUE(answer.ok()) << answer.status();

  auto restored = NewSession(/*max_in_engine=*/3);
  ASSERT_TRUE(restored->Restore(*state).ok());
  auto again = AskAndWait(*restored, "where is mary?");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->top_k[0].label, answer->top_k[0].label);
  EXPECT_NEAR(again->top_k[0].score, answer->top_k[0].score, 1e-6);
  EXPECT_EQ(restored->Progress().segments_processed,
            session->Progress().segments_processed);
  session->Release();
}

// A hardening defect: the held segments went on as the checkpoint was
// taken, so with room in the engine they passed the next periodic point
// before it could be set, and that snapshot was skipped. Now they wait
// until the holder moves the checkpoint on.
TEST_F(SessionTest, ATakenCheckpointHoldsUntilTheNextOneIsSet) {
  class Watcher : public SessionWatcher {
   public:
    void OnSessionProgress() override {}
    void OnCheckpointReady() override {
      absl::MutexLock lock(&mu);
      ++ready;
    }
    void OnSessionFailed(const absl::Status&) override {}
    void AwaitReady(int count) {
      absl::MutexLock lock(&mu);
      auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return ready >= count;
      };
      mu.Await(absl::Condition(&reached));
    }
    absl::Mutex mu;
    int ready ABSL_GUARDED_BY(mu) = 0;
  };
  auto watcher = std::make_shared<Watcher>();
  // Room in the engine for every segment of the document at once.
  auto session = NewSession(/*max_in_engine=*/64);
  ASSERT_TRUE(session->TryAcquire(watcher));
  ASSERT_TRUE(session->RequestCheckpoint(5).ok());
  auto cut = session->FeedText(MakeDocument(7, 300));
  ASSERT_TRUE(cut.ok());
  ASSERT_GT(*cut, 12);
  watcher->AwaitReady(1);
  auto first = session->TakeCheckpoint(watcher.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->segments_processed, 5);

  auto reached = session->RequestCheckpoint(10);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_FALSE(*reached);
  session->ResumeAfterCheckpoint();
  watcher->AwaitReady(2);
  auto second = session->TakeCheckpoint(watcher.get());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->segments_processed, 10);
  EXPECT_EQ(static_cast<int>(second->pending_segments.size()), *cut - 10);

  session->DropCheckpoint(watcher.get());
  session->ResumeAfterCheckpoint();
  ASSERT_TRUE(AskAndWait(*session, "where is mary?").ok());
  // (The question also reads the carry-over, as one more segment.)
  EXPECT_GE(session->Progress().segments_processed, *cut);
  session->Release();
}

}  // namespace
}  // namespace rmt::server::testing
