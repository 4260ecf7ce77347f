#include "train/vocab_builder.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"

namespace rmt {
namespace {

// Code points of a valid UTF-8 word, each as its own UTF-8 string.
std::vector<std::string> Characters(const std::string& word) {
  std::vector<std::string> chars;
  for (size_t i = 0; i < word.size();) {
    const auto lead = static_cast<unsigned char>(word[i]);
    const size_t length = lead < 0x80   ? 1
                          : lead < 0xE0 ? 2
                          : lead < 0xF0 ? 3
                                        : 4;
    chars.push_back(word.substr(i, length));
    i += length;
  }
  return chars;
}

using Counts = absl::flat_hash_map<std::string, int64_t>;

// Most frequent first; ties in byte order, so the result is deterministic.
std::vector<std::pair<std::string, int64_t>> Sorted(const Counts& counts) {
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(),
                                                      counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return sorted;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> BuildVocabulary(
    const std::vector<std::string>& texts, const VocabularyOptions& options) {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                     "[MASK]"};
  ASSIGN_OR_RETURN(auto bootstrap, Vocabulary::FromTokens(tokens));
  TokenizerOptions tokenizer_options;
  tokenizer_options.do_lower_case = options.do_lower_case;
  tokenizer_options.strip_accents = options.do_lower_case;
  WordPieceTokenizer splitter(bootstrap, tokenizer_options);

  Counts words;
  Counts chars;
  auto count = [&](const std::string& text, int64_t weight) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<std::string> split, splitter.SplitWords(text));
    for (const std::string& word : split) {
      words[word] += weight;
      for (const std::string& c : Characters(word)) chars[c] += weight;
    }
    return absl::OkStatus();
  };
  for (const std::string& text : texts) RETURN_IF_ERROR(count(text, 1));
  absl::flat_hash_set<std::string> required;
  for (const std::string& text : options.required_text) {
    ASSIGN_OR_RETURN(std::vector<std::string> split, splitter.SplitWords(text));
    for (const std::string& word : split) {
      required.insert(word);
      for (const std::string& c : Characters(word)) chars[c] += 1;
    }
  }

  absl::flat_hash_set<std::string> present(tokens.begin(), tokens.end());
  auto add = [&](const std::string& token) {
    if (present.insert(token).second) tokens.push_back(token);
  };
  for (const auto& [c, n] : Sorted(chars)) {
    add(c);
    add("##" + c);
  }
  std::vector<std::string> required_sorted(required.begin(), required.end());
  std::sort(required_sorted.begin(), required_sorted.end());
  for (const std::string& word : required_sorted) add(word);
  for (const auto& [word, n] : Sorted(words)) {
    if (static_cast<int>(tokens.size()) >= options.size) break;
    if (n < options.min_count) break;
    add(word);
  }
  return tokens;
}

}  // namespace rmt
