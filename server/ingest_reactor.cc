#include "server/ingest_reactor.h"

#include <memory>
#include <string>
#include <utility>

#include "model/status_macros.h"
#include "server/session_stream.h"

namespace rmt::server {
namespace {

class IngestReactor final : public grpc::ServerReadReactor<v1::IngestRequest>,
                            public SessionStream::Transport {
 public:
  IngestReactor(const ServiceContext* context,
                grpc::CallbackServerContext* call, v1::IngestResponse* response)
      : context_(context),
        call_(call),
        response_(response),
        stream_(std::make_shared<SessionStream>(
            context, this,
            SessionStream::Options{"Ingest", /*writes_responses=*/false})) {
    absl::StatusOr<std::string> owner = context_->auth->Owner(*call);
    if (owner.ok()) {
      owner_ = *std::move(owner);
    } else {
      stream_->Fail(owner.status());
    }
    stream_->Start();
  }

  void OnReadDone(bool ok) override {
    // A read also fails when the call is cancelled or the connection
    // drops: that is no end of the document, so no deferred flush then.
    if (stream_->BeginMessage() && !(!ok && call_->IsCancelled())) {
      absl::Status handled = ok ? Handle(request_) : OnHalfClose();
      if (!handled.ok()) stream_->Fail(handled);
    }
    stream_->ReadDone(ok);
  }
  void OnCancel() override { stream_->Cancelled(); }
  void OnDone() override {
    stream_->TransportGone();
    delete this;
  }

  // SessionStream::Transport
  void StartNextRead() override { StartRead(&request_); }
  void StartResponseWrite(const v1::ConverseResponse* /*response*/) override {
    // Ingest answers once, at the end; the stream never writes before.
  }
  void FinishCall(const grpc::Status& status,
                  const SessionProgress* progress) override {
    if (status.ok() && progress != nullptr) {
      FillProgress(*progress, response_->mutable_progress());
    }
    Finish(status);
  }

 private:
  absl::Status Handle(const v1::IngestRequest& request) {
    if (!stream_->has_session()) {
      ASSIGN_OR_RETURN(std::string id,
                       SessionIdOf(*call_, request.session_id()));
      ASSIGN_OR_RETURN(auto session, context_->sessions->Find(id, owner_));
      if (context_->sessions->draining()) {
        return absl::UnavailableError(
            "the server is shutting down; continue the session elsewhere");
      }
      SessionStream::Settings settings;
      settings.keep_alive = true;  // Ingest feeds a session; never closes it
      RETURN_IF_ERROR(stream_->Attach(std::move(session), settings));
      session_id_ = id;
    } else if (!request.session_id().empty() &&
               request.session_id() != session_id_) {
      return absl::InvalidArgumentError(
          "one Ingest call feeds one session; session_id changed");
    }
    if (request.flush()) flush_ = true;
    if (request.has_chunk())
      RETURN_IF_ERROR(stream_->FeedChunk(request.chunk()));
    return absl::OkStatus();
  }

  absl::Status OnHalfClose() {
    if (!stream_->has_session()) {
      return absl::InvalidArgumentError(
          "an Ingest call without messages names no session");
    }
    return flush_ ? stream_->Flush() : absl::OkStatus();
  }

  const ServiceContext* const context_;
  grpc::CallbackServerContext* const call_;
  v1::IngestResponse* const response_;
  std::string owner_;
  // The read path's own (one read in flight at most).
  v1::IngestRequest request_;
  std::string session_id_;
  bool flush_ = false;
  const std::shared_ptr<SessionStream> stream_;
};

}  // namespace

grpc::ServerReadReactor<v1::IngestRequest>* StartIngest(
    const ServiceContext* context, grpc::CallbackServerContext* call,
    v1::IngestResponse* response) {
  return new IngestReactor(context, call, response);
}

}  // namespace rmt::server
