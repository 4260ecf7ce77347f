#include "server/converse_reactor.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/status_macros.h"
#include "server/grpc_status.h"
#include "server/log.h"

namespace rmt::server {
namespace {

using v1::ConverseRequest;
using v1::ConverseResponse;

// Responses waiting to be written before the reactor stops reading.
constexpr size_t kMaxOutbox = 16;

class ConverseReactor final
    : public grpc::ServerBidiReactor<ConverseRequest, ConverseResponse> {
 public:
  ConverseReactor(const ServiceContext* context,
                  grpc::CallbackServerContext* call)
      : context_(context), call_(call) {
    absl::StatusOr<std::string> owner = context_->auth->Owner(*call);
    if (!owner.ok()) {
      Fail(owner.status());
    } else {
      owner_ = *owner;
    }
    Pump();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      absl::Status handled = Handle(request_);
      if (!handled.ok()) Fail(handled);
    }
    {
      // Only now may the next Read reuse request_ (engine callbacks run
      // Pump concurrently with Handle).
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok) half_closed_ = true;
    }
    if (!ok) OnHalfClose();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        // The client went away; nothing more can be written.
        broken_ = true;
        outbox_.clear();
        progress_dirty_ = false;
        if (!finish_requested_) {
          finish_requested_ = true;
          final_status_ = grpc::Status(grpc::StatusCode::CANCELLED,
                                       "the client stopped reading");
        }
      }
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      outbox_.clear();
      progress_dirty_ = false;
      if (!finish_requested_) {
        finish_requested_ = true;
        final_status_ =
            grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
      }
    }
    // A cancelled stream's queued work is dropped at once unless the client
    // asked to keep the session.
    ReleaseSession(/*cancelled=*/true);
    Pump();
  }

  void OnDone() override {
    ReleaseSession(/*cancelled=*/false);
    delete this;
  }

 private:
  // The request handlers run on a gRPC thread, one at a time (one Read is
  // outstanding at most); they take mu_ only to queue responses.
  absl::Status Handle(const ConverseRequest& request) {
    if (request.kind_case() == ConverseRequest::kOpen) {
      return HandleOpen(request.open());
    }
    if (session_ == nullptr) {
      return absl::FailedPreconditionError(
          "the first message of a Converse stream must be `open`");
    }
    switch (request.kind_case()) {
      case ConverseRequest::kChunk: {
        RETURN_IF_ERROR(CheckChunk(request.chunk(), context_->limits));
        return FeedChunk(*session_, request.chunk(), SegmentDone()).status();
      }
      case ConverseRequest::kFlush:
        return session_->Flush(SegmentDone()).status();
      case ConverseRequest::kQuestion:
        return HandleQuestion(request.question());
      case ConverseRequest::kSnapshot: {
        absl::MutexLock lock(&mu_);
        snapshot_wanted_ = true;
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError(
            "an empty ConverseRequest: set open, chunk, flush, question or "
            "snapshot");
    }
  }

  absl::Status HandleOpen(const v1::Open& open) {
    if (session_ != nullptr) {
      return absl::FailedPreconditionError(
          "`open` may be sent once per stream; open a new stream for another "
          "session");
    }
    if (!open.session_id().empty() && !open.snapshot().empty()) {
      return absl::InvalidArgumentError(
          "`open` takes a session_id or a snapshot, not both");
    }
    if (open.snapshot_every_segments() < 0 || open.top_k() < 0) {
      return absl::InvalidArgumentError(
          "snapshot_every_segments and top_k must not be negative");
    }
    std::string id = open.session_id();
    if (id.empty()) {
      auto from_metadata = SessionIdOf(*call_, "");
      if (from_metadata.ok()) id = *from_metadata;
    }
    std::shared_ptr<Session> session;
    bool resumed = false;
    if (!id.empty()) {
      ASSIGN_OR_RETURN(std::string checked, SessionIdOf(*call_, id));
      ASSIGN_OR_RETURN(session, context_->sessions->Find(checked, owner_));
      if (context_->sessions->draining()) {
        return absl::UnavailableError(
            "the server is shutting down; continue the session elsewhere");
      }
      resumed = true;
    } else {
      ASSIGN_OR_RETURN(session,
                       CreateSession(*context_, owner_, open.snapshot()));
      resumed = !open.snapshot().empty();
    }
    if (!session->TryAcquire()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", session->id(),
          " is in use by another stream or call; wait for it to end"));
    }
    const ModelConfig& config = context_->model->config;
    ConverseResponse response;
    v1::Opened* opened = response.mutable_opened();
    opened->set_session_id(session->id());
    opened->set_model(context_->model->name);
    opened->set_segment_size(static_cast<int32_t>(config.rmt.segment_size));
    opened->set_num_mem_tokens(static_cast<int32_t>(config.rmt.num_mem_tokens));
    opened->set_resumed(resumed);
    absl::MutexLock lock(&mu_);
    session_ = std::move(session);
    keep_alive_ = open.keep_alive();
    snapshot_every_ = open.snapshot_every_segments();
    next_snapshot_at_ =
        session_->Progress().segments_processed + snapshot_every_;
    default_top_k_ =
        open.top_k() > 0 ? open.top_k() : context_->limits.default_top_k;
    outbox_.push_back(std::move(response));
    LogEvent("stream_opened", {{"session", session_->id()},
                               {"resumed", resumed ? "true" : "false"},
                               {"keep_alive", keep_alive_ ? "true" : "false"}});
    return absl::OkStatus();
  }

  absl::Status HandleQuestion(const v1::Question& question) {
    if (question.top_k() < 0 || question.top_k() > context_->limits.max_top_k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "top_k must be in [0, ", context_->limits.max_top_k, "]"));
    }
    ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                     QuestionIds(*session_, question));
    const int top_k = question.top_k() > 0 ? question.top_k() : default_top_k_;
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    // Ask flushes the partial segment first; its segment callback is the
    // session's own, so only the answer refers to this reactor.
    absl::Status asked = session_->Ask(
        std::move(ids), top_k,
        [this, id = question.id()](absl::StatusOr<Answer> answer) {
          OnAnswer(id, std::move(answer));
        });
    if (!asked.ok()) {
      absl::MutexLock lock(&mu_);
      --outstanding_;
    }
    return asked;
  }

  // Makes one segment's callback, counted as outstanding until it runs.
  Session::SegmentDoneFactory SegmentDone() {
    return [this]() -> Session::SegmentDone {
      {
        absl::MutexLock lock(&mu_);
        ++outstanding_;
      }
      return [this](absl::Status status) { OnSegmentDone(std::move(status)); };
    };
  }

  // Engine scheduler thread: must not block.
  void OnSegmentDone(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      progress_dirty_ = true;
      if (!status.ok() && !finish_requested_ && !cancelled_) {
        finish_requested_ = true;
        final_status_ = ToGrpcStatus(status);
      }
    }
    Pump();
  }

  void OnAnswer(const std::string& question_id,
                absl::StatusOr<Answer> answer) {
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      if (!answer.ok()) {
        if (!finish_requested_) {
          finish_requested_ = true;
          final_status_ = ToGrpcStatus(answer.status());
        }
      } else if (!finish_requested_) {
        ConverseResponse response;
        FillAnswer(question_id, *answer,
                   session_->Progress().segments_processed,
                   response.mutable_answer());
        outbox_.push_back(std::move(response));
      }
    }
    Pump();
  }

  void OnHalfClose() {
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
    }
    if (session_ == nullptr) {
      absl::MutexLock lock(&mu_);
      if (!finish_requested_) {
        // A stream that never opened a session ends at once.
        finish_requested_ = true;
        final_status_ = grpc::Status::OK;
      }
      return;
    }
    // Segments already submitted finish (Pump waits for them). The partial
    // segment stays buffered: a keep_alive session continues the same
    // document in a later stream exactly as if it had never stopped, and a
    // closed session has no use for it.
  }

  void Fail(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    final_status_ = ToGrpcStatus(status);
    outbox_.clear();
    progress_dirty_ = false;
  }

  // Decides the next gRPC operations under mu_ and starts them without it
  // (gRPC may run reactions inline).
  void Pump() {
    bool start_read = false;
    const ConverseResponse* to_write = nullptr;
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      const int64_t pending =
          session_ != nullptr ? session_->segments_pending() : 0;
      const bool idle =
          outstanding_ == 0 && pending == 0 &&
          (session_ == nullptr ||
           context_->engine->PendingWork(session_->slot()) == 0);
      MaybeSnapshot(pending);
      if (!writing_ && !broken_ && !cancelled_) {
        if (outbox_.empty() && progress_dirty_) {
          progress_dirty_ = false;
          ConverseResponse progress;
          FillProgress(session_->Progress(), progress.mutable_progress());
          outbox_.push_back(std::move(progress));
        }
        if (outbox_.empty() && half_closed_ && !finish_requested_ && idle &&
            session_ != nullptr && !final_progress_sent_) {
          final_progress_sent_ = true;
          ConverseResponse progress;
          FillProgress(session_->Progress(), progress.mutable_progress());
          outbox_.push_back(std::move(progress));
        }
        if (!outbox_.empty()) {
          write_buffer_ = std::move(outbox_.front());
          outbox_.pop_front();
          writing_ = true;
          to_write = &write_buffer_;
        }
      }
      if (!finish_requested_ && half_closed_ && idle && final_progress_sent_ &&
          !writing_ && outbox_.empty()) {
        finish_requested_ = true;
        final_status_ = grpc::Status::OK;
      }
      if (finish_requested_ && !writing_ && outstanding_ == 0) {
        finished_ = true;
        finish = true;
        status = final_status_;
      }
      if (!finish && !finish_requested_ && !reading_ && !half_closed_ &&
          !snapshot_wanted_ && pending <= context_->limits.max_pending_segments &&
          outbox_.size() < kMaxOutbox) {
        reading_ = true;
        start_read = true;
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (start_read) StartRead(&request_);
    if (finish) {
      // Before Finish: once the client sees the end, the session is free
      // and the call is counted.
      ReleaseSession(/*cancelled=*/false);
      if (context_->metrics != nullptr) {
        context_->metrics->OnRequest("Converse", status.error_code());
      }
      Finish(status);
    }
  }

  // Queues a snapshot once every segment sent before it is in the memory.
  void MaybeSnapshot(int64_t pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session_ == nullptr || finish_requested_) return;
    if (snapshot_every_ > 0 && !snapshot_wanted_) {
      const int64_t processed = session_->Progress().segments_processed;
      if (processed + pending >= next_snapshot_at_) snapshot_wanted_ = true;
    }
    if (!snapshot_wanted_ || pending > 0 || outstanding_ > 0 ||
        context_->engine->PendingWork(session_->slot()) > 0) {
      return;
    }
    snapshot_wanted_ = false;
    absl::StatusOr<SessionState> state = session_->Export();
    if (!state.ok()) {
      finish_requested_ = true;
      final_status_ = ToGrpcStatus(state.status());
      return;
    }
    if (snapshot_every_ > 0) {
      next_snapshot_at_ = state->segments_processed + snapshot_every_;
    }
    ConverseResponse response;
    response.mutable_snapshot()->set_data(
        EncodeSnapshot(*state, *context_->snapshot_key));
    response.mutable_snapshot()->set_segments_processed(
        state->segments_processed);
    outbox_.push_back(std::move(response));
  }

  // Gives the session back; closes it unless keep_alive (or on cancel, when
  // its queued work is dropped so the stream can end promptly).
  void ReleaseSession(bool cancelled) {
    std::shared_ptr<Session> session;
    bool keep;
    bool ok;
    std::string code;
    {
      absl::MutexLock lock(&mu_);
      if (session_released_ || session_ == nullptr) return;
      if (cancelled && keep_alive_) return;  // finish the queued work first
      session_released_ = true;
      session = session_;
      keep = keep_alive_;
      ok = final_status_.ok() && !cancelled_;
      code = absl::StrCat(final_status_.error_code());
    }
    const SessionProgress progress = session->Progress();
    LogEvent("stream_closed",
             {{"session", session->id()},
              {"code", code},
              {"tokens", absl::StrCat(progress.tokens_received)},
              {"segments", absl::StrCat(progress.segments_processed)}});
    session->Release();
    if (!keep) {
      context_->sessions
          ->Close(session->id(), owner_,
                  ok ? SessionOutcome::kClosed : SessionOutcome::kFailed)
          .IgnoreError();  // NOT_FOUND: closed meanwhile
    }
  }

  // Constant after construction.
  const ServiceContext* const context_;
  grpc::CallbackServerContext* const call_;
  std::string owner_;

  // Touched only by the read path (one outstanding Read).
  ConverseRequest request_;
  int default_top_k_ = 1;

  absl::Mutex mu_;
  // Set once by the read path in HandleOpen, under mu_; callbacks (which
  // exist only after that) read it under mu_, the read path without.
  std::shared_ptr<Session> session_;
  bool keep_alive_ ABSL_GUARDED_BY(mu_) = false;
  int64_t snapshot_every_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_snapshot_at_ ABSL_GUARDED_BY(mu_) = 0;
  bool snapshot_wanted_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<ConverseResponse> outbox_ ABSL_GUARDED_BY(mu_);
  ConverseResponse write_buffer_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool progress_dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool final_progress_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool session_released_ ABSL_GUARDED_BY(mu_) = false;
  // Engine callbacks (segments, answers) that refer to this reactor and
  // have not yet run; Finish waits for zero.
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::ConverseRequest, v1::ConverseResponse>*
StartConverse(const ServiceContext* context,
              grpc::CallbackServerContext* call) {
  return new ConverseReactor(context, call);
}

}  // namespace rmt::server
