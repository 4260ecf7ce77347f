#include "server/session_store.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/dir_session_store.h"
#include "server/memory_session_store.h"
#include "server/redis_session_store.h"
#include "server/session_manager.h"

namespace rmt::server {
namespace {

constexpr absl::string_view kRedisScheme = "redis://";

absl::Status BadSpec(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--session_store \"", spec, "\" is not understood (", why,
                   "); use memory, dir:PATH or redis://HOST[:PORT][/DB]"));
}

// Digits only (no sign, no spaces): SimpleAtoi alone accepts "+5" and " 5".
bool ParseDecimal(absl::string_view text, int min, int max, int* out) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return false;
  }
  *out = value;
  return true;
}

bool IsHostName(absl::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<SessionStoreSpec> ParseRedis(absl::string_view spec) {
  absl::string_view rest = spec.substr(kRedisScheme.size());
  if (absl::StrContains(rest, '@')) {
    return BadSpec(spec, "a user or password is not supported yet");
  }
  SessionStoreSpec parsed;
  parsed.kind = SessionStoreSpec::Kind::kRedis;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    if (!ParseDecimal(rest.substr(slash + 1), 0,
                      std::numeric_limits<int>::max(), &parsed.db)) {
      return BadSpec(spec, "DB after the '/' must be a number");
    }
    rest = rest.substr(0, slash);
  }
  if (size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    if (!ParseDecimal(rest.substr(colon + 1), 1, 65535, &parsed.port)) {
      return BadSpec(spec, "PORT must be a number from 1 to 65535");
    }
    rest = rest.substr(0, colon);
  }
  if (!IsHostName(rest)) {
    return BadSpec(spec, "HOST must be a name or an IPv4 address");
  }
  parsed.host = std::string(rest);
  return parsed;
}

}  // namespace

absl::StatusOr<SessionStoreSpec> ParseSessionStoreSpec(absl::string_view spec) {
  if (spec == "memory") return SessionStoreSpec{};
  if (absl::StartsWith(spec, "dir:")) {
    SessionStoreSpec parsed;
    parsed.kind = SessionStoreSpec::Kind::kDir;
    parsed.path = std::string(spec.substr(4));
    if (parsed.path.empty()) return BadSpec(spec, "dir: needs a PATH");
    return parsed;
  }
  if (absl::StartsWith(spec, kRedisScheme)) return ParseRedis(spec);
  return BadSpec(spec, "unknown kind of store");
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenSessionStore(
    absl::string_view spec, const SessionStoreOptions& options) {
  ASSIGN_OR_RETURN(SessionStoreSpec parsed, ParseSessionStoreSpec(spec));
  switch (parsed.kind) {
    case SessionStoreSpec::Kind::kMemory:
      return NewMemorySessionStore(options);
    case SessionStoreSpec::Kind::kDir:
      return OpenDirSessionStore(parsed.path, options);
    case SessionStoreSpec::Kind::kRedis:
      return OpenRedisSessionStore(parsed.host, parsed.port, parsed.db,
                                   options);
  }
  return absl::InternalError("unreachable: unknown SessionStoreSpec kind");
}

absl::Status CheckSessionStoreId(const std::string& id) {
  if (!IsWellFormedSessionId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("session store: \"", absl::CEscape(id.substr(0, 64)),
                     "\" is not a session id (32 lower-case hex digits)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSessionStoreTtl(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration() || ttl == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("session store: ttl must be positive and finite, not ",
                     absl::FormatDuration(ttl)));
  }
  return absl::OkStatus();
}

}  // namespace rmt::server
