// The in-process SessionStore (--session_store=memory): a map guarded by a
// mutex. Nothing to set up; entries die with the process, so it serves a
// single replica. See session_store.h for the contract.
//
//   std::unique_ptr<SessionStore> store = NewMemorySessionStore({});
//
// Thread-safety: thread-safe. Values are shared immutable strings, so Get
// copies a multi-MB snapshot outside the lock.
#ifndef RMT_SERVER_MEMORY_SESSION_STORE_H_
#define RMT_SERVER_MEMORY_SESSION_STORE_H_

#include <memory>

#include "server/session_store.h"

namespace rmt::server {

std::unique_ptr<SessionStore> NewMemorySessionStore(
    const SessionStoreOptions& options);

}  // namespace rmt::server

#endif  // RMT_SERVER_MEMORY_SESSION_STORE_H_
