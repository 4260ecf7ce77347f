// Fuzzes the snapshot codec (server/snapshot_codec.h) three ways, chosen by
// the input's last byte:
//   * raw: the input as snapshot bytes. Anything unsigned must be refused
//     with INVALID_ARGUMENT, never crash.
//   * signed payload: the input as a SnapshotPayload, framed and signed here
//     with the fuzzer's key, so that the bytes get past the signature to the
//     protobuf parser and the field conversion behind it.
//   * round trip: the input describes a SessionState, which is encoded,
//     decoded and compared; then one byte of the snapshot, at a
//     fuzzer-chosen position, is changed, and the signature (which covers
//     every byte) must refuse it.
// The signed-payload mode frames like EncodeSnapshot; the first input checks
// that the two agree, so a format change fails the fuzzer loudly instead of
// quietly starving that mode. No snapshot seeds need committing (README.md).
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/stubs/logging.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/snapshot_codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using rmt::server::SessionState;

constexpr size_t kHeaderBytes = 16;  // magic (8) + payload length (8)
constexpr size_t kHmacBytes = 32;

const std::string& KeyBytes() {
  static const auto* bytes =
      new std::string("fuzzing key, 32 bytes long......");
  return *bytes;
}

const rmt::server::SnapshotKey& Key() {
  static const auto* key = new rmt::server::SnapshotKey(
      *rmt::server::SnapshotKey::FromBytes(KeyBytes()));
  return *key;
}

// The frame EncodeSnapshot writes, around any payload bytes.
std::string Frame(const std::string& magic, const std::string& payload) {
  std::string frame = magic;
  for (int i = 0; i < 8; ++i) {
    frame.push_back(
        static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff));
  }
  frame += payload;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), KeyBytes().data(), static_cast<int>(KeyBytes().size()),
       reinterpret_cast<const unsigned char*>(frame.data()), frame.size(),
       digest, &length);
  frame.append(reinterpret_cast<const char*>(digest), length);
  return frame;
}

// The magic, taken from a real snapshot after checking that Frame()
// reproduces EncodeSnapshot byte for byte.
const std::string& Magic() {
  static const auto* magic = [] {
    SessionState state;
    state.model_name = "check";
    state.pending_tokens = {1, 2, 3};
    const std::string encoded = rmt::server::EncodeSnapshot(state, Key());
    FUZZ_CHECK(encoded.size() >= kHeaderBytes + kHmacBytes);
    auto* result = new std::string(encoded.substr(0, 8));
    const std::string payload = encoded.substr(
        kHeaderBytes, encoded.size() - kHeaderBytes - kHmacBytes);
    // If this fails, snapshot_codec.cc changed its frame: update Frame().
    FUZZ_CHECK(Frame(*result, payload) == encoded);
    return result;
  }();
  return *magic;
}

SessionState MakeState(FuzzedDataProvider& input) {
  SessionState state;
  state.model_fingerprint = input.ConsumeRandomLengthString(20);
  // Any bytes: names are `bytes` in the payload (a non-UTF-8 model name
  // once made snapshots that could not be imported; found by this fuzzer).
  state.model_name = input.ConsumeRandomLengthString(20);
  const rmt::DType dtypes[] = {rmt::DType::kF32, rmt::DType::kF16,
                               rmt::DType::kBF16};
  state.memory.dtype = dtypes[input.ConsumeIntegralInRange(0, 2)];
  const int64_t rows = input.ConsumeIntegralInRange(0, 8);
  const int64_t columns = input.ConsumeIntegralInRange(0, 16);
  state.memory.shape = {rows, columns};
  const size_t bytes = rows * columns * rmt::DTypeSize(state.memory.dtype);
  state.memory.bytes = input.ConsumeBytesAsString(bytes);
  state.memory.bytes.resize(bytes);
  const int segments = input.ConsumeIntegralInRange(0, 3);
  for (int s = 0; s < segments; ++s) {
    std::vector<int32_t> segment(input.ConsumeIntegralInRange(0, 8));
    for (int32_t& id : segment) id = input.ConsumeIntegral<int32_t>();
    state.pending_segments.push_back(std::move(segment));
  }
  const int pending = input.ConsumeIntegralInRange(0, 32);
  for (int i = 0; i < pending; ++i) {
    state.pending_tokens.push_back(input.ConsumeIntegral<int32_t>());
  }
  state.tokenizer_state = input.ConsumeRandomLengthString(40);
  state.tokens_received = input.ConsumeIntegral<int64_t>();
  state.bytes_received = input.ConsumeIntegral<int64_t>();
  state.segments_processed = input.ConsumeIntegral<int64_t>();
  state.questions_answered = input.ConsumeIntegral<int64_t>();
  return state;
}

bool SameState(const SessionState& a, const SessionState& b) {
  return a.model_fingerprint == b.model_fingerprint &&
         a.model_name == b.model_name && a.memory.dtype == b.memory.dtype &&
         a.memory.shape == b.memory.shape && a.memory.bytes == b.memory.bytes &&
         a.pending_segments == b.pending_segments &&
         a.pending_tokens == b.pending_tokens &&
         a.tokenizer_state == b.tokenizer_state &&
         a.tokens_received == b.tokens_received &&
         a.bytes_received == b.bytes_received &&
         a.segments_processed == b.segments_processed &&
         a.questions_answered == b.questions_answered;
}

bool RefusedAsInvalid(const absl::StatusOr<SessionState>& state) {
  return !state.ok() &&
         state.status().code() == absl::StatusCode::kInvalidArgument;
}

}  // namespace

// protobuf logs every non-UTF-8 string field it refuses to stderr; at
// thousands of inputs a second that drowns the fuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  switch (input.ConsumeIntegralInRange(0, 2)) {
    case 0: {
      const std::string bytes = input.ConsumeRemainingBytesAsString();
      auto state = rmt::server::DecodeSnapshot(bytes, Key());
      FUZZ_CHECK(state.ok() || RefusedAsInvalid(state));
      return 0;
    }
    case 1: {
      const std::string frame =
          Frame(Magic(), input.ConsumeRemainingBytesAsString());
      auto state = rmt::server::DecodeSnapshot(frame, Key());
      FUZZ_CHECK(state.ok() || RefusedAsInvalid(state));
      if (state.ok()) {
        // Whatever it accepted encodes and decodes to the same state.
        auto again = rmt::server::DecodeSnapshot(
            rmt::server::EncodeSnapshot(*state, Key()), Key());
        FUZZ_CHECK(again.ok());
        FUZZ_CHECK(SameState(*again, *state));
      }
      return 0;
    }
    default: {
      const size_t change_at = input.ConsumeIntegral<size_t>();
      const uint8_t mask = input.ConsumeIntegralInRange<uint8_t>(1, 255);
      const SessionState state = MakeState(input);
      std::string bytes = rmt::server::EncodeSnapshot(state, Key());
      auto decoded = rmt::server::DecodeSnapshot(bytes, Key());
      FUZZ_CHECK(decoded.ok());
      FUZZ_CHECK(SameState(*decoded, state));
      bytes[change_at % bytes.size()] ^= static_cast<char>(mask);
      FUZZ_CHECK(RefusedAsInvalid(rmt::server::DecodeSnapshot(bytes, Key())));
      return 0;
    }
  }
}
