#include "server/converse_reactor.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/grpc_status.h"
#include "server/session_stream.h"

namespace rmt::server {
namespace {

using v1::ConverseRequest;
using v1::ConverseResponse;

class ConverseReactor final
    : public grpc::ServerBidiReactor<ConverseRequest, ConverseResponse>,
      public SessionStream::Transport {
 public:
  ConverseReactor(const ServiceContext* context,
                  grpc::CallbackServerContext* call)
      : context_(context),
        call_(call),
        stream_(std::make_shared<SessionStream>(
            context, this,
            SessionStream::Options{"Converse", /*writes_responses=*/true})) {
    absl::StatusOr<std::string> owner = context_->auth->Owner(*call);
    if (owner.ok()) {
      owner_ = *std::move(owner);
    } else {
      stream_->Fail(owner.status());
    }
    stream_->Start();
  }

  void OnReadDone(bool ok) override {
    if (ok && stream_->BeginMessage()) {
      absl::Status handled = Handle(request_);
      if (!handled.ok()) stream_->Fail(handled);
    }
    // Only now may the next read reuse request_.
    stream_->ReadDone(ok);
  }
  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->Cancelled(); }
  void OnDone() override {
    stream_->TransportGone();
    delete this;
  }

  // SessionStream::Transport
  void StartNextRead() override { StartRead(&request_); }
  void StartResponseWrite(const ConverseResponse* response) override {
    StartWrite(response);
  }
  void FinishCall(const grpc::Status& status,
                  const SessionProgress* /*progress*/) override {
    Finish(status);
  }

 private:
  // The read path: one message at a time (one read in flight at most).
  absl::Status Handle(const ConverseRequest& request) {
    if (request.kind_case() == ConverseRequest::kOpen) {
      return HandleOpen(request.open());
    }
    if (!stream_->has_session()) {
      return absl::FailedPreconditionError(
          "the first message of a Converse stream must be `open`");
    }
    switch (request.kind_case()) {
      case ConverseRequest::kChunk:
        return stream_->FeedChunk(request.chunk());
      case ConverseRequest::kFlush:
        return stream_->Flush();
      case ConverseRequest::kQuestion:
        return stream_->Ask(request.question());
      case ConverseRequest::kSnapshot:
        return stream_->RequestSnapshot();
      default:
        return absl::InvalidArgumentError(
            "an empty ConverseRequest: set open, chunk, flush, question or "
            "snapshot");
    }
  }

  absl::Status HandleOpen(const v1::Open& open) {
    if (stream_->has_session()) {
      return absl::FailedPreconditionError(
          "`open` may be sent once per stream; open a new stream for another "
          "session");
    }
    const bool has_metadata_id =
        call_->client_metadata().count("x-session-id") > 0;
    const bool new_id = !open.new_session_id().empty();
    if (new_id && !open.session_id().empty()) {
      return absl::InvalidArgumentError(
          "`open` continues a session (session_id) or opens a new one "
          "(new_session_id), not both");
    }
    if (!open.snapshot().empty() && !new_id &&
        (!open.session_id().empty() || has_metadata_id)) {
      return absl::InvalidArgumentError(
          "`open` takes a session to continue (session_id or x-session-id "
          "metadata) or a snapshot to restore, not both");
    }
    if (open.snapshot_every_segments() < 0 || open.top_k() < 0 ||
        open.top_k() > context_->limits.max_top_k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot_every_segments must not be negative and top_k must be in "
          "[0, ",
          context_->limits.max_top_k, "]"));
    }
    std::shared_ptr<Session> session;
    SessionStream::Settings settings;
    bool created = false;
    if (new_id) {
      // x-session-id, when sent too, must name the same id.
      ASSIGN_OR_RETURN(std::string id,
                       SessionIdOf(*call_, open.new_session_id()));
      ASSIGN_OR_RETURN(session,
                       CreateSession(*context_, owner_, open.snapshot(), id));
      settings.resumed = !open.snapshot().empty();
      created = true;
    } else if (!open.session_id().empty() || has_metadata_id) {
      ASSIGN_OR_RETURN(std::string id, SessionIdOf(*call_, open.session_id()));
      ASSIGN_OR_RETURN(session, context_->sessions->Find(id, owner_));
      if (context_->sessions->draining()) {
        return absl::UnavailableError(
            "the server is shutting down; continue the session elsewhere");
      }
      settings.resumed = true;
    } else {
      ASSIGN_OR_RETURN(session,
                       CreateSession(*context_, owner_, open.snapshot()));
      settings.resumed = !open.snapshot().empty();
      created = true;
    }
    settings.keep_alive = open.keep_alive();
    settings.snapshot_every_segments = open.snapshot_every_segments();
    settings.default_top_k =
        open.top_k() > 0 ? open.top_k() : context_->limits.default_top_k;
    absl::Status attached = stream_->Attach(session, settings);
    if (!attached.ok() && created) {
      // A session this stream made is its own: do not leave it behind.
      context_->sessions->Close(session->id(), owner_, SessionOutcome::kFailed)
          .IgnoreError();
    }
    return attached;
  }

  const ServiceContext* const context_;
  grpc::CallbackServerContext* const call_;
  std::string owner_;        // set in the constructor, read by the read path
  ConverseRequest request_;  // the read path's own
  const std::shared_ptr<SessionStream> stream_;
};

}  // namespace

grpc::ServerBidiReactor<v1::ConverseRequest, v1::ConverseResponse>*
StartConverse(const ServiceContext* context,
              grpc::CallbackServerContext* call) {
  return new ConverseReactor(context, call);
}

}  // namespace rmt::server
