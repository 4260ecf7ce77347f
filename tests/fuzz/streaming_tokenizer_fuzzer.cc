// Fuzzes StreamingTokenizer against WordPieceTokenizer::Encode: arbitrary
// bytes, cut at fuzzer-chosen points, with the state saved and restored into
// a fresh stream at one of the cuts. Invariants:
//   * valid UTF-8: the stream yields exactly Encode's ids;
//   * invalid UTF-8: Encode fails and so does the stream (Feed or Finish);
//   * SaveState/RestoreState is invisible in the output;
//   * RestoreState of arbitrary bytes either succeeds or refuses, and a
//     stream restored from garbage can still be fed.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace rmt {
namespace {

std::shared_ptr<const Vocabulary> SmallVocabulary() {
  std::vector<std::string> tokens = {
      "[PAD]", "[UNK]",  "[CLS]", "[SEP]", "[MASK]", "the", "un",
      "##aff", "##able", "##ing", "play",  "é",      "##é", "日",
      "本",    ",",      ".",     "!",     "'"};
  for (char c = 'a'; c <= 'z'; ++c) {
    tokens.push_back(std::string(1, c));
    tokens.push_back(std::string("##") + c);
  }
  return *Vocabulary::FromTokens(std::move(tokens), "fuzz vocabulary");
}

const std::shared_ptr<const Vocabulary>& Vocab() {
  static const auto* vocab =
      new std::shared_ptr<const Vocabulary>(SmallVocabulary());
  return *vocab;
}

}  // namespace
}  // namespace rmt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rmt;
  FuzzedDataProvider input(data, size);
  TokenizerOptions options;
  options.do_lower_case = input.ConsumeBool();
  options.strip_accents = input.ConsumeBool();
  options.tokenize_chinese_chars = input.ConsumeBool();
  // Small limits reach the [UNK]-for-long-words and segment-flush paths.
  options.max_input_chars_per_word = input.ConsumeIntegralInRange(1, 24);
  const WordPieceTokenizer tokenizer(Vocab(), options);

  std::vector<size_t> cuts;
  const int num_cuts = input.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < num_cuts; ++i) {
    cuts.push_back(input.ConsumeIntegralInRange<size_t>(0, 64));
  }
  const int restore_at = input.ConsumeIntegralInRange(-1, num_cuts);
  const std::string garbage_state = input.ConsumeRandomLengthString(32);
  const std::string text = input.ConsumeRemainingBytesAsString();

  const auto encoded = tokenizer.Encode(text);
  auto stream = std::make_unique<StreamingTokenizer>(&tokenizer);
  std::vector<int32_t> streamed;
  bool stream_ok = true;
  size_t pos = 0;
  for (int piece = 0; piece <= num_cuts && stream_ok; ++piece) {
    size_t length = piece < num_cuts ? cuts[piece] : text.size();
    if (length > text.size() - pos) length = text.size() - pos;
    stream_ok =
        stream->Feed(absl::string_view(text).substr(pos, length), &streamed)
            .ok();
    pos += length;
    if (stream_ok && piece == restore_at) {
      const std::string state = stream->SaveState();
      // A fork continues exactly as the original would.
      auto restored = std::make_unique<StreamingTokenizer>(&tokenizer);
      FUZZ_CHECK(restored->RestoreState(state).ok());
      FUZZ_CHECK(restored->SaveState() == state);
      FUZZ_CHECK(restored->has_pending() == stream->has_pending());
      stream = std::move(restored);
    }
  }
  if (stream_ok) stream_ok = stream->Finish(&streamed).ok();

  FUZZ_CHECK(encoded.ok() == stream_ok);
  if (encoded.ok()) {
    FUZZ_CHECK(*encoded == streamed);
    for (int32_t id : streamed) {
      FUZZ_CHECK(id >= 0 && id < tokenizer.vocab().size());
    }
    // After Finish nothing is pending and the state is the empty one.
    FUZZ_CHECK(!stream->has_pending());
  }

  // Arbitrary bytes as a state: refused or accepted, never a crash, and an
  // accepted one leaves a stream that still works.
  StreamingTokenizer from_garbage(&tokenizer);
  if (from_garbage.RestoreState(garbage_state).ok()) {
    std::vector<int32_t> ids;
    if (from_garbage.Feed("more text", &ids).ok()) {
      (void)from_garbage.Finish(&ids);
    }
    for (int32_t id : ids) {
      FUZZ_CHECK(id >= 0 && id < tokenizer.vocab().size());
    }
  }
  return 0;
}
