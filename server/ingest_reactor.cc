#include "server/ingest_reactor.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "model/status_macros.h"
#include "server/grpc_status.h"

namespace rmt::server {
namespace {

class IngestReactor final : public grpc::ServerReadReactor<v1::IngestRequest> {
 public:
  IngestReactor(const ServiceContext* context,
                grpc::CallbackServerContext* call,
                v1::IngestResponse* response)
      : context_(context), call_(call), response_(response) {
    absl::StatusOr<std::string> owner = context_->auth->Owner(*call);
    if (owner.ok()) {
      owner_ = *owner;
    } else {
      Fail(owner.status());
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
    }
    if (!ok) OnHalfClose();
    Pump();
  }

  void OnCancel() override {
    Fail(absl::CancelledError("the call was cancelled"));
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Handle(const v1::IngestRequest& request) {
    if (session_ == nullptr) {
      ASSIGN_OR_RETURN(std::string id,
                       SessionIdOf(*call_, request.session_id()));
      ASSIGN_OR_RETURN(auto session, context_->sessions->Find(id, owner_));
      if (!session->TryAcquire()) {
        return absl::FailedPreconditionError(
            "the session is in use by another stream or call; wait for it "
            "to end");
      }
      session_ = std::move(session);
    } else if (!request.session_id().empty() &&
               request.session_id() != session_->id()) {
      return absl::InvalidArgumentError(
          "one Ingest call feeds one session; session_id changed");
    }
    if (request.flush()) flush_ = true;
    if (request.has_chunk()) {
      RETURN_IF_ERROR(CheckChunk(request.chunk(), context_->limits));
      RETURN_IF_ERROR(
          FeedChunk(*session_, request.chunk(), SegmentDone()).status());
    }
    return absl::OkStatus();
  }

  void OnHalfClose() {
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      half_closed_ = true;
    }
    if (session_ == nullptr) {
      Fail(absl::InvalidArgumentError(
          "an Ingest call without messages names no session"));
      return;
    }
    if (flush_) {
      absl::Status flushed = session_->Flush(SegmentDone()).status();
      if (!flushed.ok()) Fail(flushed);
    }
  }

  Session::SegmentDoneFactory SegmentDone() {
    return [this]() -> Session::SegmentDone {
      {
        absl::MutexLock lock(&mu_);
        ++outstanding_;
      }
      return [this](absl::Status status) {
        {
          absl::MutexLock lock(&mu_);
          --outstanding_;
          if (!status.ok() && !finish_requested_) {
            finish_requested_ = true;
            final_status_ = ToGrpcStatus(status);
          }
        }
        Pump();
      };
    };
  }

  void Fail(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    final_status_ = ToGrpcStatus(status);
  }

  void Pump() {
    bool start_read = false;
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (!finish_requested_ && half_closed_ && outstanding_ == 0) {
        finish_requested_ = true;
        final_status_ = grpc::Status::OK;
        FillProgress(session_->Progress(), response_->mutable_progress());
      }
      if (finish_requested_ && outstanding_ == 0) {
        finished_ = true;
        finish = true;
        status = final_status_;
      } else if (!finish_requested_ && !reading_ && !half_closed_ &&
                 (session_ == nullptr ||
                  session_->segments_pending() <=
                      context_->limits.max_pending_segments)) {
        reading_ = true;
        start_read = true;
      }
    }
    if (start_read) StartRead(&request_);
    if (finish) {
      // Before Finish: once the client sees the end, the session is free
      // and the call is counted.
      if (session_ != nullptr) session_->Release();
      if (context_->metrics != nullptr) {
        context_->metrics->OnRequest("Ingest", status.error_code());
      }
      Finish(status);
    }
  }

  const ServiceContext* const context_;
  grpc::CallbackServerContext* const call_;
  v1::IngestResponse* const response_;
  std::string owner_;

  // The read path's own (one Read outstanding at most).
  v1::IngestRequest request_;
  bool flush_ = false;
  // Set by the read path before any callback that reads it exists.
  std::shared_ptr<Session> session_;

  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerReadReactor<v1::IngestRequest>* StartIngest(
    const ServiceContext* context, grpc::CallbackServerContext* call,
    v1::IngestResponse* response) {
  return new IngestReactor(context, call, response);
}

}  // namespace rmt::server
