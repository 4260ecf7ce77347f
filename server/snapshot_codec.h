// Signed session snapshots.
//
// A snapshot is a frame: "RMTSNAP2", the payload's length (8 bytes, little
// endian), the payload (a serialized SnapshotPayload, proto/rmt/v1/
// snapshot.proto) and the HMAC-SHA256 of everything before it under the
// server's key. The signature covers every byte, so only a server holding
// the same key accepts it and nothing can be added, removed or changed:
// clients carry snapshots without being able to forge memories or counters.
//
//   ASSIGN_OR_RETURN(SnapshotKey key, SnapshotKey::Load(path, getenv(...)));
//   std::string bytes = EncodeSnapshot(state, key);
//   ASSIGN_OR_RETURN(SessionState restored, DecodeSnapshot(bytes, key));
//
// Thread-safety: SnapshotKey is immutable; the functions are pure.
#ifndef RMT_SERVER_SNAPSHOT_CODEC_H_
#define RMT_SERVER_SNAPSHOT_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/session.h"

namespace rmt::server {

class SnapshotKey {
 public:
  // From the file at `path` if given (its bytes, trailing newline removed),
  // else from `env_value` if non-empty, else a random per-process key
  // (snapshots then die with the process; a warning is logged).
  // INVALID_ARGUMENT for a key shorter than 16 bytes.
  static absl::StatusOr<SnapshotKey> Load(const std::string& path,
                                          const char* env_value);
  static absl::StatusOr<SnapshotKey> FromBytes(std::string key);
  static SnapshotKey Random();

  const std::string& bytes() const { return key_; }

 private:
  explicit SnapshotKey(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

std::string EncodeSnapshot(const SessionState& state, const SnapshotKey& key);

// INVALID_ARGUMENT for bytes that are not a snapshot or whose signature does
// not verify (tampered, truncated, extended, or signed with another key).
absl::StatusOr<SessionState> DecodeSnapshot(const std::string& bytes,
                                            const SnapshotKey& key);

}  // namespace rmt::server

#endif  // RMT_SERVER_SNAPSHOT_CODEC_H_
