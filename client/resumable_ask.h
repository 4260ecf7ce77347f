// ResumableAsk: one document and its questions through one Converse
// conversation that survives the loss of its replica.
//
// The session is opened keep-alive, so a broken stream never throws the
// document away on the server, and closed at the end unless the caller keeps
// it. When the stream breaks with UNAVAILABLE (the replica was lost or is
// draining, the session store is briefly down), the conversation waits a
// backoff and reconnects with the session id, in `open` and in x-session-id
// metadata, so a load balancer that hashes on it routes to a live replica,
// which restores the session from the shared store (--session_store). The
// restored session says how much of the document it holds
// (progress.bytes_received); the rest is sent again from exactly there, then
// the questions not answered yet. Nothing is counted twice: the server's
// checkpoint holds the tokenizer's carry-over and every segment it had cut.
//
// A session lost before its first checkpoint (NOT_FOUND on resume) starts
// over: a new session, the document from byte 0.
#ifndef RMT_CLIENT_RESUMABLE_ASK_H_
#define RMT_CLIENT_RESUMABLE_ASK_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/client_common.h"
#include "rmt/v1/memory_qa.grpc.pb.h"

namespace rmt::client {

struct AskOptions {
  // Continue this session (kept alive earlier): the document is what comes
  // after what it holds. Empty: a new session.
  std::string session_id;
  int top_k = 3;
  size_t chunk_bytes = 16 * 1024;
  // Leave the session open at the end (continue it later by id).
  bool keep_session = false;
  // Tries to reconnect after a broken stream (backoff doubling from
  // first_backoff up to max_backoff); then the call fails.
  int max_resumes = 8;
  absl::Duration first_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// One broken stream and how the conversation went on.
struct ResumeEvent {
  grpc::Status broken;  // how the stream ended
  absl::Time broken_at;
  // Document bytes written before the break, and the tokens received and
  // segments processed the server had reported (its last progress) by
  // then.
  int64_t bytes_sent = 0;
  int64_t tokens_reported = 0;
  int64_t segments_reported = 0;
  absl::Time resumed_at;
  // What the restored session held: the document is resent from what it
  // holds (restored.bytes_received(), less what a continued session held
  // before this document).
  v1::Progress restored;
  // The document was sent again from this byte on.
  int64_t resent_from = 0;
  // The session was gone (no checkpoint): a new one, from byte 0.
  bool started_over = false;
};

// Told what happens, on the calling thread or the stream's reader thread,
// one call at a time.
class AskObserver {
 public:
  virtual ~AskObserver() = default;
  virtual void OnOpened(const std::string& /*session_id*/) {}
  virtual void OnProgress(const v1::Progress& /*progress*/) {}
  // The stream broke; the next try starts after `backoff`.
  virtual void OnBroken(const grpc::Status& /*status*/,
                        absl::Duration /*backoff*/) {}
  virtual void OnResumed(const ResumeEvent& /*event*/) {}
};

struct AskResult {
  grpc::Status status;
  std::string session_id;
  std::vector<v1::Answer> answers;  // in the order of the questions
  v1::Progress progress;            // the last the server sent
  std::vector<ResumeEvent> resumes;
  // The session could not be closed at the end (the answers stand).
  grpc::Status close_status;
};

// Question i has id std::to_string(i). `observer` may be null.
AskResult ResumableAsk(v1::MemoryQA::Stub& stub, const ChannelOptions& channel,
                       absl::string_view document,
                       const std::vector<std::string>& questions,
                       const AskOptions& options, AskObserver* observer);

}  // namespace rmt::client

#endif  // RMT_CLIENT_RESUMABLE_ASK_H_
