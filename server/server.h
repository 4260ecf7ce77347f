// RmtServer: the whole rmt-server process minus flag parsing: loads the
// model, starts the engine, the sessions, the gRPC server (MemoryQA, health,
// reflection) and the metrics endpoint; drains on request.
//
//   ASSIGN_OR_RETURN(auto server, RmtServer::Start(options));
//   ... server->port() ...
//   server->Drain(absl::Seconds(30));   // on SIGTERM
//
// Thread-safety: Drain may be called from any thread, once.
#ifndef RMT_SERVER_SERVER_H_
#define RMT_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/engine.h"
#include "server/served_model.h"
#include "server/service_context.h"
#include "server/session_manager.h"
#include "server/session_store.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace rmt::server {

struct ServerOptions {
  ServedModelOptions model;
  // "host:port"; port 0 lets the OS choose (see port()).
  std::string listen = "0.0.0.0:50051";
  // Empty: no metrics endpoint.
  std::string metrics_listen;
  EngineOptions engine;
  SessionManagerOptions sessions;
  ServiceLimits limits;
  std::string snapshot_key_file;
  // Used when snapshot_key_file is empty; empty too: a random key.
  std::string snapshot_key;
  // PEM files; both or neither.
  std::string tls_cert;
  std::string tls_key;
  std::string auth_tokens_file;
  // --session_store: "memory" (sessions live only in this process), or
  // "dir:PATH" / "redis://HOST[:PORT][/DB]", where sessions are checkpointed
  // so that another replica sharing the store and the snapshot key can
  // continue them (session_persistence.h). A shared store needs a shared
  // snapshot key (snapshot_key_file or snapshot_key / $RMT_SNAPSHOT_KEY).
  std::string session_store = "memory";
  // An idle session is written again once it has processed this many
  // segments since its last write (>= 1).
  int64_t checkpoint_every_segments = 64;
  SessionStoreOptions session_store_options;
};

class RmtServer {
 public:
  static absl::StatusOr<std::unique_ptr<RmtServer>> Start(
      const ServerOptions& options);
  // Drains (with no grace) if Drain was not called.
  ~RmtServer();

  int port() const { return port_; }
  int metrics_port() const;
  const ServedModel& model() const { return model_; }
  SessionManager& sessions() { return *sessions_; }
  const Engine& engine() const { return *engine_; }
  ServerMetrics& metrics() { return *metrics_; }

  // Health goes NOT_SERVING and new sessions get UNAVAILABLE while the
  // listener stays open; streams in flight get up to `grace` to finish
  // (then they are cancelled). Then, with a shared session store, every
  // live session is written to it. Returns when both are done.
  void Drain(absl::Duration grace);

 private:
  RmtServer() = default;

  ServedModel model_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<SnapshotKey> snapshot_key_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<BackgroundWorker> worker_;
  std::unique_ptr<CallTracker> calls_;
  ServiceContext context_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  bool drained_ = false;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_SERVER_H_
