#include "server/session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "model/status_macros.h"

namespace rmt::server {

Session::Session(std::string id, std::string owner, SlotId slot, Engine* engine,
                 const ServedModel* model, SessionObserver* observer,
                 int max_in_engine)
    : id_(std::move(id)),
      owner_(std::move(owner)),
      slot_(slot),
      engine_(engine),
      model_(model),
      observer_(observer),
      max_in_engine_(max_in_engine < 1 ? 1 : max_in_engine),
      tokenizer_(model->tokenizer.get()),
      segmenter_(model->config.rmt.segment_size),
      last_used_(absl::Now()) {}

bool Session::TryAcquire(std::shared_ptr<SessionWatcher> watcher) {
  absl::MutexLock lock(&mu_);
  if (leased_) return false;
  leased_ = true;
  watcher_ = std::move(watcher);
  last_used_ = absl::Now();
  return true;
}

void Session::Release() {
  {
    absl::MutexLock lock(&mu_);
    leased_ = false;
    watcher_.reset();
    checkpoint_at_ = -1;
    checkpoint_announced_ = false;
    last_used_ = absl::Now();
  }
  SubmitReady();  // segments a dropped checkpoint held back
}

bool Session::leased() const {
  absl::MutexLock lock(&mu_);
  return leased_;
}

absl::Time Session::last_used() const {
  absl::MutexLock lock(&mu_);
  return last_used_;
}

void Session::Touch() {
  absl::MutexLock lock(&mu_);
  last_used_ = absl::Now();
}

absl::Status Session::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

absl::Status Session::CheckIds(const std::vector<int32_t>& ids) const {
  const int64_t vocab = model_->config.content_vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", ids[i], " at position ", i,
          " is outside the vocabulary [0, ", vocab,
          "); send text, or ids from this model's vocab.txt (GetModelInfo)"));
    }
  }
  return absl::OkStatus();
}

int Session::QueueIdsLocked(const std::vector<int32_t>& ids, bool flush) {
  tokens_received_ += static_cast<int64_t>(ids.size());
  std::vector<std::vector<int32_t>> segments = segmenter_.Append(ids);
  if (flush) {
    if (auto tail = segmenter_.Flush()) segments.push_back(std::move(*tail));
  }
  for (auto& segment : segments) {
    Work work;
    work.tokens = std::move(segment);
    backlog_.push_back(std::move(work));
  }
  backlog_segments_ += static_cast<int64_t>(segments.size());
  last_used_ = absl::Now();
  return static_cast<int>(segments.size());
}

absl::StatusOr<int> Session::FeedText(absl::string_view bytes) {
  int cut = 0;
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(failure_);
    // Feed leaves the stream unusable after invalid UTF-8; keep the session
    // as it was before the bad chunk.
    const std::string before = tokenizer_.SaveState();
    std::vector<int32_t> ids;
    absl::Status fed = tokenizer_.Feed(bytes, &ids);
    if (!fed.ok()) {
      tokenizer_.RestoreState(before).IgnoreError();  // its own output
      return fed;
    }
    bytes_received_ += static_cast<int64_t>(bytes.size());
    cut = QueueIdsLocked(ids, /*flush=*/false);
  }
  SubmitReady();
  return cut;
}

absl::StatusOr<int> Session::FeedTokens(const std::vector<int32_t>& ids) {
  RETURN_IF_ERROR(CheckIds(ids));
  int cut = 0;
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(failure_);
    cut = QueueIdsLocked(ids, /*flush=*/false);
  }
  SubmitReady();
  return cut;
}

absl::StatusOr<std::vector<int32_t>> Session::FinishTextLocked() {
  // Finish leaves the stream unusable when the text ends inside a
  // character; keep the session as it was.
  const std::string before = tokenizer_.SaveState();
  std::vector<int32_t> ids;
  absl::Status finished = tokenizer_.Finish(&ids);
  if (!finished.ok()) {
    tokenizer_.RestoreState(before).IgnoreError();  // its own output
    return finished;
  }
  return ids;
}

absl::StatusOr<int> Session::Flush() {
  int cut = 0;
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(failure_);
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, FinishTextLocked());
    cut = QueueIdsLocked(ids, /*flush=*/true);
  }
  SubmitReady();
  return cut;
}

absl::Status Session::ValidateQuestion(const std::vector<int32_t>& ids) const {
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        "the question has no tokens; send some text or token ids");
  }
  const int64_t limit = model_->config.rmt.segment_size;
  if (static_cast<int64_t>(ids.size()) > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the question has ", ids.size(), " tokens; this model reads at most ",
        limit, " (one segment): shorten it"));
  }
  return CheckIds(ids);
}

absl::StatusOr<std::vector<int32_t>> Session::EncodeQuestion(
    absl::string_view text) const {
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, model_->tokenizer->Encode(text));
  RETURN_IF_ERROR(ValidateQuestion(ids));
  return ids;
}

absl::Status Session::Ask(std::vector<int32_t> question, int top_k,
                          AnswerDone done) {
  RETURN_IF_ERROR(ValidateQuestion(question));
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(failure_);
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, FinishTextLocked());
    QueueIdsLocked(ids, /*flush=*/true);
    Work work;
    work.is_question = true;
    work.tokens = std::move(question);
    work.top_k = top_k;
    work.done = std::move(done);
    work.asked = absl::Now();
    backlog_.push_back(std::move(work));
  }
  SubmitReady();
  return absl::OkStatus();
}

void Session::SubmitReady() {
  {
    absl::MutexLock lock(&mu_);
    if (submitting_) {
      submit_again_ = true;
      return;
    }
    submitting_ = true;
  }
  while (true) {
    Work work;
    {
      absl::MutexLock lock(&mu_);
      // At a checkpoint everything left comes after it in the document,
      // questions too: a question in the engine would keep the memory from
      // being read at the checkpoint.
      const bool blocked =
          !failure_.ok() || backlog_.empty() ||
          (checkpoint_at_ >= 0 && segments_submitted_ >= checkpoint_at_) ||
          (!backlog_.front().is_question &&
           segments_in_engine_ >= max_in_engine_);
      if (blocked) {
        if (!submit_again_) {
          submitting_ = false;
          return;
        }
        submit_again_ = false;
        continue;
      }
      work = std::move(backlog_.front());
      backlog_.pop_front();
      if (work.is_question) {
        ++questions_in_engine_;
      } else {
        --backlog_segments_;
        ++segments_in_engine_;
        ++segments_submitted_;
      }
    }
    // Outside mu_: the engine runs the callback inline when it refuses work.
    auto self = shared_from_this();
    if (work.is_question) {
      std::vector<int32_t> tokens = std::move(work.tokens);
      const int top_k = work.top_k;
      engine_->SubmitQuestion(
          slot_, std::move(tokens), top_k,
          [self,
           work = std::move(work)](absl::StatusOr<Answer> answer) mutable {
            self->OnQuestionDone(std::move(work), std::move(answer));
          });
    } else {
      engine_->SubmitSegment(
          slot_, std::move(work.tokens),
          [self](absl::Status status) { self->OnSegmentDone(status); });
    }
  }
}

std::vector<Session::Work> Session::FailLocked(const absl::Status& why) {
  std::vector<Work> questions;
  if (!failure_.ok()) return questions;
  failure_ = why;
  for (Work& work : backlog_) {
    if (work.is_question) questions.push_back(std::move(work));
  }
  backlog_.clear();
  backlog_segments_ = 0;
  return questions;
}

bool Session::CheckpointReachedLocked() const {
  return checkpoint_at_ >= 0 && failure_.ok() &&
         segments_processed_ == checkpoint_at_ && segments_in_engine_ == 0 &&
         questions_in_engine_ == 0;
}

void Session::OnSegmentDone(const absl::Status& status) {
  std::vector<Work> failed_questions;
  std::shared_ptr<SessionWatcher> watcher;
  absl::Status newly_failed;
  bool checkpoint_ready = false;
  {
    absl::MutexLock lock(&mu_);
    --segments_in_engine_;
    last_used_ = absl::Now();
    if (status.ok()) {
      ++segments_processed_;
    } else if (failure_.ok()) {
      newly_failed = absl::DataLossError(absl::StrCat(
          "segment ", segments_processed_ + 1, " of session ", id_, " failed (",
          status.ToString(),
          "): its memory no longer holds the whole document; close the "
          "session and continue from your last snapshot"));
      failed_questions = FailLocked(newly_failed);
    }
    if (CheckpointReachedLocked() && !checkpoint_announced_) {
      checkpoint_announced_ = true;
      checkpoint_ready = true;
    }
    watcher = watcher_;
  }
  for (Work& question : failed_questions) question.done(newly_failed);
  SubmitReady();
  if (watcher == nullptr) return;
  if (!newly_failed.ok()) {
    watcher->OnSessionFailed(newly_failed);
  } else if (checkpoint_ready) {
    watcher->OnCheckpointReady();
  } else {
    watcher->OnSessionProgress();
  }
}

void Session::OnQuestionDone(Work work, absl::StatusOr<Answer> answer) {
  {
    absl::MutexLock lock(&mu_);
    // Never answer as if the memory had read a segment that failed.
    if (!failure_.ok()) answer = failure_;
    // Counted before the answer goes out: a client that asks for the
    // session's info on receipt sees it.
    if (answer.ok()) ++questions_answered_;
  }
  if (answer.ok() && observer_ != nullptr) {
    observer_->OnAnswer(absl::Now() - work.asked);
  }
  // The answer is delivered before it stops counting as pending: a stream
  // that sees no pending work has every answer in hand.
  work.done(std::move(answer));
  std::shared_ptr<SessionWatcher> watcher;
  bool checkpoint_ready = false;
  {
    absl::MutexLock lock(&mu_);
    --questions_in_engine_;
    last_used_ = absl::Now();
    if (CheckpointReachedLocked() && !checkpoint_announced_) {
      checkpoint_announced_ = true;
      checkpoint_ready = true;
    }
    watcher = watcher_;
  }
  SubmitReady();
  if (watcher == nullptr) return;
  if (checkpoint_ready) {
    watcher->OnCheckpointReady();
  } else {
    watcher->OnSessionProgress();
  }
}

void Session::Abort(const absl::Status& why) {
  std::vector<Work> failed_questions;
  std::shared_ptr<SessionWatcher> watcher;
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return;
    failed_questions = FailLocked(why);
    watcher = watcher_;
  }
  for (Work& question : failed_questions) question.done(why);
  if (watcher != nullptr) watcher->OnSessionFailed(why);
}

SessionProgress Session::Progress() const {
  absl::MutexLock lock(&mu_);
  SessionProgress progress;
  progress.tokens_received = tokens_received_;
  progress.bytes_received = bytes_received_;
  progress.segments_processed = segments_processed_;
  progress.segments_pending = backlog_segments_ + segments_in_engine_;
  progress.questions_pending = static_cast<int64_t>(backlog_.size()) -
                               backlog_segments_ + questions_in_engine_;
  progress.tokens_buffered = static_cast<int64_t>(segmenter_.pending().size());
  progress.questions_answered = questions_answered_;
  return progress;
}

absl::StatusOr<bool> Session::RequestCheckpoint(int64_t segments) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(failure_);
  if (segments < segments_submitted_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a checkpoint after segment ", segments, ": the memory of session ",
        id_, " already holds ", segments_submitted_, " segments"));
  }
  checkpoint_at_ = segments;
  checkpoint_announced_ = CheckpointReachedLocked();
  return checkpoint_announced_;
}

SessionState Session::StateLocked(HostTensor memory) const {
  SessionState state;
  state.memory = std::move(memory);
  state.model_fingerprint = model_->fingerprint;
  state.model_name = model_->name;
  for (const Work& work : backlog_) {
    if (!work.is_question) state.pending_segments.push_back(work.tokens);
  }
  state.pending_tokens = segmenter_.pending();
  state.tokenizer_state = tokenizer_.SaveState();
  state.tokens_received = tokens_received_;
  state.bytes_received = bytes_received_;
  state.segments_processed = segments_processed_;
  state.questions_answered = questions_answered_;
  return state;
}

bool Session::CheckpointReached() const {
  absl::MutexLock lock(&mu_);
  return CheckpointReachedLocked();
}

bool Session::IdleLocked() const {
  return !failure_.ok() || (backlog_.empty() && segments_in_engine_ == 0 &&
                            questions_in_engine_ == 0);
}

bool Session::AwaitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(this, &Session::IdleLocked),
                               deadline);
}

absl::StatusOr<SessionState> Session::TakeCheckpoint(
    const SessionWatcher* holder) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(failure_);
  if (watcher_.get() != holder) {
    // A stream that has ended must not take its successor's checkpoint.
    return absl::FailedPreconditionError(
        absl::StrCat("session ", id_, " is no longer held by the caller"));
  }
  if (!CheckpointReachedLocked()) {
    return absl::FailedPreconditionError(
        absl::StrCat("session ", id_, " has not reached its checkpoint"));
  }
  // Under mu_ nothing of this session reaches the engine, so the memory,
  // the held segments and the carry-over belong to one point.
  ASSIGN_OR_RETURN(HostTensor memory, engine_->ReadMemory(slot_));
  return StateLocked(std::move(memory));
}

void Session::DropCheckpoint(const SessionWatcher* holder) {
  absl::MutexLock lock(&mu_);
  if (watcher_.get() != holder) return;
  checkpoint_at_ = -1;
  checkpoint_announced_ = false;
}

void Session::ResumeAfterCheckpoint() { SubmitReady(); }

absl::StatusOr<SessionState> Session::Export() const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(failure_);
  // Questions do not change the memory; the engine itself refuses to read
  // a slot with work in flight.
  if (segments_in_engine_ > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", id_, " is still reading; export it when it is idle"));
  }
  ASSIGN_OR_RETURN(HostTensor memory, engine_->ReadMemory(slot_));
  return StateLocked(std::move(memory));
}

absl::Status Session::Restore(const SessionState& state) {
  if (state.model_fingerprint != model_->fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the snapshot is of model ", state.model_name, " (fingerprint ",
        state.model_fingerprint, "); this server serves ", model_->name,
        " (fingerprint ", model_->fingerprint,
        "): import it into a server of that model"));
  }
  const int64_t segment_size = model_->config.rmt.segment_size;
  if (static_cast<int64_t>(state.pending_tokens.size()) >= segment_size) {
    return absl::InvalidArgumentError(
        "snapshot: more pending tokens than a segment holds");
  }
  RETURN_IF_ERROR(CheckIds(state.pending_tokens));
  for (const auto& segment : state.pending_segments) {
    if (segment.empty() ||
        static_cast<int64_t>(segment.size()) > segment_size) {
      return absl::InvalidArgumentError(
          "snapshot: a pending segment is empty or longer than a segment");
    }
    RETURN_IF_ERROR(CheckIds(segment));
  }
  if (state.tokens_received < 0 || state.bytes_received < 0 ||
      state.segments_processed < 0 || state.questions_answered < 0) {
    return absl::InvalidArgumentError("snapshot: a negative counter");
  }
  const std::vector<int64_t> shape = {model_->config.rmt.num_mem_tokens,
                                      model_->config.hidden_size};
  if (state.memory.shape != shape ||
      static_cast<int64_t>(state.memory.bytes.size()) !=
          state.memory.numel() *
              static_cast<int64_t>(DTypeSize(state.memory.dtype))) {
    return absl::InvalidArgumentError(
        "snapshot: the memory does not have this model's shape");
  }
  {
    absl::MutexLock lock(&mu_);
    StreamingTokenizer restored(model_->tokenizer.get());
    RETURN_IF_ERROR(restored.RestoreState(state.tokenizer_state));
    RETURN_IF_ERROR(engine_->WriteMemory(slot_, state.memory));
    tokenizer_ = std::move(restored);
    segmenter_.Restore(state.pending_tokens);
    backlog_.clear();
    for (const auto& segment : state.pending_segments) {
      Work work;
      work.tokens = segment;
      backlog_.push_back(std::move(work));
    }
    backlog_segments_ = static_cast<int64_t>(state.pending_segments.size());
    tokens_received_ = state.tokens_received;
    bytes_received_ = state.bytes_received;
    segments_submitted_ = state.segments_processed;
    segments_processed_ = state.segments_processed;
    questions_answered_ = state.questions_answered;
    last_used_ = absl::Now();
  }
  SubmitReady();
  return absl::OkStatus();
}

}  // namespace rmt::server
