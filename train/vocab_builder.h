// Builds a WordPiece vocabulary (vocab.txt) from training text: the special
// tokens, every character seen both whole and as a "##" continuation (so no
// word ever becomes [UNK] wholesale), the required words, then the most
// frequent words up to the asked size.
#ifndef RMT_TRAIN_VOCAB_BUILDER_H_
#define RMT_TRAIN_VOCAB_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rmt {

struct VocabularyOptions {
  int size = 4000;    // at most this many tokens (characters always fit)
  int min_count = 2;  // a word must occur this often to be kept whole
  bool do_lower_case = true;
  // Kept whole whatever their frequency (task templates, entity names).
  std::vector<std::string> required_text;
};

// Tokens in id order: [PAD] [UNK] [CLS] [SEP] [MASK], characters, words.
absl::StatusOr<std::vector<std::string>> BuildVocabulary(
    const std::vector<std::string>& texts, const VocabularyOptions& options);

}  // namespace rmt

#endif  // RMT_TRAIN_VOCAB_BUILDER_H_
