// The Redis SessionStore (--session_store=redis://HOST[:PORT][/DB]): one
// Redis that every replica of a cluster shares, so that any replica can
// restore a session whose replica was lost. See session_store.h for the
// contract.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<SessionStore> store,
//                    OpenRedisSessionStore("redis", 6379, 0, {}));
//
// An entry is the key redis_key_prefix + id, written with SET ... PX ttl so
// that Redis itself expires it. One synchronous hiredis connection, with a
// timeout on connecting and on every command: a Redis that is down or hung
// costs a call at most about that long and answers UNAVAILABLE. After a
// failure the connection is dropped and the next call connects afresh; a
// call that finds its connection closed by the server (Redis restarted)
// reconnects and retries once at once, since SET, GET and DEL are
// idempotent. Host names are resolved on each connect, outside the timeout.
//
// Thread-safety: thread-safe. Calls share the one connection and are
// serialised on it, a few MB at a time; a pool can come when one connection
// is the bottleneck.
#ifndef RMT_SERVER_REDIS_SESSION_STORE_H_
#define RMT_SERVER_REDIS_SESSION_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/session_store.h"

namespace rmt::server {

// Connects and selects `db` now: UNAVAILABLE if Redis cannot be reached.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenRedisSessionStore(
    const std::string& host, int port, int db,
    const SessionStoreOptions& options);

}  // namespace rmt::server

#endif  // RMT_SERVER_REDIS_SESSION_STORE_H_
