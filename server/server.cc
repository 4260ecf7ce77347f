#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "model/file_util.h"
#include "model/status_macros.h"
#include "server/log.h"
#include "server/service.h"

namespace rmt::server {
namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together: give both or neither");
  }
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFileToString(options.tls_cert));
  ASSIGN_OR_RETURN(pair.private_key, ReadFileToString(options.tls_key));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

// Null for the memory store: sessions then live only in this process.
absl::StatusOr<std::unique_ptr<SessionPersistence>> OpenPersistence(
    const ServerOptions& options, const char* env_key, const SnapshotKey* key,
    SessionStoreObserver* observer) {
  ASSIGN_OR_RETURN(SessionStoreSpec spec,
                   ParseSessionStoreSpec(options.session_store));
  if (spec.kind == SessionStoreSpec::Kind::kMemory) return nullptr;
  if (options.checkpoint_every_segments < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint_every_segments is ", options.checkpoint_every_segments,
        "; it must be at least 1"));
  }
  if (options.snapshot_key_file.empty() &&
      (env_key == nullptr || *env_key == '\0')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--session_store=", options.session_store,
        " needs the same snapshot key on every replica: set "
        "--snapshot_key_file or $RMT_SNAPSHOT_KEY (a random per-process key "
        "would make every stored session unreadable elsewhere)"));
  }
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(options.session_store, options.session_store_options);
  if (!store.ok()) {
    return absl::Status(
        store.status().code(),
        absl::StrCat("cannot open --session_store=", options.session_store,
                     ": ", store.status().message()));
  }
  SessionPersistenceOptions persistence;
  persistence.ttl = options.sessions.idle_ttl;
  persistence.checkpoint_every_segments = options.checkpoint_every_segments;
  return std::make_unique<SessionPersistence>(*std::move(store), key, observer,
                                              persistence);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RmtServer>> RmtServer::Start(
    const ServerOptions& options) {
  std::unique_ptr<RmtServer> server(new RmtServer());
  ASSIGN_OR_RETURN(auto credentials, Credentials(options));
  ASSIGN_OR_RETURN(server->model_, LoadServedModel(options.model));
  server->metrics_ = std::make_unique<ServerMetrics>();
  if (!options.metrics_listen.empty()) {
    RETURN_IF_ERROR(server->metrics_->Expose(options.metrics_listen));
  }
  ASSIGN_OR_RETURN(server->engine_,
                   Engine::Create(server->model_.model, options.engine,
                                  server->metrics_.get()));
  server->metrics_->set_engine(server->engine_.get());
  server->metrics_->set_max_sessions(options.sessions.max_sessions);
  const char* env_key = options.snapshot_key.empty()
                            ? std::getenv("RMT_SNAPSHOT_KEY")
                            : options.snapshot_key.c_str();
  ASSIGN_OR_RETURN(SnapshotKey key,
                   SnapshotKey::Load(options.snapshot_key_file, env_key));
  server->snapshot_key_ = std::make_unique<SnapshotKey>(std::move(key));
  ASSIGN_OR_RETURN(Authenticator auth,
                   Authenticator::Load(options.auth_tokens_file));
  server->auth_ = std::make_unique<Authenticator>(std::move(auth));
  SessionManagerOptions sessions = options.sessions;
  sessions.max_segments_in_engine = options.limits.max_pending_segments;
  ASSIGN_OR_RETURN(
      std::unique_ptr<SessionPersistence> persistence,
      OpenPersistence(options, env_key, server->snapshot_key_.get(),
                      server->metrics_.get()));
  const std::string store =
      persistence == nullptr ? "memory" : persistence->Describe();
  server->sessions_ = std::make_unique<SessionManager>(
      sessions, server->engine_.get(), &server->model_, server->metrics_.get(),
      server->metrics_.get(), std::move(persistence));
  server->worker_ = std::make_unique<BackgroundWorker>();
  server->calls_ = std::make_unique<CallTracker>();

  ServiceContext& context = server->context_;
  context.model = &server->model_;
  context.engine = server->engine_.get();
  context.sessions = server->sessions_.get();
  context.snapshot_key = server->snapshot_key_.get();
  context.auth = server->auth_.get();
  context.metrics = server->metrics_.get();
  context.worker = server->worker_.get();
  context.calls = server->calls_.get();
  context.limits = options.limits;
  context.max_batch = options.engine.max_batch;
  server->service_ = std::make_unique<MemoryQAService>(&server->context_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  // Room for a chunk at the limit plus its framing.
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(
      INT32_MAX, options.limits.max_chunk_bytes * 2 +
                     options.limits.max_chunk_tokens * 8 + (1 << 16))));
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (address in use, or not an address)"));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  const ModelConfig& config = server->model_.config;
  LogEvent("server_started",
           {{"listen", options.listen},
            {"port", absl::StrCat(server->port_)},
            {"metrics_port", absl::StrCat(server->metrics_port())},
            {"model", server->model_.name},
            {"fingerprint", server->model_.fingerprint},
            {"untrained", server->model_.untrained ? "true" : "false"},
            {"device", server->model_.device},
            {"segment_size", absl::StrCat(config.rmt.segment_size)},
            // On a GPU, the math fallback instead of flash attention costs
            // several times the step.
            {"attention", server->model_.attention},
            {"max_batch", absl::StrCat(options.engine.max_batch)},
            {"max_sessions", absl::StrCat(options.sessions.max_sessions)},
            {"tls", options.tls_cert.empty() ? "false" : "true"},
            {"session_store", store},
            {"auth", server->auth_->enabled() ? "true" : "false"}});
  return server;
}

int RmtServer::metrics_port() const { return metrics_->port(); }

void RmtServer::Drain(absl::Duration grace) {
  if (drained_) return;
  drained_ = true;
  const absl::Time deadline = absl::Now() + grace;
  LogEvent("drain_started",
           {{"grace_s", absl::StrCat(absl::ToDoubleSeconds(grace))},
            {"sessions", absl::StrCat(sessions_->size())},
            {"streams", absl::StrCat(calls_->in_flight())}});
  // The listener stays open through the grace period: health checks answer
  // NOT_SERVING (load balancers and Kubernetes take the replica out), new
  // sessions get UNAVAILABLE, and the streams in flight go on to their end.
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  sessions_->StartDraining();
  metrics_->set_draining(true);
  const int64_t streams = calls_->in_flight();
  const bool idle = calls_->AwaitIdle(deadline);
  // Then the listener closes; calls still running past the grace period
  // are cancelled.
  grpc_server_->Shutdown(
      absl::ToChronoTime(idle ? absl::Now() + absl::Seconds(1) : absl::Now()));
  // Every stream has ended: what the sessions hold now is final here
  // (sessions still reading get until the grace ends, at least 5 s).
  sessions_->SaveAll(std::max(deadline, absl::Now() + absl::Seconds(5)));
  LogEvent("drain_finished", {{"sessions", absl::StrCat(sessions_->size())},
                              {"streams_at_start", absl::StrCat(streams)},
                              {"grace_exceeded", idle ? "false" : "true"}});
}

RmtServer::~RmtServer() {
  if (grpc_server_ != nullptr) Drain(absl::ZeroDuration());
  // Snapshot exports finish before the sessions they read go; sessions
  // close their slots before the engine stops.
  worker_.reset();
  sessions_.reset();
  engine_.reset();
}

}  // namespace rmt::server
