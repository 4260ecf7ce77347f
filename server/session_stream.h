// SessionStream: the one core of the two streaming RPCs (Converse and
// Ingest): it holds the session's lease, feeds it the client's messages,
// paces reading, writes responses and decides when and how the call ends.
// The gRPC reactors (converse_reactor.cc, ingest_reactor.cc) only parse
// their messages and forward gRPC's events here.
//
// Lifecycle, as an explicit state:
//   kReading    the client may send more (before and after the session is
//               attached)
//   kHalfClosed the client is done; the stream waits for the work it sent
//               (segments, answers, a snapshot) and then ends with OK
//   kEnding     the final status is chosen; the write in flight completes
//   kFinished   Finish was called; nothing more happens
//
// Pacing: the next message is read only while the session has at most
// max_pending_segments segments pending and few responses wait to be
// written. A message adds at most one chunk, so a stream holds at most
// max_pending_segments * segment_size + max_chunk_tokens token ids plus one
// chunk of text, whatever the client sends; gRPC flow control slows the
// rest.
//
// Checkpoints: for the client (Converse: at every multiple of
// snapshot_every_segments and on request) and for the session store (every
// --checkpoint_every_segments, when the server has one), the session holds
// later segments back until the memory is exported and the next checkpoint
// is set, so the engine cannot pass it first; the export
// (device-to-host copy and signature) runs on the background worker, never
// on the engine's scheduler thread. One export serves every purpose wanted
// at or before its point: the client gets a `snapshot`, the store a write.
//
// Threads: gRPC's callbacks, the engine's scheduler thread (session events)
// and the background worker all call in. Pump decides under mu_ and starts
// gRPC operations outside it, one Pump at a time, so Finish never races a
// read or write being started. The stream is shared: the reactor owns it
// until OnDone and events may arrive later; they then find kFinished.
#ifndef RMT_SERVER_SESSION_STREAM_H_
#define RMT_SERVER_SESSION_STREAM_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rmt/v1/memory_qa.pb.h"
#include "server/service_context.h"
#include "server/session.h"

namespace rmt::server {

class SessionStream final : public SessionWatcher,
                            public std::enable_shared_from_this<SessionStream> {
 public:
  // The gRPC side of the stream. Called from Pump, one call at a time and
  // never under the stream's lock.
  class Transport {
   public:
    virtual ~Transport() = default;
    virtual void StartNextRead() = 0;
    // `response` stays valid until the write completes (Converse only).
    virtual void StartResponseWrite(const v1::ConverseResponse* response) = 0;
    // `progress`: the session's at the end (nullptr without a session).
    virtual void FinishCall(const grpc::Status& status,
                            const SessionProgress* progress) = 0;
  };

  struct Options {
    const char* method = "";        // for metrics and logs
    bool writes_responses = false;  // Converse: opened, progress, answers
  };

  // What `open` asks of a stream.
  struct Settings {
    bool keep_alive = false;  // keep the session when the stream ends
    int64_t snapshot_every_segments = 0;
    int default_top_k = 1;
    bool resumed = false;
  };

  // `context` must outlive the stream; `transport` until TransportGone.
  SessionStream(const ServiceContext* context, Transport* transport,
                Options options);
  ~SessionStream() override;

  // Starts the first read (or ends a call that already failed).
  void Start() ABSL_LOCKS_EXCLUDED(mu_);

  // --- Called by the reactor's read path, one message at a time.
  bool has_session() const ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the session's lease; FAILED_PRECONDITION if another holds it.
  // Converse also sends `opened`.
  absl::Status Attach(std::shared_ptr<Session> session,
                      const Settings& settings) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FeedChunk(const v1::Chunk& chunk) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Ask(const v1::Question& question) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RequestSnapshot() ABSL_LOCKS_EXCLUDED(mu_);
  // Called by the reactor before it handles a message: false when the
  // stream is ending (the message is dropped). ReadDone ends the handling.
  bool BeginMessage() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the call with `status` (the first failure wins).
  void Fail(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // --- gRPC's events, forwarded by the reactor.
  // A message was handled (`more`), or the client half-closed.
  void ReadDone(bool more) ABSL_LOCKS_EXCLUDED(mu_);
  void WriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void Cancelled() ABSL_LOCKS_EXCLUDED(mu_);
  // The reactor is being deleted (OnDone).
  void TransportGone() ABSL_LOCKS_EXCLUDED(mu_);

  // --- SessionWatcher (the engine's scheduler thread: quick).
  void OnSessionProgress() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnCheckpointReady() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnSessionFailed(const absl::Status& why) override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class State { kReading, kHalfClosed, kEnding, kFinished };
  // The snapshot in progress, if any:
  //   kNone -> kWaiting (the session holds segments back) -> kReady (the
  //   memory is at the checkpoint) -> kExporting (on the background
  //   worker) -> kNone. A checkpoint already reached skips kWaiting.
  enum class Checkpoint { kNone, kWaiting, kReady, kExporting };
  // Who wants a checkpoint (bits of checkpoints_wanted_'s values).
  enum Purpose : int { kForClient = 1, kForStore = 2 };

  // What one round of Pump starts, decided under mu_.
  struct Actions {
    bool read = false;
    const v1::ConverseResponse* write = nullptr;
    bool export_checkpoint = false;
    bool finish = false;
    grpc::Status status;
  };

  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  Actions DecideLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the session for the next wanted checkpoint, if none is pending.
  absl::Status RequestNextCheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The period of `purpose`'s checkpoints (0: only on request).
  int64_t EveryLocked(Purpose purpose) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wants `purpose`'s next periodic checkpoint after `segments`.
  void WantNextLocked(Purpose purpose, int64_t segments)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Background worker: copies and signs the checkpoint, queues it.
  void ExportCheckpoint() ABSL_LOCKS_EXCLUDED(mu_);
  // Gives the lease back and closes the session unless it is kept.
  void ReleaseSession(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const ServiceContext* const context_;
  const Options options_;

  mutable absl::Mutex mu_;
  Transport* transport_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kReading;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  Settings settings_ ABSL_GUARDED_BY(mu_);
  // gRPC operations in flight (one of each at most).
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // One Pump at a time; a caller that finds one running asks it to go on.
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::ConverseResponse> outbox_ ABSL_GUARDED_BY(mu_);
  v1::ConverseResponse write_buffer_ ABSL_GUARDED_BY(mu_);
  // Progress changed since the last progress response (coalesced).
  bool progress_dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool final_progress_sent_ ABSL_GUARDED_BY(mu_) = false;
  // Checkpoints still to take: segment count -> Purpose bits, smallest
  // first; the smallest is the one the session holds segments back for.
  std::map<int64_t, int> checkpoints_wanted_ ABSL_GUARDED_BY(mu_);
  Checkpoint checkpoint_ ABSL_GUARDED_BY(mu_) = Checkpoint::kNone;
  int64_t checkpoint_at_ ABSL_GUARDED_BY(mu_) = 0;  // while not kNone
  bool session_released_ ABSL_GUARDED_BY(mu_) = false;
  // The read path is inside a message handler; a release meanwhile waits.
  bool handling_message_ ABSL_GUARDED_BY(mu_) = false;
  bool release_deferred_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status deferred_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_STREAM_H_
