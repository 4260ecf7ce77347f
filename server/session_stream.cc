#include "server/session_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/grpc_status.h"
#include "server/log.h"
#include "server/snapshot_codec.h"

namespace rmt::server {
namespace {

// Responses waiting to be written before the stream stops reading.
constexpr size_t kMaxOutbox = 16;

v1::ConverseResponse ProgressResponse(const SessionProgress& progress) {
  v1::ConverseResponse response;
  FillProgress(progress, response.mutable_progress());
  return response;
}

// The first multiple of `every` after `processed`.
int64_t NextMultiple(int64_t processed, int64_t every) {
  return (processed / every + 1) * every;
}

}  // namespace

SessionStream::SessionStream(const ServiceContext* context,
                             Transport* transport, Options options)
    : context_(context), options_(options), transport_(transport) {
  if (context_->calls != nullptr) context_->calls->Begin();
}

SessionStream::~SessionStream() = default;

void SessionStream::Start() { Pump(); }

bool SessionStream::has_session() const {
  absl::MutexLock lock(&mu_);
  return session_ != nullptr;
}

absl::Status SessionStream::Attach(std::shared_ptr<Session> session,
                                   const Settings& settings) {
  if (!session->TryAcquire(shared_from_this())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", session->id(),
        " is in use by another stream or call; wait for it to end"));
  }
  absl::MutexLock lock(&mu_);
  session_ = std::move(session);
  settings_ = settings;
  LogEvent("stream_opened",
           {{"method", options_.method},
            {"session", session_->id()},
            {"resumed", settings.resumed ? "true" : "false"},
            {"keep_alive", settings.keep_alive ? "true" : "false"}});
  if (options_.writes_responses) {
    const ModelConfig& config = context_->model->config;
    v1::ConverseResponse response;
    v1::Opened* opened = response.mutable_opened();
    opened->set_session_id(session_->id());
    opened->set_model(context_->model->name);
    opened->set_segment_size(static_cast<int32_t>(config.rmt.segment_size));
    opened->set_num_mem_tokens(static_cast<int32_t>(config.rmt.num_mem_tokens));
    opened->set_resumed(settings.resumed);
    outbox_.push_back(std::move(response));
    // A resumed session says at once how much of the document it holds: the
    // client resends from progress.bytes_received.
    if (settings.resumed) {
      outbox_.push_back(ProgressResponse(session_->Progress()));
    }
  }
  const int64_t processed = session_->Progress().segments_processed;
  WantNextLocked(kForClient, processed);
  WantNextLocked(kForStore, processed);
  return RequestNextCheckpointLocked();
}

absl::Status SessionStream::FeedChunk(const v1::Chunk& chunk) {
  RETURN_IF_ERROR(CheckChunk(chunk, context_->limits));
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    session = session_;
  }
  return server::FeedChunk(*session, chunk).status();
}

absl::Status SessionStream::Flush() {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    session = session_;
  }
  return session->Flush().status();
}

absl::Status SessionStream::Ask(const v1::Question& question) {
  std::shared_ptr<Session> session;
  int default_top_k;
  {
    absl::MutexLock lock(&mu_);
    session = session_;
    default_top_k = settings_.default_top_k;
  }
  ASSIGN_OR_RETURN(int top_k,
                   TopKOf(question, default_top_k, context_->limits));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, QuestionIds(*session, question));
  // The answer is written by the session's callback; the stream stays
  // alive for it through the shared pointer.
  return session->Ask(std::move(ids), top_k,
                      [self = shared_from_this(),
                       id = question.id()](absl::StatusOr<Answer> answer) {
                        {
                          absl::MutexLock lock(&self->mu_);
                          if (!answer.ok()) {
                            self->EndLocked(answer.status());
                          } else if (self->state_ == State::kReading ||
                                     self->state_ == State::kHalfClosed) {
                            v1::ConverseResponse response;
                            FillAnswer(
                                id, *answer,
                                self->session_->Progress().segments_processed,
                                response.mutable_answer());
                            self->outbox_.push_back(std::move(response));
                          }
                        }
                        self->Pump();
                      });
}

absl::Status SessionStream::RequestSnapshot() {
  absl::MutexLock lock(&mu_);
  session_->Touch();
  const SessionProgress progress = session_->Progress();
  // Every segment sent so far, and nothing after it; a snapshot already on
  // its way to a later point holds all of that too.
  const int64_t at = progress.segments_processed + progress.segments_pending;
  if (checkpoint_ == Checkpoint::kWaiting && at < checkpoint_at_) {
    // The session holds segments back for a later point: move its
    // checkpoint down to this one (the later one stays wanted).
    checkpoints_wanted_[at] |= kForClient;
    checkpoint_ = Checkpoint::kNone;
    return RequestNextCheckpointLocked();
  }
  if (checkpoint_ != Checkpoint::kNone && at <= checkpoint_at_) {
    // The snapshot on its way holds all of it; make sure the client gets it.
    checkpoints_wanted_[checkpoint_at_] |= kForClient;
    return absl::OkStatus();
  }
  checkpoints_wanted_[at] |= kForClient;
  return RequestNextCheckpointLocked();
}

int64_t SessionStream::EveryLocked(Purpose purpose) const {
  return purpose == kForClient ? settings_.snapshot_every_segments
                               : context_->sessions->store_checkpoint_every();
}

void SessionStream::WantNextLocked(Purpose purpose, int64_t segments) {
  const int64_t every = EveryLocked(purpose);
  if (every > 0) checkpoints_wanted_[NextMultiple(segments, every)] |= purpose;
}

absl::Status SessionStream::RequestNextCheckpointLocked() {
  while (checkpoint_ == Checkpoint::kNone && !checkpoints_wanted_.empty()) {
    const auto [at, purposes] = *checkpoints_wanted_.begin();
    absl::StatusOr<bool> reached = session_->RequestCheckpoint(at);
    if (reached.ok()) {
      checkpoint_ = *reached ? Checkpoint::kReady : Checkpoint::kWaiting;
      checkpoint_at_ = at;
      return absl::OkStatus();
    }
    // A kept session may still be reading what an earlier stream sent:
    // a periodic checkpoint it has already passed moves on to the next
    // multiple, not an error.
    if (reached.status().code() != absl::StatusCode::kInvalidArgument) {
      return reached.status();
    }
    checkpoints_wanted_.erase(checkpoints_wanted_.begin());
    for (const Purpose purpose : {kForClient, kForStore}) {
      if ((purposes & purpose) == 0) continue;
      if (EveryLocked(purpose) <= 0) return reached.status();
      WantNextLocked(purpose, at);
    }
  }
  return absl::OkStatus();
}

void SessionStream::ExportCheckpoint() {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    session = session_;
  }
  absl::StatusOr<SessionState> state = session->TakeCheckpoint(this);
  std::string data;
  if (state.ok()) data = EncodeSnapshot(*state, *context_->snapshot_key);
  bool for_store = false;
  {
    absl::MutexLock lock(&mu_);
    checkpoint_ = Checkpoint::kNone;
    if (!state.ok()) {
      EndLocked(state.status());
    } else if (state_ == State::kReading || state_ == State::kHalfClosed) {
      // Every checkpoint wanted up to here is this one.
      const int64_t at = state->segments_processed;
      const auto end = checkpoints_wanted_.upper_bound(at);
      int purposes = 0;
      for (auto it = checkpoints_wanted_.begin(); it != end; ++it) {
        purposes |= it->second;
      }
      checkpoints_wanted_.erase(checkpoints_wanted_.begin(), end);
      if ((purposes & kForStore) != 0) {
        for_store = true;
        WantNextLocked(kForStore, at);
      }
      if ((purposes & kForClient) != 0) {
        v1::ConverseResponse response;
        response.mutable_snapshot()->set_data(for_store ? data
                                                        : std::move(data));
        response.mutable_snapshot()->set_segments_processed(at);
        outbox_.push_back(std::move(response));
        // A snapshot asked for in between leaves the period as it was.
        const int64_t every = EveryLocked(kForClient);
        if (every > 0 && at % every == 0) WantNextLocked(kForClient, at);
      }
      absl::Status next = RequestNextCheckpointLocked();
      if (!next.ok()) EndLocked(next);
    }
    // The session held the segments after this checkpoint until now, when
    // the next one is set (else the engine could pass it first) or none is
    // wanted.
    if (checkpoint_ == Checkpoint::kNone) session->DropCheckpoint(this);
  }
  // Off the lock: the engine may call back inline.
  session->ResumeAfterCheckpoint();
  // Off the lock: the store write itself runs on the persistence's thread.
  if (for_store) {
    context_->sessions->SaveCheckpoint(session, state->segments_processed,
                                       std::move(data));
  }
  Pump();
}

void SessionStream::Fail(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    EndLocked(status);
  }
  Pump();
}

void SessionStream::EndLocked(const absl::Status& status) {
  if (state_ == State::kEnding || state_ == State::kFinished) return;
  state_ = State::kEnding;
  final_status_ = status;
  outbox_.clear();
  progress_dirty_ = false;
}

void SessionStream::ReadDone(bool more) {
  bool release = false;
  grpc::Status release_status;
  {
    absl::MutexLock lock(&mu_);
    handling_message_ = false;
    if (release_deferred_) {
      release_deferred_ = false;
      release = true;
      release_status = deferred_status_;
    }
    reading_ = false;
    if (!more && state_ == State::kReading) {
      // A stream that never attached a session has nothing to finish.
      if (session_ == nullptr) {
        EndLocked(absl::OkStatus());
      } else {
        state_ = State::kHalfClosed;
      }
    }
  }
  if (release) ReleaseSession(release_status);
  Pump();
}

void SessionStream::WriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) EndLocked(absl::CancelledError("the client stopped reading"));
  }
  Pump();
}

void SessionStream::Cancelled() {
  {
    absl::MutexLock lock(&mu_);
    EndLocked(absl::CancelledError("the call was cancelled"));
  }
  Pump();
}

void SessionStream::TransportGone() {
  absl::MutexLock lock(&mu_);
  transport_ = nullptr;
}

void SessionStream::OnSessionProgress() {
  {
    absl::MutexLock lock(&mu_);
    progress_dirty_ = true;
  }
  Pump();
}

void SessionStream::OnCheckpointReady() {
  // Not "the wanted checkpoint is reached": the announcement may be late,
  // of a checkpoint DecideLocked already saw reached and exported, with the
  // next one now waiting. DecideLocked asks the session itself.
  Pump();
}

void SessionStream::OnSessionFailed(const absl::Status& why) { Fail(why); }

SessionStream::Actions SessionStream::DecideLocked() {
  Actions actions;
  if (state_ == State::kFinished) return actions;
  SessionProgress progress;
  if (session_ != nullptr) progress = session_->Progress();
  const bool live = state_ == State::kReading || state_ == State::kHalfClosed;
  // The session may have reached the checkpoint with its announcement
  // still on the way: never end a stream that owes that snapshot.
  if (checkpoint_ == Checkpoint::kWaiting && session_ != nullptr &&
      session_->CheckpointReached()) {
    checkpoint_ = Checkpoint::kReady;
  }

  // The client is done and so is its work: the last progress, then OK.
  if (state_ == State::kHalfClosed && progress.segments_pending == 0 &&
      progress.questions_pending == 0 && checkpoint_ != Checkpoint::kReady &&
      checkpoint_ != Checkpoint::kExporting && outbox_.empty() && !writing_) {
    if (options_.writes_responses && !final_progress_sent_) {
      final_progress_sent_ = true;
      progress_dirty_ = false;
      outbox_.push_back(ProgressResponse(progress));
    } else {
      EndLocked(absl::OkStatus());
    }
  }
  if (live && checkpoint_ == Checkpoint::kReady) {
    checkpoint_ = Checkpoint::kExporting;
    actions.export_checkpoint = true;
  }
  if (live && options_.writes_responses && !writing_) {
    if (outbox_.empty() && progress_dirty_ && session_ != nullptr) {
      progress_dirty_ = false;
      outbox_.push_back(ProgressResponse(progress));
    }
    if (!outbox_.empty()) {
      write_buffer_ = std::move(outbox_.front());
      outbox_.pop_front();
      writing_ = true;
      actions.write = &write_buffer_;
    }
  }
  if (state_ == State::kEnding && !writing_) {
    state_ = State::kFinished;
    actions.finish = true;
    actions.status = ToGrpcStatus(final_status_);
    return actions;
  }
  if (state_ == State::kReading && !reading_ && outbox_.size() < kMaxOutbox &&
      (session_ == nullptr ||
       progress.segments_pending <= context_->limits.max_pending_segments)) {
    reading_ = true;
    actions.read = true;
  }
  return actions;
}

void SessionStream::Pump() {
  // Keeps the stream alive while Finish lets gRPC delete the reactor.
  std::shared_ptr<SessionStream> self = shared_from_this();
  {
    absl::MutexLock lock(&mu_);
    if (pumping_) {
      pump_again_ = true;
      return;
    }
    pumping_ = true;
  }
  while (true) {
    Actions actions;
    Transport* transport;
    {
      absl::MutexLock lock(&mu_);
      actions = DecideLocked();
      transport = transport_;
      if (!actions.read && actions.write == nullptr &&
          !actions.export_checkpoint && !actions.finish) {
        if (!pump_again_) {
          pumping_ = false;
          return;
        }
        pump_again_ = false;
        continue;
      }
    }
    if (actions.export_checkpoint) {
      context_->worker->Post([self] { self->ExportCheckpoint(); });
    }
    if (actions.write != nullptr) transport->StartResponseWrite(actions.write);
    if (actions.read) transport->StartNextRead();
    if (actions.finish) {
      // Before Finish: once the client sees the end, the session is free
      // and the call is counted.
      ReleaseSession(actions.status);
      SessionProgress progress;
      std::shared_ptr<Session> session;
      {
        absl::MutexLock lock(&mu_);
        session = session_;
      }
      if (session != nullptr) progress = session->Progress();
      if (context_->metrics != nullptr) {
        context_->metrics->OnRequest(options_.method,
                                     actions.status.error_code());
      }
      if (context_->calls != nullptr) context_->calls->End();
      transport->FinishCall(actions.status,
                            session != nullptr ? &progress : nullptr);
    }
  }
}

void SessionStream::ReleaseSession(const grpc::Status& status) {
  std::shared_ptr<Session> session;
  bool keep;
  {
    absl::MutexLock lock(&mu_);
    if (session_released_ || session_ == nullptr) return;
    if (handling_message_) {
      // The read path is feeding the session right now; it gives the
      // session back when it is done (MessageDone), so no input of this
      // stream reaches a session that another stream may hold next.
      release_deferred_ = true;
      deferred_status_ = status;
      return;
    }
    session_released_ = true;
    session = session_;
    keep = settings_.keep_alive;
  }
  const SessionProgress progress = session->Progress();
  LogEvent("stream_closed",
           {{"method", options_.method},
            {"session", session->id()},
            {"code", absl::StatusCodeToString(
                         static_cast<absl::StatusCode>(status.error_code()))},
            {"tokens", absl::StrCat(progress.tokens_received)},
            {"segments", absl::StrCat(progress.segments_processed)}});
  if (keep) {
    session->Release();
    // Written to the shared store (if any) off this thread.
    context_->sessions->SaveSoon(session);
    return;
  }
  // Closed while still leased, so no new stream takes the session in
  // between and sees its queued work cancelled. ABORTED is the reaper's
  // expiry.
  const SessionOutcome outcome =
      status.ok() ? SessionOutcome::kClosed
      : status.error_code() == grpc::StatusCode::ABORTED
          ? SessionOutcome::kExpired
          : SessionOutcome::kFailed;
  context_->sessions->Close(session->id(), session->owner(), outcome)
      .IgnoreError();  // NOT_FOUND: closed meanwhile (e.g. expired)
  session->Release();
}

bool SessionStream::BeginMessage() {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kReading) return false;
  handling_message_ = true;
  return true;
}

}  // namespace rmt::server
