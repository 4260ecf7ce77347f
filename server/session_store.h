// SessionStore: where signed session snapshots live, so that a session
// survives the loss of the replica that served it.
//
// Values are opaque byte strings (EncodeSnapshot's output, up to a few MB)
// keyed by session id (32 lower-case hex digits, IsWellFormedSessionId). An
// entry lives until it is replaced, deleted or its ttl runs out; an expired
// entry reads as absent at once, and its space is reclaimed by the store
// itself (redis) or by RemoveExpired, which the server's reaper calls.
//
// Three stores, chosen by the --session_store spec (OpenSessionStore):
//   memory                  in-process map: a single replica, nothing to set
//                           up, lost with the process.
//   dir:PATH                one file per session under PATH, written
//                           atomically: survives restarts of one machine.
//   redis://HOST[:PORT][/DB] shared by every replica of a cluster; PORT 6379
//                           and DB 0 by default.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<SessionStore> store,
//                    OpenSessionStore("redis://redis:6379/0", {}));
//   RETURN_IF_ERROR(store->Put(id, EncodeSnapshot(state, key),
//                              absl::Minutes(10)));
//   ASSIGN_OR_RETURN(std::string bytes, store->Get(id));
//
// Errors, the same for every store:
//   INVALID_ARGUMENT  an id that is not 32 lower-case hex digits (refused
//                     before it can name a file or key), a ttl that is not
//                     positive and finite.
//   NOT_FOUND         no entry: never stored, deleted or expired.
//   DATA_LOSS         an entry exists but is not one the store wrote (a
//                     damaged file, a Redis key of another type): the
//                     session cannot be restored, retrying will not help.
//   UNAVAILABLE       the store cannot be reached (Redis down, refused,
//                     timed out; an I/O error on the directory); the
//                     message says what to check, and a retry may succeed.
//
// Thread-safety: every method of every store may be called from any thread;
// each store serialises internally what it must.
#ifndef RMT_SERVER_SESSION_STORE_H_
#define RMT_SERVER_SESSION_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rmt::server {

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Stores `bytes` under `id`, replacing any entry, to expire `ttl` from now.
  virtual absl::Status Put(const std::string& id, absl::string_view bytes,
                           absl::Duration ttl) = 0;
  // The bytes last Put under `id`; NOT_FOUND when absent or expired.
  virtual absl::StatusOr<std::string> Get(const std::string& id) = 0;
  // Removes the entry; OK when there is none.
  virtual absl::Status Delete(const std::string& id) = 0;
  // Deletes the expired entries (dir: also damaged files and temp files a
  // crash left behind) and answers how many went. Redis expires keys itself,
  // so there it does nothing and answers 0.
  virtual absl::StatusOr<int> RemoveExpired() = 0;
  // For logs: "memory", "dir:/var/lib/rmt", "redis://10.0.0.5:6379/0".
  // Never holds a credential.
  virtual std::string Describe() const = 0;
};

struct SessionStoreOptions {
  // The time against which memory: and dir: entries expire; tests inject a
  // fake clock. Redis keeps time itself (SET ... PX), so redis: ignores it.
  std::function<absl::Time()> clock = [] { return absl::Now(); };

  // redis: bounds on connecting and on each command, so that a Redis that is
  // down or hung costs a call at most about this long, never a hang.
  absl::Duration redis_connect_timeout = absl::Seconds(1);
  absl::Duration redis_command_timeout = absl::Seconds(1);
  // redis: keys are this prefix and the session id, so that one Redis can
  // hold other data (or other deployments, with another prefix).
  std::string redis_key_prefix = "rmt:session:";

  // dir: a temp file older than this is the leftover of a crashed Put (a
  // live one exists for the milliseconds of one write) and RemoveExpired
  // deletes it.
  absl::Duration dir_stale_temp_age = absl::Hours(1);
};

// A parsed --session_store value.
struct SessionStoreSpec {
  enum class Kind { kMemory, kDir, kRedis };
  Kind kind = Kind::kMemory;
  std::string path;  // kDir: as written; relative to the working directory
                     // at OpenSessionStore if not absolute.
  std::string host;  // kRedis
  int port = 6379;   // kRedis
  int db = 0;        // kRedis
};

// INVALID_ARGUMENT naming `spec` and the accepted forms for anything but
// "memory", "dir:PATH" (PATH non-empty) and "redis://HOST[:PORT][/DB]"
// (no user or password: AUTH is not supported yet).
absl::StatusOr<SessionStoreSpec> ParseSessionStoreSpec(absl::string_view spec);

// Parses `spec` and opens the store. dir: creates PATH (mode 0700) if
// missing; redis: connects and selects DB now, so that a wrong address fails
// at startup (UNAVAILABLE) rather than at the first session; later losses of
// the connection are repaired on the next call.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenSessionStore(
    absl::string_view spec, const SessionStoreOptions& options);

// The checks every store applies to its arguments (INVALID_ARGUMENT).
absl::Status CheckSessionStoreId(const std::string& id);
absl::Status CheckSessionStoreTtl(absl::Duration ttl);

}  // namespace rmt::server

#endif  // RMT_SERVER_SESSION_STORE_H_
