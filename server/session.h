// Session: one conversation's state on the server: a memory slot in the
// engine, the streaming tokenizer's carry-over, the segmenter's partial
// segment and the counters.
//
//   session->FeedText(bytes, on_segment_done);   // submits full segments
//   session->Ask(question_ids, 3, on_answer);    // flushes, then asks
//
// Input methods (Feed*, Flush, Ask, Restore) must be called by the holder of
// the session's lease (TryAcquire), one call at a time, so the order of the
// document is the order of the calls. Progress, Export and the counters are
// safe from any thread. Completion callbacks run on the engine's scheduler
// thread and must not block.
#ifndef RMT_SERVER_SESSION_H_
#define RMT_SERVER_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/engine.h"
#include "model/segmenter.h"
#include "model/tokenizer.h"
#include "server/served_model.h"

namespace rmt::server {

struct SessionProgress {
  int64_t tokens_received = 0;
  int64_t segments_processed = 0;
  int64_t segments_pending = 0;  // submitted, not yet processed
  int64_t tokens_buffered = 0;   // in the partial segment
  int64_t questions_answered = 0;
};

// Everything a snapshot restores.
struct SessionState {
  std::string model_fingerprint;
  std::string model_name;
  HostTensor memory;
  std::vector<int32_t> pending_tokens;
  std::string tokenizer_state;
  int64_t tokens_received = 0;
  int64_t segments_processed = 0;
  int64_t questions_answered = 0;
};

// Measured by the session, reported to metrics.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void OnAnswer(absl::Duration latency) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using SegmentDone = std::function<void(absl::Status)>;
  // Called on the feeding thread once per segment, just before the segment
  // is submitted; returns the segment's completion callback (may be empty).
  // Lets a caller count exactly the callbacks that will refer to it.
  using SegmentDoneFactory = std::function<SegmentDone()>;
  using AnswerDone = std::function<void(absl::StatusOr<Answer>)>;

  // `engine`, `model` and `observer` (may be null) must outlive the session.
  Session(std::string id, std::string owner, SlotId slot, Engine* engine,
          const ServedModel* model, SessionObserver* observer);

  const std::string& id() const { return id_; }
  const std::string& owner() const { return owner_; }
  SlotId slot() const { return slot_; }

  // One caller at a time: false while another stream or call holds it.
  bool TryAcquire() ABSL_LOCKS_EXCLUDED(mu_);
  void Release() ABSL_LOCKS_EXCLUDED(mu_);
  bool leased() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time last_used() const ABSL_LOCKS_EXCLUDED(mu_);

  // Tokenizes UTF-8 cut anywhere and submits every completed segment;
  // `done` (may be null) makes each one's callback. Returns the number
  // submitted.
  // INVALID_ARGUMENT for invalid UTF-8, and then nothing changes.
  absl::StatusOr<int> FeedText(std::string_view bytes, const SegmentDoneFactory& done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // INVALID_ARGUMENT (nothing changes) for ids outside the vocabulary.
  absl::StatusOr<int> FeedTokens(const std::vector<int32_t>& ids,
                                 const SegmentDoneFactory& done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the text so far (a word cut at the end is complete) and submits the
  // partial segment. INVALID_ARGUMENT if the text ends inside a character.
  absl::StatusOr<int> Flush(const SegmentDoneFactory& done) ABSL_LOCKS_EXCLUDED(mu_);

  // The ids of a question; INVALID_ARGUMENT if it is empty, longer than a
  // segment, not UTF-8 or out of the vocabulary.
  absl::StatusOr<std::vector<int32_t>> EncodeQuestion(
      std::string_view text) const;
  absl::Status ValidateQuestion(const std::vector<int32_t>& ids) const;
  // Flushes, then queues the question behind every segment sent so far.
  absl::Status Ask(std::vector<int32_t> question, int top_k, AnswerDone done)
      ABSL_LOCKS_EXCLUDED(mu_);

  SessionProgress Progress() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t segments_pending() const ABSL_LOCKS_EXCLUDED(mu_);

  // FAILED_PRECONDITION while segments or questions are pending.
  absl::StatusOr<SessionState> Export() const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces memory, carry-over and counters; for a fresh session.
  // FAILED_PRECONDITION for another model's state, INVALID_ARGUMENT for a
  // malformed one (nothing changes then).
  absl::Status Restore(const SessionState& state) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::StatusOr<int> SubmitIds(const std::vector<int32_t>& ids, bool flush,
                                const SegmentDoneFactory& done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Submit(std::vector<std::vector<int32_t>> segments,
              const SegmentDoneFactory& done) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckIds(const std::vector<int32_t>& ids) const;

  // Constant after construction.
  const std::string id_;
  const std::string owner_;
  const SlotId slot_;
  Engine* const engine_;
  const ServedModel* const model_;
  SessionObserver* const observer_;

  mutable absl::Mutex mu_;
  StreamingTokenizer tokenizer_ ABSL_GUARDED_BY(mu_);
  Segmenter segmenter_ ABSL_GUARDED_BY(mu_);
  bool leased_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  int64_t tokens_received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t segments_submitted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t segments_processed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t segments_failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t questions_pending_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t questions_answered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_H_
