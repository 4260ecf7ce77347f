// BERT WordPiece tokenization as one streaming machine over code points.
//
// Hugging Face's BasicTokenizer makes whole-text passes: clean, space out CJK,
// NFC, split on whitespace, lower-case, strip accents (NFD, drop Mn), split
// on punctuation. Every pass is local, so one left-to-right machine gives the
// same words with bounded carry-over:
//
//   bytes -> code point -> (clean, CJK, whitespace) -> segment
//         -> (NFC, lower, strip accents, punctuation) -> word -> WordPiece ids
//
// A segment is the raw text from one "safe" starter to the next. NFC neither
// composes nor reorders across a safe starter, so normalising segment by
// segment equals normalising the whole text. Encode is this machine run over
// the whole text, so Encode and StreamingTokenizer cannot disagree.
#include "model/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "model/file_util.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace rmt {
namespace {

using Json = nlohmann::json;

constexpr char32_t kMaxCodePoint = 0x10FFFF;
// The longest canonical decomposition (U+1F82 and kin) has 4 code points, so
// NFC shrinks a run of text at most 4-fold.
constexpr int kMaxDecomposition = 4;
// Keeps state sizes and their arithmetic sane for absurd options.
constexpr int kMaxWordCharsLimit = 1 << 20;

// ---------------------------------------------------------------------------
// Unicode classes, as Hugging Face's BasicTokenizer defines them.

const utf8proc_property_t& Property(char32_t c) {
  return *utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
}

int CombiningClass(char32_t c) { return Property(c).combining_class; }

utf8proc_category_t Category(char32_t c) {
  return static_cast<utf8proc_category_t>(Property(c).category);
}

// HF _is_control: any "C*" category; \t \n \r count as whitespace instead.
bool IsControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

// HF _is_whitespace, plus U+2028/U+2029: cleaning keeps those, and Python's
// str.split() then splits on them.
bool IsSeparator(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x2028 ||
         c == 0x2029 || Category(c) == UTF8PROC_CATEGORY_ZS;
}

// HF _is_punctuation: every non-alphanumeric ASCII character counts, even
// those Unicode files as symbols ("$", "^", "`").
bool IsPunctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  const utf8proc_category_t category = Category(c);
  return category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO;
}

// HF _is_chinese_char: the CJK Unified Ideographs blocks (not kana, hangul).
bool IsCjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// ---------------------------------------------------------------------------
// Normalisation on top of utf8proc's per-character tables.

void AppendDecomposition(char32_t c, std::u32string* out) {
  utf8proc_int32_t buffer[8];
  const utf8proc_ssize_t n = utf8proc_decompose_char(
      static_cast<utf8proc_int32_t>(c), buffer, 8, UTF8PROC_DECOMPOSE, nullptr);
  if (n < 1 || n > 8) {  // Only for invalid code points, which never get here.
    out->push_back(c);
    return;
  }
  for (utf8proc_ssize_t i = 0; i < n; ++i) out->push_back(buffer[i]);
}

// Canonical ordering: a stable sort of each run of non-starters by class.
void CanonicalOrder(std::u32string* text) {
  for (size_t i = 1; i < text->size(); ++i) {
    const char32_t c = (*text)[i];
    const int ccc = CombiningClass(c);
    if (ccc == 0) continue;
    size_t j = i;
    for (; j > 0 && CombiningClass((*text)[j - 1]) > ccc; --j) {
      (*text)[j] = (*text)[j - 1];
    }
    (*text)[j] = c;
  }
}

std::u32string Nfd(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendDecomposition(c, &out);
  CanonicalOrder(&out);
  return out;
}

std::u32string Nfc(const std::u32string& text) {
  const std::u32string decomposed = Nfd(text);
  std::vector<utf8proc_int32_t> buffer(decomposed.begin(), decomposed.end());
  // STABLE keeps composition exclusions decomposed, as NFC requires.
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buffer.data(), buffer.size(),
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return decomposed;
  return std::u32string(buffer.begin(), buffer.begin() + n);
}

// Starters that can be the second half of a canonical composition (Hangul
// vowels and final consonants, some Indic vowel signs): NFC reaches back
// across them. A superset is harmless; it only makes segments longer.
const std::vector<char32_t>& StarterSeconds() {
  static const std::vector<char32_t>* const seconds = [] {
    auto* result = new std::vector<char32_t>;
    utf8proc_int32_t buffer[8];
    for (char32_t c = 0xC0; c <= kMaxCodePoint; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      const bool hangul = c >= 0xAC00 && c <= 0xD7A3;
      if (!hangul && Property(c).decomp_seqindex == UINT16_MAX) continue;
      const utf8proc_ssize_t n =
          utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buffer, 8,
                                  UTF8PROC_DECOMPOSE, nullptr);
      if (n >= 2 && n <= 8 && CombiningClass(buffer[n - 1]) == 0) {
        result->push_back(buffer[n - 1]);
      }
    }
    std::sort(result->begin(), result->end());
    result->erase(std::unique(result->begin(), result->end()), result->end());
    return result;
  }();
  return *seconds;
}

// True when NFC can neither compose nor reorder across the start of `c`: it
// decomposes to a starter that composes with nothing before it.
bool IsSafeStart(char32_t c) {
  if (c < 0x300) return true;  // Below the combining marks: plain starters.
  if (CombiningClass(c) != 0) return false;
  std::u32string decomposed;
  AppendDecomposition(c, &decomposed);
  const char32_t first = decomposed[0];
  if (CombiningClass(first) != 0) return false;
  return !std::binary_search(StarterSeconds().begin(), StarterSeconds().end(),
                             first);
}

// ---------------------------------------------------------------------------
// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or values past
// U+10FFFF.

int SequenceLength(uint8_t lead) {
  return lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Why `lead` cannot start a sequence; nullptr when it can (ASCII included).
const char* LeadError(uint8_t lead) {
  if (lead >= 0x80 && lead <= 0xBF) return "unexpected continuation byte";
  if (lead == 0xC0 || lead == 0xC1) return "overlong encoding";
  if (lead >= 0xF5) return "invalid byte";
  return nullptr;
}

// Why `byte` cannot be byte `index` (1..3) of a sequence led by `lead`.
const char* ContinuationError(uint8_t lead, size_t index, uint8_t byte) {
  if (byte < 0x80 || byte > 0xBF) return "truncated sequence";
  if (index != 1) return nullptr;
  if (lead == 0xE0 && byte < 0xA0) return "overlong encoding";
  if (lead == 0xF0 && byte < 0x90) return "overlong encoding";
  if (lead == 0xED && byte > 0x9F) return "UTF-16 surrogate";
  if (lead == 0xF4 && byte > 0x8F) return "code point above U+10FFFF";
  return nullptr;
}

char32_t DecodeSequence(absl::string_view bytes) {
  const uint8_t lead = static_cast<uint8_t>(bytes[0]);
  char32_t c = lead & (bytes.size() == 2   ? 0x1F
                       : bytes.size() == 3 ? 0x0F
                                           : 0x07);
  for (size_t i = 1; i < bytes.size(); ++i) {
    c = (c << 6) | (static_cast<uint8_t>(bytes[i]) & 0x3F);
  }
  return c;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    if (LeadError(lead) != nullptr) return false;
    const size_t length = SequenceLength(lead);
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if (ContinuationError(lead, k, static_cast<uint8_t>(text[i + k])) !=
          nullptr) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

namespace {

void AppendUtf8(char32_t c, std::string* out) {
  utf8proc_uint8_t bytes[4];
  const utf8proc_ssize_t n =
      utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), bytes);
  out->append(reinterpret_cast<const char*>(bytes), n);
}

int CountCodePoints(absl::string_view utf8) {
  int count = 0;
  for (char byte : utf8) count += (static_cast<uint8_t>(byte) & 0xC0) != 0x80;
  return count;
}

bool IsScalarValue(uint64_t c) {
  return c <= kMaxCodePoint && !(c >= 0xD800 && c <= 0xDFFF);
}

// ---------------------------------------------------------------------------
// The carry-over between Feed calls and the machine that advances it.

struct Carry {
  // An incomplete UTF-8 sequence: at most 3 bytes.
  std::string partial;
  // Bytes of the current text consumed so far, for error messages.
  uint64_t offset = 0;
  // Raw (cleaned) code points awaiting NFC; always below SegmentLimit().
  std::u32string segment;
  // Normalised code points of the word in progress. It keeps at most
  // max_input_chars_per_word + 1: one more than fits already means [UNK].
  std::u32string word;
  bool failed = false;
};

size_t WordLimit(const TokenizerOptions& options) {
  return static_cast<size_t>(options.max_input_chars_per_word) + 1;
}

// Past its first code point a segment holds only marks and other unsafe
// starters, which never normalise to punctuation, and NFC shrinks text at
// most 4-fold: a segment this long puts more than max_input_chars_per_word
// code points into one word, so flushing it early cannot change the ids
// (that word is [UNK] anyway). With accents stripped, marks vanish in either
// order.
size_t SegmentLimit(const TokenizerOptions& options) {
  return kMaxDecomposition * WordLimit(options) + 1;
}

class Machine {
 public:
  // With `words`, completed words are collected there instead of being split
  // into pieces (vocabulary building).
  Machine(const WordPieceTokenizer& tokenizer, Carry* carry,
          std::vector<int32_t>* ids,
          std::vector<std::u32string>* words = nullptr)
      : tokenizer_(tokenizer),
        options_(tokenizer.options()),
        carry_(*carry),
        ids_(*ids),
        words_(words) {}

  absl::Status Feed(absl::string_view bytes) {
    if (carry_.failed) return FailedStream();
    const size_t ids_before = ids_.size();
    for (const char ch : bytes) {
      const uint8_t byte = static_cast<uint8_t>(ch);
      const char* error = nullptr;
      if (carry_.partial.empty()) {
        if (byte < 0x80) {
          ++carry_.offset;
          OnCodePoint(byte);
          continue;
        }
        error = LeadError(byte);
      } else {
        error = ContinuationError(static_cast<uint8_t>(carry_.partial[0]),
                                  carry_.partial.size(), byte);
      }
      if (error != nullptr) {
        ids_.resize(ids_before);
        carry_.failed = true;
        return absl::InvalidArgumentError(absl::StrFormat(
            "invalid UTF-8 at byte offset %d: %s (byte 0x%02X)",
            carry_.offset - carry_.partial.size(), error, byte));
      }
      ++carry_.offset;
      carry_.partial.push_back(ch);
      const uint8_t lead = static_cast<uint8_t>(carry_.partial[0]);
      if (carry_.partial.size() == static_cast<size_t>(SequenceLength(lead))) {
        const char32_t c = DecodeSequence(carry_.partial);
        carry_.partial.clear();
        OnCodePoint(c);
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() {
    if (carry_.failed) return FailedStream();
    if (!carry_.partial.empty()) {
      carry_.failed = true;
      return absl::InvalidArgumentError(
          absl::StrCat("invalid UTF-8 at byte offset ",
                       carry_.offset - carry_.partial.size(),
                       ": text ends inside a UTF-8 sequence"));
    }
    FlushSegment();
    EndWord();
    carry_.offset = 0;
    return absl::OkStatus();
  }

 private:
  static absl::Status FailedStream() {
    return absl::FailedPreconditionError(
        "tokenizer stream failed earlier; restore a saved state first");
  }

  void OnCodePoint(char32_t c) {
    // HF _clean_text drops NUL, U+FFFD and control characters.
    if (c == 0 || c == 0xFFFD || IsControl(c)) return;
    if (IsSeparator(c)) {
      FlushSegment();
      EndWord();
      return;
    }
    if (options_.tokenize_chinese_chars && IsCjk(c)) {
      // HF puts spaces around it before NFC: a word of its own.
      FlushSegment();
      EndWord();
      carry_.segment.push_back(c);
      FlushSegment();
      EndWord();
      return;
    }
    if (IsSafeStart(c)) FlushSegment();
    carry_.segment.push_back(c);
    if (carry_.segment.size() >= SegmentLimit(options_)) FlushSegment();
  }

  // NFC, lower-case and strip the segment, then split it on punctuation.
  void FlushSegment() {
    if (carry_.segment.empty()) return;
    if (carry_.segment.size() == 1 && carry_.segment[0] < 0x80) {
      // ASCII is its own NFC and NFD.
      char32_t c = carry_.segment[0];
      carry_.segment.clear();
      if (options_.do_lower_case && c >= 'A' && c <= 'Z') c += 'a' - 'A';
      AddNormalized(c);
      return;
    }
    std::u32string text = Nfc(carry_.segment);
    carry_.segment.clear();
    if (options_.do_lower_case) {
      for (char32_t& c : text) c = utf8proc_tolower(c);
    }
    if (options_.strip_accents) text = Nfd(text);
    for (char32_t c : text) {
      if (options_.strip_accents && Category(c) == UTF8PROC_CATEGORY_MN) {
        continue;
      }
      AddNormalized(c);
    }
  }

  void AddNormalized(char32_t c) {
    if (IsPunctuation(c)) {
      EndWord();
      carry_.word.push_back(c);
      EndWord();
    } else if (carry_.word.size() < WordLimit(options_)) {
      carry_.word.push_back(c);
    }
  }

  void EndWord() {
    if (words_ != nullptr) {
      if (!carry_.word.empty()) words_->push_back(carry_.word);
    } else {
      tokenizer_.AppendWordPieces(carry_.word, &ids_);
    }
    carry_.word.clear();
  }

  const WordPieceTokenizer& tokenizer_;
  const TokenizerOptions& options_;
  Carry& carry_;
  std::vector<int32_t>& ids_;
  std::vector<std::u32string>* words_;
};

// ---------------------------------------------------------------------------
// SaveState format: "RMTK", version byte 1, then varints: offset, the
// partial sequence (length + bytes), segment and word (length + code points).

constexpr absl::string_view kStateMagic = "RMTK";
constexpr uint8_t kStateVersion = 1;

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

class StateReader {
 public:
  explicit StateReader(absl::string_view data) : data_(data) {}

  bool Varint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool Bytes(size_t n, absl::string_view* bytes) {
    if (data_.size() - pos_ < n) return false;
    *bytes = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool CodePoints(size_t limit, std::u32string* out) {
    uint64_t n = 0;
    if (!Varint(&n) || n > limit) return false;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t c = 0;
      if (!Varint(&c) || !IsScalarValue(c)) return false;
      out->push_back(static_cast<char32_t>(c));
    }
    return true;
  }

  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

bool IsIncompleteSequence(absl::string_view bytes) {
  if (bytes.empty()) return true;
  const uint8_t lead = static_cast<uint8_t>(bytes[0]);
  if (lead < 0x80 || LeadError(lead) != nullptr) return false;
  if (bytes.size() >= static_cast<size_t>(SequenceLength(lead))) return false;
  for (size_t i = 1; i < bytes.size(); ++i) {
    if (ContinuationError(lead, i, static_cast<uint8_t>(bytes[i])) != nullptr) {
      return false;
    }
  }
  return true;
}

// Debian's abseil has its own absl::string_view
// (ABSL_OPTION_USE_STD_STRING_VIEW 0), which absl::StrCat and absl's string
// hashing cannot take from a absl::string_view; this bridges the two.
absl::string_view Absl(absl::string_view text) {
  return absl::string_view(text.data(), text.size());
}

absl::Status SourceError(absl::string_view source, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(Absl(source), ": ", Absl(message)));
}

}  // namespace

// ---------------------------------------------------------------------------
// Vocabulary

absl::StatusOr<std::shared_ptr<const Vocabulary>> Vocabulary::Load(
    const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return FromText(text, path);
}

absl::StatusOr<std::shared_ptr<const Vocabulary>> Vocabulary::FromText(
    absl::string_view text, absl::string_view source) {
  if (text.empty()) return SourceError(source, "empty vocabulary file");
  std::vector<std::string> tokens;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    tokens.emplace_back(line);
    start = end + 1;
  }
  return FromTokens(std::move(tokens), source);
}

absl::StatusOr<std::shared_ptr<const Vocabulary>> Vocabulary::FromTokens(
    std::vector<std::string> tokens, absl::string_view source) {
  if (tokens.empty()) return SourceError(source, "empty vocabulary");
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return SourceError(source, "more than 2^31 - 1 tokens");
  }
  std::shared_ptr<Vocabulary> vocab(new Vocabulary());
  vocab->ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    // Save writes one token per line, so these must survive a reload.
    if (token.find('\n') != std::string::npos ||
        (!token.empty() && token.back() == '\r')) {
      return SourceError(source, absl::StrCat("line ", i + 1,
                                              ": token contains a line break"));
    }
    if (!IsValidUtf8(token)) {
      return SourceError(source,
                         absl::StrCat("line ", i + 1, ": token is not UTF-8"));
    }
    auto [it, inserted] = vocab->ids_.emplace(token, static_cast<int32_t>(i));
    if (!inserted) {
      return SourceError(
          source, absl::StrCat("duplicate token \"", token, "\" on lines ",
                               it->second + 1, " and ", i + 1));
    }
  }
  std::vector<std::string> missing;
  auto special = [&](const char* name, int32_t* id) {
    auto it = vocab->ids_.find(name);
    if (it == vocab->ids_.end()) {
      missing.push_back(name);
    } else {
      *id = it->second;
    }
  };
  special("[CLS]", &vocab->cls_id_);
  special("[SEP]", &vocab->sep_id_);
  special("[PAD]", &vocab->pad_id_);
  special("[UNK]", &vocab->unk_id_);
  if (!missing.empty()) {
    return SourceError(source, absl::StrCat("missing special tokens ",
                                            absl::StrJoin(missing, ", ")));
  }
  vocab->tokens_ = std::move(tokens);
  return std::shared_ptr<const Vocabulary>(std::move(vocab));
}

int32_t Vocabulary::Find(absl::string_view token) const {
  auto it = ids_.find(Absl(token));
  return it == ids_.end() ? -1 : it->second;
}

absl::Status Vocabulary::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& token : tokens_) out << token << '\n';
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// TokenizerOptions

std::string TokenizerOptions::ToJson() const {
  return absl::StrFormat(
      "{\n  \"tokenizer_class\": \"BertTokenizer\",\n"
      "  \"do_lower_case\": %s,\n  \"strip_accents\": %s,\n"
      "  \"tokenize_chinese_chars\": %s\n}\n",
      do_lower_case ? "true" : "false", strip_accents ? "true" : "false",
      tokenize_chinese_chars ? "true" : "false");
}

absl::StatusOr<TokenizerOptions> TokenizerOptions::FromJson(
    absl::string_view json_text, absl::string_view source) {
  const Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return SourceError(source, "not a JSON object");
  }
  auto read_bool = [&](const char* key, bool* value) -> absl::Status {
    auto it = root.find(key);
    if (it == root.end()) return absl::OkStatus();
    if (!it->is_boolean()) {
      return SourceError(source,
                         absl::StrCat("\"", key, "\" must be a boolean"));
    }
    *value = it->get<bool>();
    return absl::OkStatus();
  };
  TokenizerOptions options;
  RETURN_IF_ERROR(read_bool("do_lower_case", &options.do_lower_case));
  RETURN_IF_ERROR(
      read_bool("tokenize_chinese_chars", &options.tokenize_chinese_chars));
  // HF: strip_accents null (or absent) follows do_lower_case.
  options.strip_accents = options.do_lower_case;
  auto strip = root.find("strip_accents");
  if (strip != root.end() && !strip->is_null()) {
    RETURN_IF_ERROR(read_bool("strip_accents", &options.strip_accents));
  }
  // Settings this tokenizer cannot honour fail loudly rather than silently
  // producing different ids.
  for (const char* key : {"do_basic_tokenize", "do_split_on_punc"}) {
    bool enabled = true;
    RETURN_IF_ERROR(read_bool(key, &enabled));
    if (!enabled) {
      return SourceError(source,
                         absl::StrCat("\"", key, "\": false is not supported"));
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// WordPieceTokenizer

WordPieceTokenizer::WordPieceTokenizer(std::shared_ptr<const Vocabulary> vocab,
                                       TokenizerOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  options_.max_input_chars_per_word =
      std::clamp(options_.max_input_chars_per_word, 0, kMaxWordCharsLimit);
  for (const std::string& token : vocab_->tokens()) {
    max_piece_chars_ = std::max(max_piece_chars_, CountCodePoints(token));
  }
}

absl::StatusOr<std::vector<int32_t>> WordPieceTokenizer::Encode(
    absl::string_view text) const {
  StreamingTokenizer stream(this);
  std::vector<int32_t> ids;
  RETURN_IF_ERROR(stream.Feed(text, &ids));
  RETURN_IF_ERROR(stream.Finish(&ids));
  return ids;
}

absl::StatusOr<std::vector<std::string>> WordPieceTokenizer::SplitWords(
    absl::string_view text) const {
  Carry carry;
  std::vector<int32_t> unused;
  std::vector<std::u32string> words;
  Machine machine(*this, &carry, &unused, &words);
  RETURN_IF_ERROR(machine.Feed(text));
  RETURN_IF_ERROR(machine.Finish());
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const std::u32string& word : words) {
    std::string utf8;
    for (char32_t c : word) AppendUtf8(c, &utf8);
    out.push_back(std::move(utf8));
  }
  return out;
}

std::string WordPieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
  // HF convert_tokens_to_string: " ".join(tokens).replace(" ##", "").strip().
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id =
        ids[i] >= 0 && ids[i] < vocab_->size() ? ids[i] : vocab_->unk_id();
    if (i > 0) text.push_back(' ');
    text += vocab_->Token(id);
  }
  absl::StrReplaceAll({{" ##", ""}}, &text);
  return std::string(absl::StripAsciiWhitespace(text));
}

void WordPieceTokenizer::AppendWordPieces(const std::u32string& word,
                                          std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (word.size() > static_cast<size_t>(options_.max_input_chars_per_word)) {
    ids->push_back(vocab_->unk_id());
    return;
  }
  std::string utf8;
  std::vector<size_t> offsets;  // offsets[i]: byte offset of code point i.
  offsets.reserve(word.size() + 1);
  for (char32_t c : word) {
    offsets.push_back(utf8.size());
    AppendUtf8(c, &utf8);
  }
  offsets.push_back(utf8.size());
  // Greedy longest-match-first; one unmatched position makes it all [UNK].
  const size_t ids_before = ids->size();
  std::string candidate;
  for (size_t start = 0; start < word.size();) {
    size_t end = std::min(word.size(), start + max_piece_chars_);
    int32_t id = -1;
    for (; end > start; --end) {
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(utf8, offsets[start], offsets[end] - offsets[start]);
      id = vocab_->Find(candidate);
      if (id >= 0) break;
    }
    if (id < 0) {
      ids->resize(ids_before);
      ids->push_back(vocab_->unk_id());
      return;
    }
    ids->push_back(id);
    start = end;
  }
}

// ---------------------------------------------------------------------------
// StreamingTokenizer

struct StreamingTokenizer::State : Carry {};

StreamingTokenizer::StreamingTokenizer(const WordPieceTokenizer* tokenizer)
    : tokenizer_(tokenizer), state_(std::make_unique<State>()) {}

StreamingTokenizer::StreamingTokenizer(const StreamingTokenizer& other)
    : tokenizer_(other.tokenizer_),
      state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}

StreamingTokenizer& StreamingTokenizer::operator=(
    const StreamingTokenizer& other) {
  if (this != &other) {
    tokenizer_ = other.tokenizer_;
    state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
  }
  return *this;
}

StreamingTokenizer::StreamingTokenizer(StreamingTokenizer&& other) noexcept =
    default;
StreamingTokenizer& StreamingTokenizer::operator=(
    StreamingTokenizer&& other) noexcept = default;
StreamingTokenizer::~StreamingTokenizer() = default;

absl::Status StreamingTokenizer::Feed(absl::string_view bytes,
                                      std::vector<int32_t>* ids) {
  return Machine(*tokenizer_, state_.get(), ids).Feed(bytes);
}

absl::Status StreamingTokenizer::Finish(std::vector<int32_t>* ids) {
  return Machine(*tokenizer_, state_.get(), ids).Finish();
}

bool StreamingTokenizer::has_pending() const {
  return !state_->partial.empty() || !state_->segment.empty() ||
         !state_->word.empty();
}

std::string StreamingTokenizer::SaveState() const {
  std::string out(kStateMagic);
  out.push_back(static_cast<char>(kStateVersion));
  PutVarint(state_->offset, &out);
  PutVarint(state_->partial.size(), &out);
  out += state_->partial;
  for (const std::u32string* text : {&state_->segment, &state_->word}) {
    PutVarint(text->size(), &out);
    for (char32_t c : *text) PutVarint(c, &out);
  }
  return out;
}

absl::Status StreamingTokenizer::RestoreState(absl::string_view state) {
  auto invalid = [](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tokenizer state: ", Absl(why)));
  };
  if (state.substr(0, kStateMagic.size()) != kStateMagic) {
    return invalid("bad magic");
  }
  StateReader reader(state.substr(kStateMagic.size()));
  absl::string_view version;
  if (!reader.Bytes(1, &version) ||
      static_cast<uint8_t>(version[0]) != kStateVersion) {
    return invalid("unsupported version");
  }
  State restored;
  uint64_t partial_size = 0;
  absl::string_view partial;
  if (!reader.Varint(&restored.offset) || !reader.Varint(&partial_size) ||
      partial_size > 3 || !reader.Bytes(partial_size, &partial) ||
      !IsIncompleteSequence(partial) || restored.offset < partial_size) {
    return invalid("bad UTF-8 carry-over");
  }
  restored.partial = std::string(partial);
  const TokenizerOptions& options = tokenizer_->options();
  if (!reader.CodePoints(SegmentLimit(options) - 1, &restored.segment) ||
      !reader.CodePoints(WordLimit(options), &restored.word)) {
    return invalid("bad or oversized word in progress");
  }
  if (!reader.AtEnd()) return invalid("trailing bytes");
  *state_ = std::move(restored);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> LoadTokenizer(
    const std::string& model_dir) {
  namespace fs = std::filesystem;
  ASSIGN_OR_RETURN(
      std::shared_ptr<const Vocabulary> vocab,
      Vocabulary::Load((fs::path(model_dir) / "vocab.txt").string()));
  TokenizerOptions options;
  const std::string config_path =
      (fs::path(model_dir) / "tokenizer_config.json").string();
  std::error_code error;
  if (fs::exists(config_path, error)) {
    ASSIGN_OR_RETURN(const std::string text, ReadFileToString(config_path));
    ASSIGN_OR_RETURN(options, TokenizerOptions::FromJson(text, config_path));
  }
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), options);
}

}  // namespace rmt
