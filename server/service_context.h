// What every RPC handler of the MemoryQA service shares: the model, the
// engine, the sessions, the snapshot key, authentication, metrics and limits.
// Everything here outlives the gRPC server that uses it.
#ifndef RMT_SERVER_SERVICE_CONTEXT_H_
#define RMT_SERVER_SERVICE_CONTEXT_H_

#include <grpcpp/server_context.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/engine.h"
#include "rmt/v1/memory_qa.pb.h"
#include "server/auth.h"
#include "server/background_worker.h"
#include "server/call_tracker.h"
#include "server/metrics.h"
#include "server/served_model.h"
#include "server/session.h"
#include "server/session_manager.h"
#include "server/snapshot_codec.h"

namespace rmt::server {

struct ServiceLimits {
  // A Converse or Ingest stream stops reading while its session has more
  // segments than this pending (gRPC flow control then slows the client).
  int max_pending_segments = 8;
  int64_t max_chunk_bytes = 1 << 20;
  int64_t max_chunk_tokens = 1 << 18;
  int default_top_k = 1;
  int max_top_k = 100;
  // Question ids come back in answers; they are short UTF-8 labels.
  int64_t max_question_id_bytes = 256;
};

struct ServiceContext {
  const ServedModel* model = nullptr;
  Engine* engine = nullptr;
  SessionManager* sessions = nullptr;
  const SnapshotKey* snapshot_key = nullptr;
  const Authenticator* auth = nullptr;
  ServerMetrics* metrics = nullptr;  // may be null
  // Snapshot exports run here, off the engine's and gRPC's threads.
  BackgroundWorker* worker = nullptr;
  CallTracker* calls = nullptr;  // streams in flight; may be null
  ServiceLimits limits;
  int max_batch = 0;  // reported by GetModelInfo
};

// The session a call names: in its message, or in x-session-id metadata.
// INVALID_ARGUMENT when they disagree or neither is given.
absl::StatusOr<std::string> SessionIdOf(const grpc::CallbackServerContext& call,
                                        const std::string& in_message);

// Checks a chunk's size; INVALID_ARGUMENT with the limit when too big.
absl::Status CheckChunk(const v1::Chunk& chunk, const ServiceLimits& limits);

// Feeds one chunk into a session (text or ids).
absl::StatusOr<int> FeedChunk(Session& session, const v1::Chunk& chunk);

// Question ids from text or ids; INVALID_ARGUMENT for bad ones.
absl::StatusOr<std::vector<int32_t>> QuestionIds(const Session& session,
                                                 const v1::Question& question);

// The question's top_k, or `default_top_k` when it sets none;
// INVALID_ARGUMENT outside [0, max_top_k] or for an id that is not short
// UTF-8 (it is echoed in the answer).
absl::StatusOr<int> TopKOf(const v1::Question& question, int default_top_k,
                           const ServiceLimits& limits);

// INVALID_ARGUMENT naming `field` unless `bytes` is valid UTF-8. Text
// fields of requests are `bytes` on the wire so that bad UTF-8 reaches this
// check (and a clear error) instead of failing inside protobuf's parser.
absl::Status CheckUtf8(absl::string_view bytes, absl::string_view field);

void FillProgress(const SessionProgress& progress, v1::Progress* out);
void FillAnswer(const std::string& question_id, const Answer& answer,
                int64_t segments_seen, v1::Answer* out);

// A new session, restored from `snapshot` when it is non-empty, under
// `id` when the client chose one (else the server draws it).
absl::StatusOr<std::shared_ptr<Session>> CreateSession(
    const ServiceContext& context, const std::string& owner,
    const std::string& snapshot, const std::string& id = "");

}  // namespace rmt::server

#endif  // RMT_SERVER_SERVICE_CONTEXT_H_
