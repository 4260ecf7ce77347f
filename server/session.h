// Session: one conversation's state on the server: a memory slot in the
// engine, the streaming tokenizer's carry-over, the segmenter's partial
// segment, the work not yet run, and the counters.
//
//   session->FeedText(bytes);             // cuts segments, runs them in order
//   session->Ask(question_ids, 3, done);  // flushes, then asks
//
// The session is the one owner of its pending work. Segments cut from the
// document wait in the session's backlog and go to the engine at most
// `max_in_engine` at a time, so one session never floods the engine's queue
// and a stream can ask `Progress().segments_pending` to decide whether to
// read more. A checkpoint holds later segments back until the memory after
// exactly N segments has been taken and the holder has set its next
// checkpoint or dropped it (snapshots at exact multiples, none skipped).
//
// A segment that fails (device out of memory, a closed slot) fails the
// session for good: its memory no longer reflects the document, so every
// later call and every queued question gets DATA_LOSS instead of an answer
// that silently skipped text.
//
// Input methods (Feed*, Flush, Ask, Restore, checkpoints) must be called by
// the holder of the session's lease (TryAcquire), one call at a time, so the
// order of the document is the order of the calls. Progress, Export and the
// counters are safe from any thread. Completion callbacks and watcher events
// run on the engine's scheduler thread (or inline on the caller's thread for
// work refused at once) and must not block.
#ifndef RMT_SERVER_SESSION_H_
#define RMT_SERVER_SESSION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/engine.h"
#include "model/segmenter.h"
#include "model/tokenizer.h"
#include "server/served_model.h"

namespace rmt::server {

struct SessionProgress {
  int64_t tokens_received = 0;
  int64_t bytes_received = 0;  // text bytes (chunks of token ids: 0)
  int64_t segments_processed = 0;
  int64_t segments_pending = 0;   // cut from the document, not yet processed
  int64_t questions_pending = 0;  // asked, not yet answered
  int64_t tokens_buffered = 0;    // in the partial segment
  int64_t questions_answered = 0;
};

// Everything a snapshot restores.
struct SessionState {
  std::string model_fingerprint;
  std::string model_name;
  HostTensor memory;  // after `segments_processed` segments
  // Segments cut but not yet in the memory, in order (a checkpoint taken
  // while the document streams in has some).
  std::vector<std::vector<int32_t>> pending_segments;
  std::vector<int32_t> pending_tokens;  // the partial segment
  std::string tokenizer_state;
  int64_t tokens_received = 0;
  int64_t bytes_received = 0;
  int64_t segments_processed = 0;
  int64_t questions_answered = 0;
};

// Measured by the session, reported to metrics.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void OnAnswer(absl::Duration latency) = 0;
};

// What the lease holder (a stream) hears from its session. Calls come from
// the engine's scheduler thread and must be quick.
class SessionWatcher {
 public:
  virtual ~SessionWatcher() = default;
  // Progress changed (a segment finished).
  virtual void OnSessionProgress() = 0;
  // The checkpoint asked for is reached: call TakeCheckpoint (off this
  // thread: it copies the memory and the caller signs it), then
  // RequestCheckpoint or DropCheckpoint, then ResumeAfterCheckpoint; until
  // then (or Release) the later segments stay held.
  virtual void OnCheckpointReady() = 0;
  // The session failed or expired; it takes no more input.
  virtual void OnSessionFailed(const absl::Status& why) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using AnswerDone = std::function<void(absl::StatusOr<Answer>)>;

  // `engine`, `model` and `observer` (may be null) must outlive the session.
  // At most `max_in_engine` (>= 1) segments are queued in the engine at once.
  Session(std::string id, std::string owner, SlotId slot, Engine* engine,
          const ServedModel* model, SessionObserver* observer,
          int max_in_engine);

  const std::string& id() const { return id_; }
  const std::string& owner() const { return owner_; }
  SlotId slot() const { return slot_; }

  // One holder at a time: false while another stream or call holds it.
  // `watcher` (may be null) hears the session's events until Release.
  bool TryAcquire(std::shared_ptr<SessionWatcher> watcher = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Also drops a checkpoint the holder asked for.
  void Release() ABSL_LOCKS_EXCLUDED(mu_);
  bool leased() const ABSL_LOCKS_EXCLUDED(mu_);
  // Last client message or finished work: idleness is measured from here.
  absl::Time last_used() const ABSL_LOCKS_EXCLUDED(mu_);
  void Touch() ABSL_LOCKS_EXCLUDED(mu_);

  // Tokenizes UTF-8 cut anywhere and queues every completed segment.
  // Returns the number of segments cut. INVALID_ARGUMENT for invalid UTF-8
  // (nothing changes then); DATA_LOSS once the session failed.
  absl::StatusOr<int> FeedText(absl::string_view bytes)
      ABSL_LOCKS_EXCLUDED(mu_);
  // INVALID_ARGUMENT (nothing changes) for ids outside the vocabulary.
  absl::StatusOr<int> FeedTokens(const std::vector<int32_t>& ids)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the text so far (a word cut at the end is complete) and queues the
  // partial segment. INVALID_ARGUMENT if the text ends inside a character.
  absl::StatusOr<int> Flush() ABSL_LOCKS_EXCLUDED(mu_);

  // The ids of a question; INVALID_ARGUMENT if it is empty, longer than a
  // segment, not UTF-8 or out of the vocabulary.
  absl::StatusOr<std::vector<int32_t>> EncodeQuestion(
      absl::string_view text) const;
  absl::Status ValidateQuestion(const std::vector<int32_t>& ids) const;
  // Flushes, then queues the question behind every segment sent so far.
  // `done` gets the answer, or DATA_LOSS if a segment before it failed.
  absl::Status Ask(std::vector<int32_t> question, int top_k, AnswerDone done)
      ABSL_LOCKS_EXCLUDED(mu_);

  SessionProgress Progress() const ABSL_LOCKS_EXCLUDED(mu_);
  // OK, or why the session takes no more input.
  absl::Status failure() const ABSL_LOCKS_EXCLUDED(mu_);
  // Fails the session (e.g. it expired): queued questions get `why`, the
  // watcher hears it, later input is refused.
  void Abort(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);

  // Holds back every segment after the first `segments` of the document
  // until the checkpoint moves on (a later RequestCheckpoint) or is dropped
  // (DropCheckpoint). True if the memory holds exactly those segments now;
  // else the watcher hears OnCheckpointReady when it does. INVALID_ARGUMENT
  // if the memory is already past that point. Moving a taken checkpoint on
  // lets segments go: call ResumeAfterCheckpoint next, off the caller's
  // locks.
  absl::StatusOr<bool> RequestCheckpoint(int64_t segments)
      ABSL_LOCKS_EXCLUDED(mu_);
  // True when the memory holds exactly the checkpoint's segments.
  bool CheckpointReached() const ABSL_LOCKS_EXCLUDED(mu_);
  // The state at the checkpoint. The segments after it stay held, so the
  // holder can set its next checkpoint before the engine could pass it.
  // FAILED_PRECONDITION if the checkpoint is not reached or `holder` no
  // longer holds the session.
  absl::StatusOr<SessionState> TakeCheckpoint(const SessionWatcher* holder)
      ABSL_LOCKS_EXCLUDED(mu_);
  // No checkpoint, if `holder` still holds the session; then call
  // ResumeAfterCheckpoint, off the caller's locks.
  void DropCheckpoint(const SessionWatcher* holder) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends the engine what the checkpoint no longer holds back. Not under
  // the watcher's locks: the engine may call back inline.
  void ResumeAfterCheckpoint() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until nothing of the session is queued or running (or it failed);
  // false at the deadline.
  bool AwaitIdle(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);

  // The whole state; FAILED_PRECONDITION while the engine holds work of
  // this session, DATA_LOSS for a failed session.
  absl::StatusOr<SessionState> Export() const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces memory, pending work, carry-over and counters; for a fresh
  // session. FAILED_PRECONDITION for another model's state,
  // INVALID_ARGUMENT for a malformed one (nothing changes then).
  absl::Status Restore(const SessionState& state) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A segment or a question waiting for its turn in the engine.
  struct Work {
    bool is_question = false;
    std::vector<int32_t> tokens;
    int top_k = 1;
    AnswerDone done;  // questions only
    absl::Time asked;
  };

  absl::Status CheckIds(const std::vector<int32_t>& ids) const;
  // The ids the tokenizer still holds (the text ends here); on error the
  // tokenizer is as before.
  absl::StatusOr<std::vector<int32_t>> FinishTextLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues ids (and, with `flush`, the partial segment) as segments.
  int QueueIdsLocked(const std::vector<int32_t>& ids, bool flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands queued work to the engine while the window and checkpoint allow.
  void SubmitReady() ABSL_LOCKS_EXCLUDED(mu_);
  void OnSegmentDone(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void OnQuestionDone(Work work, absl::StatusOr<Answer> answer)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records the first failure and takes the queued work out; the caller
  // fails the returned questions outside mu_.
  std::vector<Work> FailLocked(const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CheckpointReachedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SessionState StateLocked(HostTensor memory) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const std::string id_;
  const std::string owner_;
  const SlotId slot_;
  Engine* const engine_;
  const ServedModel* const model_;
  SessionObserver* const observer_;
  const int64_t max_in_engine_;

  mutable absl::Mutex mu_;
  StreamingTokenizer tokenizer_ ABSL_GUARDED_BY(mu_);
  Segmenter segmenter_ ABSL_GUARDED_BY(mu_);
  bool leased_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<SessionWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  // Cut or asked, not yet handed to the engine, in document order.
  std::deque<Work> backlog_ ABSL_GUARDED_BY(mu_);
  int64_t backlog_segments_ ABSL_GUARDED_BY(mu_) = 0;
  // Handed to the engine, not yet finished.
  int64_t segments_in_engine_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t questions_in_engine_ ABSL_GUARDED_BY(mu_) = 0;
  // Segments handed to the engine so far (processed + in the engine).
  int64_t segments_submitted_ ABSL_GUARDED_BY(mu_) = 0;
  // SubmitReady runs on one thread at a time, so work reaches the engine in
  // backlog order; a caller that finds it running asks it to go round again.
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;
  bool submit_again_ ABSL_GUARDED_BY(mu_) = false;
  int64_t segments_processed_ ABSL_GUARDED_BY(mu_) = 0;
  // -1: none. Else no segment past this many is submitted.
  int64_t checkpoint_at_ ABSL_GUARDED_BY(mu_) = -1;
  bool checkpoint_announced_ ABSL_GUARDED_BY(mu_) = false;
  int64_t tokens_received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t questions_answered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_H_
