#include "server/auth.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rmt::server {

absl::StatusOr<Authenticator> Authenticator::Load(const std::string& path) {
  Authenticator auth;
  if (path.empty()) return auth;
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read the auth tokens file"));
  }
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token[0] == '#') continue;
    auth.tokens_.insert(std::string(token));
  }
  if (auth.tokens_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no tokens (one bearer token per line)"));
  }
  return auth;
}

Authenticator Authenticator::FromTokens(
    absl::flat_hash_set<std::string> tokens) {
  Authenticator auth;
  auth.tokens_ = std::move(tokens);
  return auth;
}

absl::StatusOr<std::string> Authenticator::Owner(
    const grpc::CallbackServerContext& context) const {
  if (!enabled()) return std::string();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this server requires `authorization: Bearer TOKEN` metadata");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be `Bearer TOKEN`");
  }
  std::string token(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
  if (!tokens_.contains(token)) {
    return absl::UnauthenticatedError("unknown bearer token");
  }
  return token;
}

}  // namespace rmt::server
