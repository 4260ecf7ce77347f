#include "server/service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "model/status_macros.h"
#include "server/converse_reactor.h"
#include "server/grpc_status.h"
#include "server/ingest_reactor.h"

namespace rmt::server {
namespace {

void FillSessionInfo(const Session& session, v1::SessionInfo* info) {
  info->set_session_id(session.id());
  const SessionProgress progress = session.Progress();
  FillProgress(progress, info->mutable_progress());
  info->set_questions_answered(progress.questions_answered);
  info->set_idle_seconds(
      absl::ToDoubleSeconds(absl::Now() - session.last_used()));
  info->set_busy(session.leased());
  const absl::Status failure = session.failure();
  if (!failure.ok()) info->set_failure(failure.ToString());
}

// The session a unary call names, for the caller's owner.
absl::StatusOr<std::shared_ptr<Session>> FindSession(
    const ServiceContext& context, const grpc::CallbackServerContext& call,
    const std::string& in_message) {
  ASSIGN_OR_RETURN(std::string owner, context.auth->Owner(call));
  ASSIGN_OR_RETURN(std::string id, SessionIdOf(call, in_message));
  return context.sessions->Find(id, owner);
}

// Holds a session's lease for the length of a call.
class Lease {
 public:
  explicit Lease(std::shared_ptr<Session> session)
      : session_(std::move(session)), held_(session_->TryAcquire()) {}
  ~Lease() {
    if (held_) session_->Release();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  absl::Status status() const {
    if (held_) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "the session is in use by another stream or call; wait for it to "
        "end");
  }

 private:
  std::shared_ptr<Session> session_;
  bool held_;
};

}  // namespace

grpc::ServerUnaryReactor* MemoryQAService::Done(
    grpc::CallbackServerContext* call, const char* method,
    const absl::Status& status) {
  return Finish(call->DefaultReactor(), method, status);
}

grpc::ServerUnaryReactor* MemoryQAService::Finish(
    grpc::ServerUnaryReactor* reactor, const char* method,
    const absl::Status& status) const {
  if (context_->metrics != nullptr) {
    context_->metrics->OnRequest(method, static_cast<int>(status.code()));
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerBidiReactor<v1::ConverseRequest, v1::ConverseResponse>*
MemoryQAService::Converse(grpc::CallbackServerContext* call) {
  return StartConverse(context_, call);
}

grpc::ServerReadReactor<v1::IngestRequest>* MemoryQAService::Ingest(
    grpc::CallbackServerContext* call, v1::IngestResponse* response) {
  return StartIngest(context_, call, response);
}

grpc::ServerUnaryReactor* MemoryQAService::CreateSession(
    grpc::CallbackServerContext* call, const v1::CreateSessionRequest* request,
    v1::CreateSessionResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string owner, context_->auth->Owner(*call));
    // The id the client drew, if any (also accepted as x-session-id).
    std::string id = request->session_id();
    if (!id.empty() || call->client_metadata().count("x-session-id") > 0) {
      ASSIGN_OR_RETURN(id, SessionIdOf(*call, id));
    }
    ASSIGN_OR_RETURN(
        auto session,
        server::CreateSession(*context_, owner, request->snapshot(), id));
    response->set_session_id(session->id());
    FillSessionInfo(*session, response->mutable_info());
    return absl::OkStatus();
  }();
  return Done(call, "CreateSession", status);
}

grpc::ServerUnaryReactor* MemoryQAService::ImportSession(
    grpc::CallbackServerContext* call, const v1::ImportSessionRequest* request,
    v1::CreateSessionResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    // Authenticate first: an anonymous caller learns nothing, not even
    // which arguments would be accepted.
    ASSIGN_OR_RETURN(std::string owner, context_->auth->Owner(*call));
    if (request->snapshot().empty()) {
      return absl::InvalidArgumentError(
          "no snapshot: pass the bytes ExportSession returned");
    }
    ASSIGN_OR_RETURN(auto session, server::CreateSession(*context_, owner,
                                                         request->snapshot()));
    response->set_session_id(session->id());
    FillSessionInfo(*session, response->mutable_info());
    return absl::OkStatus();
  }();
  return Done(call, "ImportSession", status);
}

grpc::ServerUnaryReactor* MemoryQAService::Ask(
    grpc::CallbackServerContext* call, const v1::AskRequest* request,
    v1::AskResponse* response) {
  // A call has one default reactor: taken once, finished by the answer's
  // callback or below, never both.
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  std::shared_ptr<Session> session;
  std::shared_ptr<Lease> lease;
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(session,
                     FindSession(*context_, *call, request->session_id()));
    lease = std::make_shared<Lease>(session);
    RETURN_IF_ERROR(lease->status());
    const v1::Question& question = request->question();
    ASSIGN_OR_RETURN(int top_k, TopKOf(question, context_->limits.default_top_k,
                                       context_->limits));
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, QuestionIds(*session, question));
    ServerMetrics* metrics = context_->metrics;
    // The lease is held until the answer is in: the session's document
    // cannot change under the question.
    return session->Ask(
        std::move(ids), top_k,
        [reactor, response, metrics, lease, session,
         id = question.id()](absl::StatusOr<Answer> answer) mutable {
          if (answer.ok()) {
            FillAnswer(id, *answer, session->Progress().segments_processed,
                       response->mutable_answer());
          }
          // Released before the reply goes out: a client that calls again
          // on receipt must find the session free.
          lease.reset();
          const absl::Status status = answer.status();
          if (metrics != nullptr) {
            metrics->OnRequest("Ask", static_cast<int>(status.code()));
          }
          reactor->Finish(ToGrpcStatus(status));
        });
  }();
  if (!status.ok()) {
    lease.reset();  // before the reply: the session is free on receipt
    return Finish(reactor, "Ask", status);
  }
  return reactor;
}

grpc::ServerUnaryReactor* MemoryQAService::GetSession(
    grpc::CallbackServerContext* call, const v1::GetSessionRequest* request,
    v1::SessionInfo* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto session,
                     FindSession(*context_, *call, request->session_id()));
    FillSessionInfo(*session, response);
    return absl::OkStatus();
  }();
  return Done(call, "GetSession", status);
}

grpc::ServerUnaryReactor* MemoryQAService::ExportSession(
    grpc::CallbackServerContext* call, const v1::ExportSessionRequest* request,
    v1::ExportSessionResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto session,
                     FindSession(*context_, *call, request->session_id()));
    Lease lease(session);
    RETURN_IF_ERROR(lease.status());
    ASSIGN_OR_RETURN(SessionState state, session->Export());
    response->mutable_snapshot()->set_data(
        EncodeSnapshot(state, *context_->snapshot_key));
    response->mutable_snapshot()->set_segments_processed(
        state.segments_processed);
    return absl::OkStatus();
  }();
  return Done(call, "ExportSession", status);
}

grpc::ServerUnaryReactor* MemoryQAService::CloseSession(
    grpc::CallbackServerContext* call, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse* /*response*/) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto session,
                     FindSession(*context_, *call, request->session_id()));
    Lease lease(session);
    RETURN_IF_ERROR(lease.status());
    return context_->sessions->Close(session->id(), session->owner());
  }();
  return Done(call, "CloseSession", status);
}

grpc::ServerUnaryReactor* MemoryQAService::GetModelInfo(
    grpc::CallbackServerContext* call, const v1::GetModelInfoRequest*,
    v1::ModelInfo* response) {
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(context_->auth->Owner(*call).status());
    const ServedModel& model = *context_->model;
    response->set_name(model.name);
    response->set_fingerprint(model.fingerprint);
    response->set_segment_size(
        static_cast<int32_t>(model.config.rmt.segment_size));
    response->set_num_mem_tokens(
        static_cast<int32_t>(model.config.rmt.num_mem_tokens));
    response->set_hidden_size(static_cast<int32_t>(model.config.hidden_size));
    response->set_num_layers(
        static_cast<int32_t>(model.config.num_hidden_layers));
    response->set_vocab_size(
        static_cast<int32_t>(model.config.content_vocab_size()));
    for (const std::string& label : model.config.labels) {
      response->add_labels(label);
    }
    response->set_untrained(model.untrained);
    response->set_device(model.device);
    response->set_max_batch(context_->max_batch);
    return absl::OkStatus();
  }();
  return Done(call, "GetModelInfo", status);
}

}  // namespace rmt::server
