// MemoryQAService: the rmt.v1.MemoryQA gRPC service (callback API).
//
// Converse and Ingest run in their own reactors (converse_reactor.h,
// ingest_reactor.h); the unary calls are here. No handler blocks: Ask
// finishes its reactor from the engine's answer callback.
//
// Thread-safety: handlers run concurrently on gRPC's threads; all shared
// state lives in the ServiceContext, whose parts are thread-safe.
#ifndef RMT_SERVER_SERVICE_H_
#define RMT_SERVER_SERVICE_H_

#include "rmt/v1/memory_qa.grpc.pb.h"
#include "server/service_context.h"

namespace rmt::server {

class MemoryQAService final : public v1::MemoryQA::CallbackService {
 public:
  // `context` must outlive the service.
  explicit MemoryQAService(const ServiceContext* context) : context_(context) {}

  grpc::ServerBidiReactor<v1::ConverseRequest, v1::ConverseResponse>* Converse(
      grpc::CallbackServerContext* call) override;
  grpc::ServerReadReactor<v1::IngestRequest>* Ingest(
      grpc::CallbackServerContext* call, v1::IngestResponse* response) override;

  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* call,
      const v1::CreateSessionRequest* request,
      v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* Ask(grpc::CallbackServerContext* call,
                                const v1::AskRequest* request,
                                v1::AskResponse* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* call,
                                       const v1::GetSessionRequest* request,
                                       v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* ExportSession(
      grpc::CallbackServerContext* call,
      const v1::ExportSessionRequest* request,
      v1::ExportSessionResponse* response) override;
  grpc::ServerUnaryReactor* ImportSession(
      grpc::CallbackServerContext* call,
      const v1::ImportSessionRequest* request,
      v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* CloseSession(
      grpc::CallbackServerContext* call, const v1::CloseSessionRequest* request,
      v1::CloseSessionResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* call,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

 private:
  // Finishes `call` with `status`, counting it in the metrics.
  grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* call,
                                 const char* method,
                                 const absl::Status& status);
  // The same, for a call whose default reactor was already taken.
  grpc::ServerUnaryReactor* Finish(grpc::ServerUnaryReactor* reactor,
                                   const char* method,
                                   const absl::Status& status) const;

  const ServiceContext* const context_;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_SERVICE_H_
