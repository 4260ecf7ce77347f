// Bearer-token authentication.
//
// With a tokens file (one token per line; blank lines and lines starting
// with '#' ignored), every call must carry `authorization: Bearer TOKEN`
// with one of them, else UNAUTHENTICATED; the token is the owner of the
// sessions the call makes. Without a file every call is anonymous (owner "").
//
// Thread-safety: immutable after Load.
#ifndef RMT_SERVER_AUTH_H_
#define RMT_SERVER_AUTH_H_

#include <string>

#include <grpcpp/server_context.h>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace rmt::server {

class Authenticator {
 public:
  // Empty path: no authentication. INVALID_ARGUMENT for a file without
  // tokens, NOT_FOUND for a missing one.
  static absl::StatusOr<Authenticator> Load(const std::string& path);
  static Authenticator FromTokens(absl::flat_hash_set<std::string> tokens);

  bool enabled() const { return !tokens_.empty(); }
  // The caller's owner name, or UNAUTHENTICATED.
  absl::StatusOr<std::string> Owner(
      const grpc::CallbackServerContext& context) const;

 private:
  absl::flat_hash_set<std::string> tokens_;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_AUTH_H_
