// BERT WordPiece tokenization, compatible with Hugging Face BertTokenizer.
//
// Text is cleaned (control characters dropped, whitespace normalised) and
// NFC-normalised; CJK characters and punctuation become tokens of their own;
// words are optionally lower-cased and stripped of accents, and each word is
// split greedily into the longest vocabulary pieces ("un", "##aff", "##able").
// A word longer than max_input_chars_per_word characters, or one with no
// split, is [UNK].
//
// Unlike Hugging Face, lower-casing is per code point (Python's final sigma
// and U+0130 are not special), and "[SEP]" written in the text is plain text,
// so user text cannot inject special tokens.
//
//   ASSIGN_OR_RETURN(auto vocab, Vocabulary::Load("vocab.txt"));
//   WordPieceTokenizer tokenizer(vocab, TokenizerOptions{});
//   ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.Encode("Hello!"));
//
// StreamingTokenizer accepts the same text cut anywhere, even inside a UTF-8
// sequence or a word, and yields exactly the ids Encode gives for the whole.
//
// Thread-safety: Vocabulary and WordPieceTokenizer are immutable; share them.
// A StreamingTokenizer belongs to one stream and is not thread-safe.
#ifndef RMT_MODEL_TOKENIZER_H_
#define RMT_MODEL_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rmt {

// True for strict UTF-8 (RFC 3629: no overlong forms, surrogates or code
// points past U+10FFFF), the text the tokenizer accepts.
bool IsValidUtf8(absl::string_view text);

class Vocabulary {
 public:
  // One token per line, the line number is the id. INVALID_ARGUMENT naming
  // the file for duplicates, an empty file or missing [CLS]/[SEP]/[PAD]/[UNK].
  static absl::StatusOr<std::shared_ptr<const Vocabulary>> Load(
      const std::string& path);
  // Load's parser for text already in memory (vocab.txt's contents);
  // `source` names the text in errors.
  static absl::StatusOr<std::shared_ptr<const Vocabulary>> FromText(
      absl::string_view text, absl::string_view source = "vocabulary");
  static absl::StatusOr<std::shared_ptr<const Vocabulary>> FromTokens(
      std::vector<std::string> tokens, absl::string_view source = "vocabulary");

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  // -1 when absent.
  int32_t Find(absl::string_view token) const;
  const std::string& Token(int32_t id) const { return tokens_.at(id); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  // Writes one token per line.
  absl::Status Save(const std::string& path) const;

  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }

 private:
  Vocabulary() = default;

  std::vector<std::string> tokens_;
  absl::flat_hash_map<std::string, int32_t> ids_;
  int32_t cls_id_ = -1;
  int32_t sep_id_ = -1;
  int32_t pad_id_ = -1;
  int32_t unk_id_ = -1;
};

struct TokenizerOptions {
  bool do_lower_case = true;
  // Hugging Face's default: accents are stripped when lower-casing.
  bool strip_accents = true;
  bool tokenize_chinese_chars = true;
  int max_input_chars_per_word = 100;

  // Reads tokenizer_config.json's keys (do_lower_case, strip_accents,
  // tokenize_chinese_chars); absent keys keep their defaults.
  static absl::StatusOr<TokenizerOptions> FromJson(absl::string_view json_text,
                                                   absl::string_view source);
  // tokenizer_config.json as Hugging Face's BertTokenizer reads it (the
  // keys FromJson reads).
  std::string ToJson() const;
};

class WordPieceTokenizer {
 public:
  WordPieceTokenizer(std::shared_ptr<const Vocabulary> vocab,
                     TokenizerOptions options);

  // INVALID_ARGUMENT for text that is not valid UTF-8 (with the byte offset).
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const;
  // The normalised words Encode would split into pieces (text cleaned,
  // lower-cased and stripped of accents as configured, punctuation and CJK
  // characters as words of their own); for building vocabularies.
  absl::StatusOr<std::vector<std::string>> SplitWords(
      absl::string_view text) const;
  // Joins pieces, gluing "##" continuations to the previous piece.
  std::string Decode(const std::vector<int32_t>& ids) const;

  const Vocabulary& vocab() const { return *vocab_; }
  const TokenizerOptions& options() const { return options_; }

  // Appends the WordPiece ids of one already-normalised word (code points).
  void AppendWordPieces(const std::u32string& word,
                        std::vector<int32_t>* ids) const;

 private:
  std::shared_ptr<const Vocabulary> vocab_;
  TokenizerOptions options_;
  // Longest vocabulary piece in code points ("##" not counted): no longer
  // candidate can match, so the greedy search starts there.
  int max_piece_chars_ = 0;
};

class StreamingTokenizer {
 public:
  // `tokenizer` is not owned and must outlive the stream.
  explicit StreamingTokenizer(const WordPieceTokenizer* tokenizer);
  // Copies fork the stream: both continue independently from the same point.
  StreamingTokenizer(const StreamingTokenizer& other);
  StreamingTokenizer& operator=(const StreamingTokenizer& other);
  // A moved-from stream may only be assigned to or destroyed.
  StreamingTokenizer(StreamingTokenizer&& other) noexcept;
  StreamingTokenizer& operator=(StreamingTokenizer&& other) noexcept;
  ~StreamingTokenizer();

  // Consumes `bytes` and appends the ids of every word completed so far.
  // INVALID_ARGUMENT for invalid UTF-8 (nothing is appended then); the stream
  // is then unusable (FAILED_PRECONDITION) until RestoreState.
  absl::Status Feed(absl::string_view bytes, std::vector<int32_t>* ids);
  // Ends the text: appends the ids of the last word. INVALID_ARGUMENT if the
  // text ended inside a UTF-8 sequence. The stream can be fed again after.
  absl::Status Finish(std::vector<int32_t>* ids);

  // The carry-over (partial UTF-8 sequence, the word in progress) as an
  // opaque string, for snapshots; bounded in size whatever was fed.
  std::string SaveState() const;
  // INVALID_ARGUMENT (and no change) for a string SaveState did not produce
  // or one that exceeds this tokenizer's max_input_chars_per_word bounds.
  absl::Status RestoreState(absl::string_view state);
  // Bytes fed so far that have not yet produced ids.
  bool has_pending() const;

 private:
  // Defined by the implementation.
  struct State;
  const WordPieceTokenizer* tokenizer_;
  std::unique_ptr<State> state_;
};

// Loads vocab.txt and, when present, tokenizer_config.json from a model
// directory.
absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> LoadTokenizer(
    const std::string& model_dir);

}  // namespace rmt

#endif  // RMT_MODEL_TOKENIZER_H_
