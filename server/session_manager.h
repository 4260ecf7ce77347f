// SessionManager: creates, finds, expires and closes sessions.
//
// Session ids are 128 random bits from the operating system's CSPRNG
// (OpenSSL RAND_bytes), written as 32 hex digits; never sequential. A session
// belongs to the owner (the bearer token) that made it: Find with another
// owner answers NOT_FOUND, exactly as for an id that never existed.
//
// A reaper thread offloads the memories of sessions idle for offload_after
// to host memory and closes sessions idle for idle_ttl. Idle means no client
// message and no finished work for that long, whether or not a stream holds
// the session: a silent stream cannot pin a session (and its slot) forever;
// its holder hears the expiry as ABORTED and ends the stream.
//
// With a SessionPersistence (--session_store dir: or redis://), sessions
// are also kept in the shared store (see session_persistence.h for when):
// Find restores a session this replica does not hold from the store under
// the same id, and Close deletes the entry.
//
// Thread-safety: all methods are thread-safe.
#ifndef RMT_SERVER_SESSION_MANAGER_H_
#define RMT_SERVER_SESSION_MANAGER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/engine.h"
#include "server/served_model.h"
#include "server/session.h"
#include "server/session_persistence.h"

namespace rmt::server {

enum class SessionOutcome { kClosed, kExpired, kFailed };

// Told about session lifetimes (metrics).
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  virtual void OnSessionOpened() = 0;
  virtual void OnSessionEnded(SessionOutcome outcome) = 0;
  // Called by the reaper every reap_interval.
  virtual void OnTick() {}
};

struct SessionManagerOptions {
  int max_sessions = 1024;
  absl::Duration idle_ttl = absl::Minutes(10);
  // Idle sessions' memories move to host memory after this long.
  absl::Duration offload_after = absl::Seconds(30);
  absl::Duration reap_interval = absl::Seconds(1);
  // Segments of one session queued in the engine at once (the rest wait in
  // the session): one session never floods the engine's queue.
  int max_segments_in_engine = 8;
};

class SessionManager {
 public:
  // `engine`, `model`, `observer` and `listener` (may be null) must outlive
  // the manager. `persistence` (may be null: sessions live only here).
  SessionManager(const SessionManagerOptions& options, Engine* engine,
                 const ServedModel* model, SessionObserver* observer,
                 SessionListener* listener,
                 std::unique_ptr<SessionPersistence> persistence = nullptr);
  // Stops the reaper, finishes the store writes asked for and closes every
  // session (their store entries stay: shutting down is not closing).
  ~SessionManager();

  // UNAVAILABLE while draining; RESOURCE_EXHAUSTED at max_sessions (or when
  // the engine has no memory slot left even after offloading).
  absl::StatusOr<std::shared_ptr<Session>> Create(const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A new session under `id`, which the client drew (so that a load
  // balancer hashing it routes the first call like the later ones).
  // INVALID_ARGUMENT for a malformed id; ALREADY_EXISTS when a live or
  // stored session has it; UNAVAILABLE when the store cannot say.
  absl::StatusOr<std::shared_ptr<Session>> CreateWithId(
      const std::string& id, const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);
  // INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one.
  // With persistence, a session not held here is restored from the store
  // under its id (the store's errors: SessionPersistence::Load; also
  // UNAVAILABLE while draining and RESOURCE_EXHAUSTED as for Create).
  absl::StatusOr<std::shared_ptr<Session>> Find(const std::string& id,
                                                const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Closes the session: its queued work fails with CANCELLED.
  absl::Status Close(const std::string& id, const std::string& owner,
                     SessionOutcome outcome = SessionOutcome::kClosed)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A keep-alive stream on `session` ended: write it to the store soon (no-op
  // without persistence).
  void SaveSoon(const std::shared_ptr<Session>& session)
      ABSL_LOCKS_EXCLUDED(mu_);
  // How many segments a stream reads between the checkpoints it writes to
  // the store; 0 without persistence (streams then take none).
  int64_t store_checkpoint_every() const;
  // Writes a checkpoint a stream took: `snapshot` (EncodeSnapshot) holds
  // the session after `segments` segments.
  void SaveCheckpoint(const std::shared_ptr<Session>& session, int64_t segments,
                      std::string snapshot) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes every live session to the store and waits for the writes (no-op
  // without persistence). For drain, once the streams have ended: a kept
  // session may still be reading what its stream sent, so each gets until
  // `deadline` to finish first.
  void SaveAll(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // New sessions get UNAVAILABLE from now on.
  void StartDraining() ABSL_LOCKS_EXCLUDED(mu_);
  bool draining() const ABSL_LOCKS_EXCLUDED(mu_);
  int size() const ABSL_LOCKS_EXCLUDED(mu_);

  // One pass of the reaper at time `now` (tests call it directly).
  void Reap(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::string NewId() const;
  // A new session `id` in the map, with a slot; UNAVAILABLE while draining,
  // RESOURCE_EXHAUSTED when full.
  absl::StatusOr<std::shared_ptr<Session>> CreateLocked(
      const std::string& id, const std::string& owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<Session>> Restore(const std::string& id,
                                                   const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<Session>> All() const ABSL_LOCKS_EXCLUDED(mu_);
  void ReaperLoop() ABSL_LOCKS_EXCLUDED(mu_);
  bool StopRequested() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_;
  }

  // Constant after construction.
  const SessionManagerOptions options_;
  Engine* const engine_;
  const ServedModel* const model_;
  SessionObserver* const observer_;
  SessionListener* const listener_;
  // Null without a shared store. Reset (its writes finished) before the
  // sessions' slots close.
  std::unique_ptr<SessionPersistence> persistence_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

// True for 32 lower-case hex digits.
bool IsWellFormedSessionId(const std::string& id);

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_MANAGER_H_
