// The directory SessionStore (--session_store=dir:PATH): one file per
// session under PATH, so that sessions survive a restart of the server on
// the same machine. See session_store.h for the contract.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<SessionStore> store,
//                    OpenDirSessionStore("/var/lib/rmt/sessions", {}));
//
// A file is named by the session id (ids are checked to be 32 hex digits, so
// no id can name a path outside PATH) and holds a small header (magic,
// expiry time, length) and the bytes. Put writes a hidden temp file,
// fsyncs it, renames it over the old one and fsyncs the directory: a reader
// or a crash sees the old entry or the new one, never a mixture. A file that
// does not parse reads as DATA_LOSS; temp files left by a crash are never
// read and RemoveExpired deletes them once older than dir_stale_temp_age.
//
// Thread-safety: thread-safe. Writing and reading files happens outside the
// lock; only rename and unlink are serialised, so that RemoveExpired cannot
// unlink an entry a concurrent Put has just replaced. That guarantee holds
// within one process: give each server process its own directory.
#ifndef RMT_SERVER_DIR_SESSION_STORE_H_
#define RMT_SERVER_DIR_SESSION_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/session_store.h"

namespace rmt::server {

// Creates `path` (mode 0700, parents too) if missing; a relative path is
// made absolute against the working directory now. UNAVAILABLE when the
// directory cannot be created or opened.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenDirSessionStore(
    const std::string& path, const SessionStoreOptions& options);

}  // namespace rmt::server

#endif  // RMT_SERVER_DIR_SESSION_STORE_H_
