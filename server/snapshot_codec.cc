#include "server/snapshot_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "model/file_util.h"
#include "model/status_macros.h"
#include "rmt/v1/snapshot.pb.h"
#include "server/log.h"

namespace rmt::server {
namespace {

// The frame: magic (which names the version), payload length, payload,
// then the HMAC of everything before it. The length is exact: a byte added,
// removed or changed anywhere fails verification.
constexpr char kMagic[8] = {'R', 'M', 'T', 'S', 'N', 'A', 'P', '2'};
constexpr size_t kLengthBytes = 8;
constexpr size_t kHmacBytes = 32;
constexpr size_t kHeaderBytes = sizeof(kMagic) + kLengthBytes;
constexpr size_t kMinKeyBytes = 16;

std::string Hmac(const std::string& key, const char* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data), size, digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<DType> ParseDType(const std::string& name) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    if (name == DTypeName(dtype)) return dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("snapshot: unsupported memory dtype '", name, "'"));
}

}  // namespace

absl::StatusOr<SnapshotKey> SnapshotKey::FromBytes(std::string key) {
  if (key.size() < kMinKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the snapshot key has ", key.size(), " bytes; use at least ",
        kMinKeyBytes, " (e.g. `head -c 32 /dev/urandom | base64`)"));
  }
  return SnapshotKey(std::move(key));
}

SnapshotKey SnapshotKey::Random() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()),
                 static_cast<int>(key.size())) != 1) {
    std::abort();  // no CSPRNG: nothing safe to do
  }
  return SnapshotKey(std::move(key));
}

absl::StatusOr<SnapshotKey> SnapshotKey::Load(const std::string& path,
                                              const char* env_value) {
  if (!path.empty()) {
    absl::StatusOr<std::string> key = ReadFileToString(path);
    if (!key.ok()) {
      return absl::NotFoundError(
          absl::StrCat(path, ": cannot read the snapshot key file"));
    }
    while (!key->empty() && (key->back() == '\n' || key->back() == '\r')) {
      key->pop_back();
    }
    return FromBytes(*std::move(key));
  }
  if (env_value != nullptr && env_value[0] != '\0') {
    return FromBytes(env_value);
  }
  LogEvent("snapshot_key",
           {{"message",
             "no --snapshot_key_file or RMT_SNAPSHOT_KEY: using a random "
             "per-process key; snapshots will not survive a restart or move "
             "between replicas"}},
           "warning");
  return Random();
}

std::string EncodeSnapshot(const SessionState& state, const SnapshotKey& key) {
  v1::internal::SnapshotPayload payload;
  payload.set_model_fingerprint(state.model_fingerprint);
  payload.set_model_name(state.model_name);
  payload.set_memory_dtype(std::string(DTypeName(state.memory.dtype)));
  for (int64_t d : state.memory.shape) payload.add_memory_shape(d);
  payload.set_memory(state.memory.bytes);
  payload.mutable_pending_tokens()->Add(state.pending_tokens.begin(),
                                        state.pending_tokens.end());
  for (const auto& segment : state.pending_segments) {
    payload.add_pending_segments()->mutable_ids()->Add(segment.begin(),
                                                       segment.end());
  }
  payload.set_tokenizer_state(state.tokenizer_state);
  payload.set_tokens_received(state.tokens_received);
  payload.set_bytes_received(state.bytes_received);
  payload.set_segments_processed(state.segments_processed);
  payload.set_questions_answered(state.questions_answered);
  const std::string body = payload.SerializeAsString();

  std::string frame(kMagic, sizeof(kMagic));
  uint64_t length = body.size();
  for (size_t i = 0; i < kLengthBytes; ++i) {
    frame.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  }
  frame += body;
  frame += Hmac(key.bytes(), frame.data(), frame.size());
  return frame;
}

absl::StatusOr<SessionState> DecodeSnapshot(const std::string& bytes,
                                            const SnapshotKey& key) {
  if (bytes.size() < kHeaderBytes + kHmacBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic) - 1) != 0) {
    return absl::InvalidArgumentError(
        "the snapshot is not a snapshot; pass the bytes ExportSession or a "
        "`snapshot` response returned, unchanged");
  }
  if (bytes[sizeof(kMagic) - 1] != kMagic[sizeof(kMagic) - 1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "snapshot format version '", bytes.substr(sizeof(kMagic) - 1, 1),
        "' is not supported (this server reads version 2)"));
  }
  uint64_t length = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    length |= static_cast<uint64_t>(
                  static_cast<unsigned char>(bytes[sizeof(kMagic) + i]))
              << (8 * i);
  }
  const size_t signed_size = bytes.size() - kHmacBytes;
  const std::string expected = Hmac(key.bytes(), bytes.data(), signed_size);
  // Constant time, and over the whole frame: nothing outside the signature.
  if (length != signed_size - kHeaderBytes ||
      CRYPTO_memcmp(bytes.data() + signed_size, expected.data(), kHmacBytes) !=
          0) {
    return absl::InvalidArgumentError(
        "the snapshot's signature does not verify: it was modified, "
        "truncated or extended, or made by a server with another snapshot "
        "key");
  }
  v1::internal::SnapshotPayload payload;
  if (!payload.ParseFromArray(bytes.data() + kHeaderBytes,
                              static_cast<int>(length))) {
    return absl::InvalidArgumentError("the snapshot's payload is malformed");
  }
  SessionState state;
  state.model_fingerprint = payload.model_fingerprint();
  state.model_name = payload.model_name();
  ASSIGN_OR_RETURN(state.memory.dtype, ParseDType(payload.memory_dtype()));
  state.memory.shape.assign(payload.memory_shape().begin(),
                            payload.memory_shape().end());
  state.memory.bytes = payload.memory();
  state.pending_tokens.assign(payload.pending_tokens().begin(),
                              payload.pending_tokens().end());
  for (const auto& segment : payload.pending_segments()) {
    state.pending_segments.emplace_back(segment.ids().begin(),
                                        segment.ids().end());
  }
  state.tokenizer_state = payload.tokenizer_state();
  state.tokens_received = payload.tokens_received();
  state.bytes_received = payload.bytes_received();
  state.segments_processed = payload.segments_processed();
  state.questions_answered = payload.questions_answered();
  return state;
}

}  // namespace rmt::server
