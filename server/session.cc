#include "server/session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "model/status_macros.h"

namespace rmt::server {

Session::Session(std::string id, std::string owner, SlotId slot,
                 Engine* engine, const ServedModel* model,
                 SessionObserver* observer)
    : id_(std::move(id)),
      owner_(std::move(owner)),
      slot_(slot),
      engine_(engine),
      model_(model),
      observer_(observer),
      tokenizer_(model->tokenizer.get()),
      segmenter_(model->config.rmt.segment_size),
      last_used_(absl::Now()) {}

bool Session::TryAcquire() {
  absl::MutexLock lock(&mu_);
  if (leased_) return false;
  leased_ = true;
  last_used_ = absl::Now();
  return true;
}

void Session::Release() {
  absl::MutexLock lock(&mu_);
  leased_ = false;
  last_used_ = absl::Now();
}

bool Session::leased() const {
  absl::MutexLock lock(&mu_);
  return leased_;
}

absl::Time Session::last_used() const {
  absl::MutexLock lock(&mu_);
  return last_used_;
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

absl::StatusOr<int> Session::FeedText(std::string_view bytes,
                                      const SegmentDoneFactory& done) {
  std::vector<std::vector<int32_t>> segments;
  {
    absl::MutexLock lock(&mu_);
    last_used_ = absl::Now();
    // Feed leaves the stream unusable after invalid UTF-8; keep the session
    // as it was before the bad chunk.
    const std::string before = tokenizer_.SaveState();
    std::vector<int32_t> ids;
    absl::Status fed = tokenizer_.Feed(bytes, &ids);
    if (!fed.ok()) {
      tokenizer_.RestoreState(before).IgnoreError();  // its own output
      return fed;
    }
    tokens_received_ += static_cast<int64_t>(ids.size());
    segments = segmenter_.Append(ids);
    segments_submitted_ += static_cast<int64_t>(segments.size());
  }
  const int count = static_cast<int>(segments.size());
  Submit(std::move(segments), done);
  return count;
}

absl::StatusOr<int> Session::FeedTokens(const std::vector<int32_t>& ids,
                                        const SegmentDoneFactory& done) {
  RETURN_IF_ERROR(CheckIds(ids));
  return SubmitIds(ids, /*flush=*/false, done);
}

absl::StatusOr<int> Session::Flush(const SegmentDoneFactory& done) {
  std::vector<int32_t> ids;
  {
    absl::MutexLock lock(&mu_);
    const std::string before = tokenizer_.SaveState();
    absl::Status finished = tokenizer_.Finish(&ids);
    if (!finished.ok()) {
      tokenizer_.RestoreState(before).IgnoreError();
      return finished;
    }
  }
  return SubmitIds(ids, /*flush=*/true, done);
}

absl::StatusOr<int> Session::SubmitIds(const std::vector<int32_t>& ids,
                                       bool flush, const SegmentDoneFactory& done) {
  std::vector<std::vector<int32_t>> segments;
  {
    absl::MutexLock lock(&mu_);
    last_used_ = absl::Now();
    tokens_received_ += static_cast<int64_t>(ids.size());
    segments = segmenter_.Append(ids);
    if (flush) {
      if (auto tail = segmenter_.Flush()) segments.push_back(std::move(*tail));
    }
    segments_submitted_ += static_cast<int64_t>(segments.size());
  }
  const int count = static_cast<int>(segments.size());
  Submit(std::move(segments), done);
  return count;
}

// Outside mu_: the engine may run `done` inline when it refuses work.
void Session::Submit(std::vector<std::vector<int32_t>> segments,
                     const SegmentDoneFactory& done) {
  for (auto& segment : segments) {
    SegmentDone on_done = done ? done() : nullptr;
    engine_->SubmitSegment(
        slot_, std::move(segment),
        [self = shared_from_this(),
         done = std::move(on_done)](absl::Status status) {
          {
            absl::MutexLock lock(&self->mu_);
            if (status.ok()) {
              ++self->segments_processed_;
            } else {
              ++self->segments_failed_;
            }
          }
          if (done) done(status);
        });
  }
}

absl::Status Session::ValidateQuestion(const std::vector<int32_t>& ids) const {
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        "the question has no tokens; send some text or token ids");
  }
  const int64_t limit = model_->config.rmt.segment_size;
  if (static_cast<int64_t>(ids.size()) > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("the question has ", ids.size(),
                     " tokens; this model reads at most ", limit,
                     " (one segment): shorten it"));
  }
  return CheckIds(ids);
}

absl::StatusOr<std::vector<int32_t>> Session::EncodeQuestion(
    std::string_view text) const {
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, model_->tokenizer->Encode(text));
  RETURN_IF_ERROR(ValidateQuestion(ids));
  return ids;
}

absl::Status Session::Ask(std::vector<int32_t> question, int top_k,
                          AnswerDone done) {
  RETURN_IF_ERROR(ValidateQuestion(question));
  RETURN_IF_ERROR(Flush(nullptr).status());
  {
    absl::MutexLock lock(&mu_);
    ++questions_pending_;
  }
  const absl::Time asked = absl::Now();
  engine_->SubmitQuestion(
      slot_, std::move(question), top_k,
      [self = shared_from_this(), done = std::move(done),
       asked](absl::StatusOr<Answer> answer) {
        {
          absl::MutexLock lock(&self->mu_);
          --self->questions_pending_;
          if (answer.ok()) ++self->questions_answered_;
        }
        if (answer.ok() && self->observer_ != nullptr) {
          self->observer_->OnAnswer(absl::Now() - asked);
        }
        done(std::move(answer));
      });
  return absl::OkStatus();
}

SessionProgress Session::Progress() const {
  absl::MutexLock lock(&mu_);
  SessionProgress progress;
  progress.tokens_received = tokens_received_;
  progress.segments_processed = segments_processed_;
  progress.segments_pending =
      segments_submitted_ - segments_processed_ - segments_failed_;
  progress.tokens_buffered = static_cast<int64_t>(segmenter_.pending().size());
  progress.questions_answered = questions_answered_;
  return progress;
}

int64_t Session::segments_pending() const {
  absl::MutexLock lock(&mu_);
  return segments_submitted_ - segments_processed_ - segments_failed_;
}

absl::StatusOr<SessionState> Session::Export() const {
  absl::MutexLock lock(&mu_);
  if (segments_failed_ > 0) {
    return absl::FailedPreconditionError(
        "a segment of this session failed; its memory is incomplete");
  }
  SessionState state;
  // Under mu_ no segment of this session can be submitted, so the memory
  // and the carry-over belong to the same point of the document.
  ASSIGN_OR_RETURN(state.memory, engine_->ReadMemory(slot_));
  state.model_fingerprint = model_->fingerprint;
  state.model_name = model_->name;
  state.pending_tokens = segmenter_.pending();
  state.tokenizer_state = tokenizer_.SaveState();
  state.tokens_received = tokens_received_;
  state.segments_processed = segments_processed_;
  state.questions_answered = questions_answered_;
  return state;
}

absl::Status Session::Restore(const SessionState& state) {
  if (state.model_fingerprint != model_->fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the snapshot is of model ", state.model_name, " (fingerprint ",
        state.model_fingerprint, "); this server serves ", model_->name,
        " (fingerprint ", model_->fingerprint,
        "): import it into a server of that model"));
  }
  if (static_cast<int64_t>(state.pending_tokens.size()) >=
      model_->config.rmt.segment_size) {
    return absl::InvalidArgumentError(
        "snapshot: more pending tokens than a segment holds");
  }
  RETURN_IF_ERROR(CheckIds(state.pending_tokens));
  const std::vector<int64_t> shape = {model_->config.rmt.num_mem_tokens,
                                      model_->config.hidden_size};
  if (state.memory.shape != shape ||
      static_cast<int64_t>(state.memory.bytes.size()) !=
          state.memory.numel() *
              static_cast<int64_t>(DTypeSize(state.memory.dtype))) {
    return absl::InvalidArgumentError(
        "snapshot: the memory does not have this model's shape");
  }
  absl::MutexLock lock(&mu_);
  StreamingTokenizer restored(model_->tokenizer.get());
  RETURN_IF_ERROR(restored.RestoreState(state.tokenizer_state));
  RETURN_IF_ERROR(engine_->WriteMemory(slot_, state.memory));
  tokenizer_ = std::move(restored);
  segmenter_.Restore(state.pending_tokens);
  tokens_received_ = state.tokens_received;
  segments_submitted_ = state.segments_processed;
  segments_processed_ = state.segments_processed;
  questions_answered_ = state.questions_answered;
  last_used_ = absl::Now();
  return absl::OkStatus();
}

}  // namespace rmt::server
