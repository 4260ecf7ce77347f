// SessionPersistence: keeps sessions in a shared SessionStore (dir: or
// redis://) so that another replica can continue a session whose replica was
// lost. The SessionManager owns it and calls it; with --session_store=memory
// there is none and sessions live only in the process, as before.
//
// The checkpoint rule (what is written when):
//   - while a stream (Converse, Ingest) feeds the session, every
//     `checkpoint_every_segments` segments: the stream takes the checkpoint
//     (the session holds later segments back until the memory after exactly
//     that many is copied) and hands the signed snapshot to SaveCheckpoint,
//     so a replica lost in the middle of a document loses at most that many
//     segments, which the client resends;
//   - when a keep-alive stream (Converse with keep_alive, Ingest) ends;
//   - from the reaper, for a session that no stream or call holds and that
//     has no work pending, when it was never written (a new or imported
//     session), when its last write was wanted but could not be done (work
//     was still pending, the store was down), or when it has processed at
//     least `checkpoint_every_segments` segments since its last write;
//   - at drain, every live session, after the streams have ended.
// A session that is closed, fails or expires is deleted from the store
// (shutting down deletes nothing: the sessions must survive it).
//
// An entry is the SHA-256 of the owner (32 bytes) and the signed snapshot
// (EncodeSnapshot): a restore by another owner answers NOT_FOUND, exactly as
// for an unknown id, and the store never holds a token. It expires
// `ttl` (--session_idle_ttl) after its last write.
//
// Threads: exports (the device-to-host copy), signing and every store write
// and delete run in order on the persistence's own writer thread, never on
// the engine's scheduler thread or a gRPC callback thread, so a slow store
// never holds up batching or snapshots. Restore reads (Load) run on the
// calling thread: they are the call's own work, bounded by the store's
// timeout. All methods are thread-safe.
#ifndef RMT_SERVER_SESSION_PERSISTENCE_H_
#define RMT_SERVER_SESSION_PERSISTENCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/background_worker.h"
#include "server/session.h"
#include "server/session_store.h"
#include "server/snapshot_codec.h"

namespace rmt::server {

enum class StoreRestoreResult { kOk, kNotFound, kError };

// Told about store operations (metrics).
class SessionStoreObserver {
 public:
  virtual ~SessionStoreObserver() = default;
  virtual void OnStoreWrite(bool ok) = 0;
  virtual void OnStoreRestore(StoreRestoreResult result) = 0;
  virtual void OnStoreDelete(bool ok) = 0;
};

struct SessionPersistenceOptions {
  // How long an entry lives after its last write (--session_idle_ttl).
  absl::Duration ttl = absl::Minutes(10);
  // Streams write their session every this many segments, and the reaper
  // an idle session that has processed this many since its last write
  // (--checkpoint_every_segments).
  int64_t checkpoint_every_segments = 64;
  // How often the reaper asks the store to drop expired entries.
  absl::Duration remove_expired_every = absl::Minutes(1);
};

class SessionPersistence {
 public:
  // `key` and `observer` (may be null) must outlive this object.
  SessionPersistence(std::unique_ptr<SessionStore> store,
                     const SnapshotKey* key, SessionStoreObserver* observer,
                     const SessionPersistenceOptions& options);
  // Runs the writes and deletes already asked for, then stops.
  ~SessionPersistence();

  // The state stored for `id`, if `owner` made it. NOT_FOUND (the message
  // the caller shows for any unknown session) when absent, deleted, being
  // deleted, or another owner's; UNAVAILABLE with a retry hint when the
  // store is down; DATA_LOSS for an entry that does not verify.
  absl::StatusOr<SessionState> Load(const std::string& id,
                                    const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether the store holds an entry for `id` (any owner's);
  // UNAVAILABLE when the store is down.
  absl::StatusOr<bool> Contains(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // A session that now lives here: `written` is true when the store already
  // holds its state (it was restored from there).
  void Track(const std::shared_ptr<Session>& session, bool written)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the session soon (a keep-alive stream ended).
  void SaveSoon(const std::shared_ptr<Session>& session)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes `snapshot` (EncodeSnapshot of the session's state after
  // `segments` segments), a checkpoint its stream took, soon.
  void SaveCheckpoint(const std::shared_ptr<Session>& session, int64_t segments,
                      std::string snapshot) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t checkpoint_every_segments() const {
    return options_.checkpoint_every_segments;
  }
  // The reaper's pass over the live sessions at `now`: writes those the
  // checkpoint rule names, and now and then drops expired entries.
  void OnReap(const std::vector<std::shared_ptr<Session>>& sessions,
              absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes every session given and returns when the writes are done.
  void SaveAllAndWait(const std::vector<std::shared_ptr<Session>>& sessions)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The session ended here: it is no longer written, and with
  // `delete_entry` (closed, failed) its entry goes too. An expired session's
  // entry is left to the store's own ttl: another replica may have taken the
  // session over since, and its entry must not vanish under it.
  void Forget(const std::string& id, bool delete_entry)
      ABSL_LOCKS_EXCLUDED(mu_);

  std::string Describe() const { return store_->Describe(); }

 private:
  struct Tracked {
    std::weak_ptr<Session> session;
    int64_t segments_written = 0;
    bool write_wanted = false;
    bool write_queued = false;
  };

  // Queues a write unless one is queued.
  void QueueWriteLocked(const std::string& id, std::shared_ptr<Session> session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writer thread: exports the (idle) session and writes it.
  void Write(const std::shared_ptr<Session>& session) ABSL_LOCKS_EXCLUDED(mu_);
  // Writer thread: puts one signed snapshot of the session, taken after
  // `segments` segments; false if the store refused it.
  bool Put(const Session& session, int64_t segments,
           const std::string& snapshot) ABSL_LOCKS_EXCLUDED(mu_);
  void Delete(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const std::unique_ptr<SessionStore> store_;
  const SnapshotKey* const key_;
  SessionStoreObserver* const observer_;
  const SessionPersistenceOptions options_;

  mutable absl::Mutex mu_;
  // Live sessions of this replica, by id.
  absl::flat_hash_map<std::string, Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  // Ids whose delete is queued: a restore must not bring them back.
  absl::flat_hash_map<std::string, int> deleting_ ABSL_GUARDED_BY(mu_);
  absl::Time last_remove_expired_ ABSL_GUARDED_BY(mu_);

  // Last: its thread runs tasks that use the fields above.
  BackgroundWorker writer_;
};

// The store entry of a snapshot made for `owner`, and back; DATA_LOSS for
// an entry too short to hold the digest, NOT_FOUND for another owner's.
std::string StoreEntry(const std::string& owner, absl::string_view snapshot);
absl::StatusOr<std::string> SnapshotOfEntry(const std::string& owner,
                                            absl::string_view entry);

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_PERSISTENCE_H_
