// NoiseText: natural-language sentences to fill memory-task documents with.
//
// By default the sentences come from Debian's `fortunes` package (entries
// separated by "%" lines); any UTF-8 text file works too. Text is split into
// sentences at ., ! and ?; very short or very long sentences are dropped so a
// document can be filled to a target length closely.
//
//   ASSIGN_OR_RETURN(NoiseText noise, NoiseText::Load(DefaultNoiseFiles()));
//
// Thread-safety: immutable after Load.
#ifndef RMT_TRAIN_NOISE_TEXT_H_
#define RMT_TRAIN_NOISE_TEXT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rmt {

class NoiseText {
 public:
  // Sentences of `min_words` to `max_words` words from every file.
  // NOT_FOUND for a missing file, INVALID_ARGUMENT when no sentence remains.
  static absl::StatusOr<NoiseText> Load(const std::vector<std::string>& paths,
                                        int min_words = 4, int max_words = 24);
  static NoiseText FromSentences(std::vector<std::string> sentences);

  const std::vector<std::string>& sentences() const { return sentences_; }

 private:
  std::vector<std::string> sentences_;
};

// The fortunes package's English text files that exist on this machine
// (the offensive section and the .dat indexes excluded).
std::vector<std::string> DefaultNoiseFiles();

// The tools' --noise_file: that file, or DefaultNoiseFiles() when empty.
absl::StatusOr<NoiseText> LoadNoiseFileOrDefault(const std::string& noise_file);

}  // namespace rmt

#endif  // RMT_TRAIN_NOISE_TEXT_H_
