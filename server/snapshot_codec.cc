#include "server/snapshot_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "rmt/v1/snapshot.pb.h"
#include "server/log.h"

namespace rmt::server {
namespace {

constexpr uint32_t kVersion = 1;
constexpr size_t kMinKeyBytes = 16;

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
       &length);
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
    return absl::InvalidArgumentError(
        absl::StrCat("the snapshot key has ", key.size(),
                     " bytes; use at least ", kMinKeyBytes,
                     " (e.g. `head -c 32 /dev/urandom | base64`)"));
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
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat(path, ": cannot read the snapshot key file"));
    }
    std::stringstream contents;
    contents << in.rdbuf();
    std::string key = contents.str();
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
      key.pop_back();
    }
    return FromBytes(std::move(key));
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
  payload.set_tokenizer_state(state.tokenizer_state);
  payload.set_tokens_received(state.tokens_received);
  payload.set_segments_processed(state.segments_processed);
  payload.set_questions_answered(state.questions_answered);
  v1::internal::SignedSnapshot signed_snapshot;
  signed_snapshot.set_version(kVersion);
  signed_snapshot.set_payload(payload.SerializeAsString());
  signed_snapshot.set_hmac_sha256(Hmac(key.bytes(), signed_snapshot.payload()));
  return signed_snapshot.SerializeAsString();
}

absl::StatusOr<SessionState> DecodeSnapshot(const std::string& bytes,
                                            const SnapshotKey& key) {
  v1::internal::SignedSnapshot signed_snapshot;
  if (bytes.empty() || !signed_snapshot.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        "the snapshot is not a snapshot; pass the bytes ExportSession or a "
        "`snapshot` response returned, unchanged");
  }
  if (signed_snapshot.version() != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot version ", signed_snapshot.version(),
                     " is not supported (this server reads ", kVersion, ")"));
  }
  const std::string expected = Hmac(key.bytes(), signed_snapshot.payload());
  const std::string& actual = signed_snapshot.hmac_sha256();
  if (actual.size() != expected.size() ||
      CRYPTO_memcmp(actual.data(), expected.data(), expected.size()) != 0) {
    return absl::InvalidArgumentError(
        "the snapshot's signature does not verify: it was modified, or made "
        "by a server with another snapshot key");
  }
  v1::internal::SnapshotPayload payload;
  if (!payload.ParseFromString(signed_snapshot.payload())) {
    return absl::InvalidArgumentError("the snapshot's payload is malformed");
  }
  SessionState state;
  state.model_fingerprint = payload.model_fingerprint();
  state.model_name = payload.model_name();
  auto dtype = ParseDType(payload.memory_dtype());
  if (!dtype.ok()) return dtype.status();
  state.memory.dtype = *dtype;
  state.memory.shape.assign(payload.memory_shape().begin(),
                            payload.memory_shape().end());
  state.memory.bytes = payload.memory();
  state.pending_tokens.assign(payload.pending_tokens().begin(),
                              payload.pending_tokens().end());
  state.tokenizer_state = payload.tokenizer_state();
  state.tokens_received = payload.tokens_received();
  state.segments_processed = payload.segments_processed();
  state.questions_answered = payload.questions_answered();
  return state;
}

}  // namespace rmt::server
