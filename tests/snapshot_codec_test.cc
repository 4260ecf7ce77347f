// The signed snapshot frame: every byte is covered by the signature, and
// whatever a session holds round-trips.
#include "server/snapshot_codec.h"

#include <gtest/gtest.h>

namespace rmt::server {
namespace {

SnapshotKey Key(const std::string& bytes = "snapshot-codec-test-key") {
  auto key = SnapshotKey::FromBytes(bytes);
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

SessionState State() {
  SessionState state;
  state.model_fingerprint = "f1ngerprint";
  state.model_name = "rmt-babi";
  state.memory.dtype = DType::kF32;
  state.memory.shape = {2, 3};
  state.memory.bytes = std::string(24, '\x7f');
  state.pending_segments = {{5, 6, 7}, {8}};
  state.pending_tokens = {9, 10};
  state.tokenizer_state = std::string("carry\0over", 10);
  state.tokens_received = 1234;
  state.bytes_received = 5678;
  state.segments_processed = 42;
  state.questions_answered = 3;
  return state;
}

TEST(SnapshotCodecTest, RoundTripsEverything) {
  const SessionState state = State();
  auto decoded = DecodeSnapshot(EncodeSnapshot(state, Key()), Key());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->model_fingerprint, state.model_fingerprint);
  EXPECT_EQ(decoded->model_name, state.model_name);
  EXPECT_EQ(decoded->memory.shape, state.memory.shape);
  EXPECT_EQ(decoded->memory.bytes, state.memory.bytes);
  EXPECT_EQ(decoded->pending_segments, state.pending_segments);
  EXPECT_EQ(decoded->pending_tokens, state.pending_tokens);
  EXPECT_EQ(decoded->tokenizer_state, state.tokenizer_state);
  EXPECT_EQ(decoded->tokens_received, state.tokens_received);
  EXPECT_EQ(decoded->bytes_received, state.bytes_received);
  EXPECT_EQ(decoded->segments_processed, state.segments_processed);
  EXPECT_EQ(decoded->questions_answered, state.questions_answered);
}

// Found by the snapshot fuzzer: a model whose name is not UTF-8 exported
// snapshots that protobuf then refused to parse.
TEST(SnapshotCodecTest, NamesNeedNotBeUtf8) {
  SessionState state = State();
  state.model_name = "\xa0\xff";
  state.model_fingerprint = "\xc3";
  auto decoded = DecodeSnapshot(EncodeSnapshot(state, Key()), Key());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->model_name, state.model_name);
  EXPECT_EQ(decoded->model_fingerprint, state.model_fingerprint);
}

// A hardening defect: bytes appended outside the signed payload went
// unnoticed. The signature now covers the whole frame.
TEST(SnapshotCodecTest, AnyChangedAddedOrRemovedByteIsRefused) {
  const std::string good = EncodeSnapshot(State(), Key());
  std::vector<std::string> bad = {good + "x",
                                  good + std::string(1, '\0'),
                                  good.substr(0, good.size() - 1),
                                  good.substr(1),
                                  "",
                                  "RMTSNAP2"};
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string flipped = good;
    flipped[i] ^= 0x01;
    bad.push_back(flipped);
  }
  for (const std::string& bytes : bad) {
    EXPECT_EQ(DecodeSnapshot(bytes, Key()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bytes.size() << " bytes";
  }
  EXPECT_EQ(
      DecodeSnapshot(good, Key("another-key-of-the-server")).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rmt::server
