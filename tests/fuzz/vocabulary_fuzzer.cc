// Fuzzes Vocabulary::FromText (vocab.txt's parser). Invariants for a
// vocabulary it accepts: ids and tokens map both ways, the special tokens
// exist, the text Save would write parses back to the same tokens, and a
// tokenizer over it encodes text to ids inside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto vocab = rmt::Vocabulary::FromText(text, "fuzz/vocab.txt");
  if (!vocab.ok()) {
    FUZZ_CHECK(vocab.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const rmt::Vocabulary& v = **vocab;
  FUZZ_CHECK(v.size() > 0);
  std::string saved;
  for (int32_t id = 0; id < v.size(); ++id) {
    FUZZ_CHECK(v.Find(v.Token(id)) == id);
    saved += v.Token(id);
    saved += '\n';
  }
  for (int32_t id : {v.cls_id(), v.sep_id(), v.pad_id(), v.unk_id()}) {
    FUZZ_CHECK(id >= 0 && id < v.size());
  }
  auto reloaded = rmt::Vocabulary::FromText(saved, "fuzz/saved vocab.txt");
  FUZZ_CHECK(reloaded.ok());
  FUZZ_CHECK((*reloaded)->tokens() == v.tokens());

  const rmt::WordPieceTokenizer tokenizer(*vocab, rmt::TokenizerOptions{});
  for (const char* sample : {"Hello, World! unaffable playing",
                             "日本語 café ##s [UNK]", text.c_str()}) {
    auto ids = tokenizer.Encode(sample);
    if (!ids.ok()) continue;  // the fuzzed text need not be UTF-8
    for (int32_t id : *ids) FUZZ_CHECK(id >= 0 && id < v.size());
  }
  return 0;
}
