// Bearer-token authentication.
//
// With a tokens file (one token per line; blank lines and lines starting
// with '#' ignored), every call must carry `authorization: Bearer TOKEN`
// with one of them, else UNAUTHENTICATED; the token is the owner of the
// sessions the call makes. Without a file every call is anonymous (owner "").
//
// A presented token is checked against every configured one in time that
// does not depend on where they differ, and refusals are logged (the peer
// and the reason, never the token) at most once per `failure_log_interval`,
// so a client guessing tokens can neither time its way to one nor flood the
// log.
//
//   ASSIGN_OR_RETURN(Authenticator auth, Authenticator::Load(path));
//   ASSIGN_OR_RETURN(std::string owner, auth.Owner(call));
//
// Thread-safety: all const methods are thread-safe (the tokens are
// immutable after Load; the failure log has a lock of its own).
#ifndef RMT_SERVER_AUTH_H_
#define RMT_SERVER_AUTH_H_

#include <grpcpp/server_context.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace rmt::server {

// One logged refusal.
struct AuthFailure {
  std::string peer;    // as gRPC names it, e.g. "ipv4:10.0.0.7:51234"
  std::string reason;  // e.g. "unknown bearer token"
  int64_t suppressed;  // refusals not logged since the previous line
};

struct AuthOptions {
  // At most one failure line per interval: a client hammering bad tokens
  // must not turn the log into the bottleneck (or bury everything else).
  absl::Duration failure_log_interval = absl::Seconds(1);
  // The clock the interval is measured on; tests step their own.
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // Where failure lines go; empty: LogEvent("auth_failed", ...), "warning".
  std::function<void(const AuthFailure&)> log_failure;
};

class Authenticator {
 public:
  // Empty path: no authentication. INVALID_ARGUMENT for a file without
  // tokens, NOT_FOUND for a missing one.
  static absl::StatusOr<Authenticator> Load(const std::string& path,
                                            AuthOptions options = {});
  Authenticator(Authenticator&&) noexcept;
  Authenticator& operator=(Authenticator&&) noexcept;
  ~Authenticator();

  bool enabled() const { return !tokens_.empty(); }

  // The caller's owner name, or UNAUTHENTICATED.
  absl::StatusOr<std::string> Owner(
      const grpc::CallbackServerContext& context) const;

  // Owner's core: `authorization` is the metadata value, absent when the
  // call has none; `peer` names the caller in the failure log.
  absl::StatusOr<std::string> Authenticate(
      absl::optional<absl::string_view> authorization,
      absl::string_view peer) const;

 private:
  using Digest = std::array<unsigned char, 32>;  // HMAC-SHA-256
  class FailureLog;

  explicit Authenticator(AuthOptions options);
  Digest DigestOf(absl::string_view token) const;
  // Logs (or counts) a refusal and returns it as UNAUTHENTICATED.
  absl::Status Refuse(absl::string_view peer, absl::string_view reason,
                      absl::string_view message) const;

  // Constant after Load.
  std::vector<std::string> tokens_;
  std::vector<Digest> digests_;  // digests_[i] is DigestOf(tokens_[i])
  // Random per process: the digests compared depend on a secret, so a
  // caller cannot choose inputs whose digests share a prefix with a token's.
  std::array<unsigned char, 32> key_{};
  // Thread-safe on its own; a pointer so that Authenticator stays movable.
  std::unique_ptr<FailureLog> failures_;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_AUTH_H_
