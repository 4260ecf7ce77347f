#include "train/noise_text.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/file_util.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;

int CountWords(const std::string& sentence) {
  int words = 0;
  bool in_word = false;
  for (char c : sentence) {
    const bool space = absl::ascii_isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// Prose, not ASCII art or code: mostly letters and spaces, printable ASCII.
bool IsProse(const std::string& sentence) {
  size_t letters = 0;
  for (char c : sentence) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
    if (absl::ascii_isalpha(u) || u == ' ') ++letters;
  }
  return letters * 10 >= sentence.size() * 9;
}

// Splits text into sentences ending at '.', '!' or '?' followed by
// whitespace; whitespace runs become single spaces.
void SplitSentences(const std::string& text, int min_words, int max_words,
                    std::vector<std::string>* out) {
  std::string current;
  auto finish = [&] {
    std::string sentence(absl::StripAsciiWhitespace(current));
    current.clear();
    // Only whole sentences: an entry's unterminated tail (a "-- Author"
    // line, say) would run into whatever follows it in a document.
    if (sentence.empty() || (sentence.back() != '.' && sentence.back() != '!' &&
                             sentence.back() != '?')) {
      return;
    }
    const int words = CountWords(sentence);
    if (words >= min_words && words <= max_words && IsProse(sentence)) {
      out->push_back(sentence);
    }
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (!current.empty() && current.back() != ' ') current.push_back(' ');
      continue;
    }
    current.push_back(c);
    const bool end = c == '.' || c == '!' || c == '?';
    if (end && (i + 1 == text.size() ||
                absl::ascii_isspace(static_cast<unsigned char>(text[i + 1])))) {
      finish();
    }
  }
  finish();
}

}  // namespace

absl::StatusOr<NoiseText> NoiseText::Load(const std::vector<std::string>& paths,
                                          int min_words, int max_words) {
  NoiseText noise;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> text = ReadFileToString(path);
    if (!text.ok()) return text.status();
    // A fortunes file separates entries with lines holding only "%"; each
    // entry is split on its own so no sentence spans two fortunes.
    for (absl::string_view entry :
         absl::StrSplit(*text, "\n%\n", absl::SkipEmpty())) {
      SplitSentences(std::string(entry), min_words, max_words,
                     &noise.sentences_);
    }
  }
  if (noise.sentences_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no sentences of ", min_words, " to ", max_words,
                     " words in the noise files"));
  }
  return noise;
}

NoiseText NoiseText::FromSentences(std::vector<std::string> sentences) {
  NoiseText noise;
  noise.sentences_ = std::move(sentences);
  return noise;
}

std::vector<std::string> DefaultNoiseFiles() {
  const fs::path dir = "/usr/share/games/fortunes";
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (!entry.is_regular_file() || entry.path().has_extension()) continue;
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<NoiseText> LoadNoiseFileOrDefault(
    const std::string& noise_file) {
  return NoiseText::Load(noise_file.empty()
                             ? DefaultNoiseFiles()
                             : std::vector<std::string>{noise_file});
}

}  // namespace rmt
