#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/log.h"

namespace rmt::server {

// Rate-limits the refusal log: the first refusal of an interval is written,
// the rest of that interval only counted into the next line written.
class Authenticator::FailureLog {
 public:
  explicit FailureLog(AuthOptions options) : options_(std::move(options)) {}

  void Record(absl::string_view peer, absl::string_view reason) {
    AuthFailure failure;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = options_.now();
      if (now - last_logged_ < options_.failure_log_interval) {
        ++suppressed_;
        return;
      }
      last_logged_ = now;
      failure.suppressed = suppressed_;
      suppressed_ = 0;
    }
    // Written outside the lock: other refusals only need the counters.
    failure.peer = std::string(peer);
    failure.reason = std::string(reason);
    if (options_.log_failure) {
      options_.log_failure(failure);
      return;
    }
    LogEvent("auth_failed",
             {{"peer", failure.peer},
              {"reason", failure.reason},
              {"suppressed", absl::StrCat(failure.suppressed)}},
             "warning");
  }

 private:
  const AuthOptions options_;
  absl::Mutex mu_;
  absl::Time last_logged_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

Authenticator::Authenticator(AuthOptions options)
    : failures_(std::make_unique<FailureLog>(std::move(options))) {}
Authenticator::Authenticator(Authenticator&&) noexcept = default;
Authenticator& Authenticator::operator=(Authenticator&&) noexcept = default;
Authenticator::~Authenticator() = default;

absl::StatusOr<Authenticator> Authenticator::Load(const std::string& path,
                                                  AuthOptions options) {
  Authenticator auth(std::move(options));
  if (path.empty()) return auth;
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read the auth tokens file"));
  }
  if (RAND_bytes(auth.key_.data(), static_cast<int>(auth.key_.size())) != 1) {
    return absl::InternalError("RAND_bytes failed (auth token key)");
  }
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token[0] == '#') continue;
    auth.tokens_.emplace_back(token);
    auth.digests_.push_back(auth.DigestOf(token));
  }
  if (auth.tokens_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no tokens (one bearer token per line)"));
  }
  return auth;
}

Authenticator::Digest Authenticator::DigestOf(absl::string_view token) const {
  Digest digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(),
       digest.data(), &length);
  return digest;
}

absl::Status Authenticator::Refuse(absl::string_view peer,
                                   absl::string_view reason,
                                   absl::string_view message) const {
  failures_->Record(peer, reason);
  return absl::UnauthenticatedError(message);
}

absl::StatusOr<std::string> Authenticator::Owner(
    const grpc::CallbackServerContext& context) const {
  if (!enabled()) return std::string();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  absl::optional<absl::string_view> authorization;
  if (it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return Authenticate(authorization, context.peer());
}

absl::StatusOr<std::string> Authenticator::Authenticate(
    absl::optional<absl::string_view> authorization,
    absl::string_view peer) const {
  if (!enabled()) return std::string();
  if (!authorization.has_value()) {
    return Refuse(
        peer, "no authorization metadata",
        "this server requires `authorization: Bearer TOKEN` metadata");
  }
  // RFC 6750: the scheme is case-insensitive and followed by one or more
  // spaces; surrounding whitespace is not part of the token.
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  constexpr absl::string_view kBearer = "Bearer";
  if (!absl::StartsWithIgnoreCase(value, kBearer) ||
      value.size() == kBearer.size() ||
      !absl::ascii_isspace(static_cast<unsigned char>(value[kBearer.size()]))) {
    return Refuse(peer, "not a bearer credential",
                  "the authorization metadata must be `Bearer TOKEN`");
  }
  const absl::string_view token =
      absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size()));
  // Every configured digest is compared, with no early exit, and each
  // comparison takes the same time wherever the digests differ: how long
  // this takes says nothing about how close the guess was.
  const Digest presented = DigestOf(token);
  size_t match = tokens_.size();
  for (size_t i = 0; i < digests_.size(); ++i) {
    const bool equal = CRYPTO_memcmp(presented.data(), digests_[i].data(),
                                     presented.size()) == 0;
    if (equal) match = i;
  }
  if (match == tokens_.size()) {
    return Refuse(peer, "unknown bearer token", "unknown bearer token");
  }
  return tokens_[match];
}

}  // namespace rmt::server
