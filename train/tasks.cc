#include "train/tasks.h"

#include <algorithm>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/status_macros.h"
#include "train/vocab_builder.h"

namespace rmt {
namespace {

// bAbI's rooms: the answers of every task.
const char* const kLocations[] = {"bathroom", "bedroom", "garden",
                                  "hallway",  "kitchen", "office"};
const char* const kPersons[] = {"Mary",  "John", "Sandra", "Daniel",
                                "Julie", "Bill", "Fred",   "Jeff",
                                "Emily", "Lily", "Anna",   "Tom"};
const char* const kMoves[] = {"moved to", "went to", "journeyed to",
                              "travelled to", "went back to"};
const char* const kDirections[] = {"north", "south", "east", "west"};

int Opposite(int direction) { return direction ^ 1; }  // north<->south, ...

template <typename T, size_t N>
const T& Pick(const T (&items)[N], std::mt19937_64& rng) {
  return items[std::uniform_int_distribution<size_t>(0, N - 1)(rng)];
}

int LabelOf(const std::string& location) {
  const auto& labels = TaskLabels();
  return static_cast<int>(std::find(labels.begin(), labels.end(), location) -
                          labels.begin());
}

struct Facts {
  std::vector<std::string> sentences;
  std::string question;
  std::string answer;
};

Facts PersonAtLocation(std::mt19937_64& rng) {
  const std::string person = Pick(kPersons, rng);
  const std::string location = Pick(kLocations, rng);
  return Facts{
      {absl::StrCat(person, " ", Pick(kMoves, rng), " the ", location, ".")},
      absl::StrCat("Where is ", person, "?"),
      location};
}

// bAbI task 4: "The a is d1 of the b." and "The c is d2 of the b." with
// d1 != d2, and one of four questions each answerable from one fact.
Facts TwoArgumentRelations(std::mt19937_64& rng) {
  std::vector<std::string> rooms(std::begin(kLocations), std::end(kLocations));
  std::shuffle(rooms.begin(), rooms.end(), rng);
  const std::string& a = rooms[0];
  const std::string& b = rooms[1];
  const std::string& c = rooms[2];
  std::uniform_int_distribution<int> direction(0, 3);
  const int d1 = direction(rng);
  int d2 = direction(rng);
  while (d2 == d1) d2 = direction(rng);
  Facts facts;
  facts.sentences = {
      absl::StrCat("The ", a, " is ", kDirections[d1], " of the ", b, "."),
      absl::StrCat("The ", c, " is ", kDirections[d2], " of the ", b, ".")};
  switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
    case 0:
      facts.question =
          absl::StrCat("What is ", kDirections[d1], " of the ", b, "?");
      facts.answer = a;
      break;
    case 1:
      facts.question =
          absl::StrCat("What is ", kDirections[d2], " of the ", b, "?");
      facts.answer = c;
      break;
    case 2:  // b is opposite(d1) of a
      facts.question = absl::StrCat("What is the ", b, " ",
                                    kDirections[Opposite(d1)], " of?");
      facts.answer = a;
      break;
    default:
      facts.question = absl::StrCat("What is the ", b, " ",
                                    kDirections[Opposite(d2)], " of?");
      facts.answer = c;
      break;
  }
  if (std::uniform_int_distribution<int>(0, 1)(rng) == 1) {
    std::swap(facts.sentences[0], facts.sentences[1]);
  }
  return facts;
}

}  // namespace

std::string TaskName(Task task) {
  switch (task) {
    case Task::kMemorize:
      return "memorize";
    case Task::kDetect:
      return "detect & memorize";
    case Task::kReasoning:
      return "reasoning";
  }
  return "memorize";
}

absl::StatusOr<Task> ParseTask(const std::string& name) {
  if (name == "memorize") return Task::kMemorize;
  if (name == "detect" || name == "detect & memorize" ||
      name == "detect_memorize") {
    return Task::kDetect;
  }
  if (name == "reasoning") return Task::kReasoning;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown task \"", name, "\" (memorize, detect, reasoning)"));
}

absl::StatusOr<std::vector<Task>> ParseTaskList(const std::string& names) {
  std::vector<Task> tasks;
  for (absl::string_view name : absl::StrSplit(names, ',')) {
    ASSIGN_OR_RETURN(Task task, ParseTask(std::string(name)));
    tasks.push_back(task);
  }
  return tasks;
}

absl::StatusOr<std::shared_ptr<const Vocabulary>> BuildTaskVocabulary(
    const NoiseText& noise, int size) {
  VocabularyOptions options;
  options.size = size;
  options.required_text = TemplateText();
  ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                   BuildVocabulary(noise.sentences(), options));
  return Vocabulary::FromTokens(std::move(tokens), "built vocabulary");
}

absl::StatusOr<Split> ParseSplit(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "validation" || name == "val") return Split::kValidation;
  if (name == "test") return Split::kTest;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown split \"", name, "\" (train, validation, test)"));
}

uint64_t SampleSeed(Split split, uint32_t seed, uint64_t index) {
  // split: 2 bits | seed: 32 bits | index: 30 bits.
  return (static_cast<uint64_t>(split) << 62) |
         (static_cast<uint64_t>(seed) << 30) | (index & ((1ull << 30) - 1));
}

const std::vector<std::string>& TaskLabels() {
  static const auto* labels = new std::vector<std::string>(
      std::begin(kLocations), std::end(kLocations));
  return *labels;
}

std::vector<std::string> TemplateText() {
  std::vector<std::string> text;
  for (const char* person : kPersons) {
    for (const char* move : kMoves) {
      for (const char* location : kLocations) {
        text.push_back(absl::StrCat(person, " ", move, " the ", location, "."));
      }
    }
    text.push_back(absl::StrCat("Where is ", person, "?"));
  }
  for (const char* direction : kDirections) {
    for (const char* location : kLocations) {
      text.push_back(absl::StrCat("The ", location, " is ", direction,
                                  " of the ", location, "."));
      text.push_back(
          absl::StrCat("What is ", direction, " of the ", location, "?"));
      text.push_back(
          absl::StrCat("What is the ", location, " ", direction, " of?"));
    }
  }
  return text;
}

absl::StatusOr<TaskGenerator> TaskGenerator::Create(
    std::shared_ptr<const WordPieceTokenizer> tokenizer, const NoiseText& noise,
    int64_t segment_size) {
  if (segment_size < 32) {
    return absl::InvalidArgumentError(
        "segment_size must be at least 32 tokens to hold two facts");
  }
  TaskGenerator generator;
  generator.tokenizer_ = std::move(tokenizer);
  generator.segment_size_ = segment_size;
  // Noise must not mention the tasks' people or rooms, or a question could
  // have two answers.
  absl::flat_hash_set<std::string> reserved;
  for (const char* p : kPersons) reserved.insert(absl::AsciiStrToLower(p));
  for (const char* l : kLocations) reserved.insert(l);
  for (const std::string& text : noise.sentences()) {
    auto words = generator.tokenizer_->SplitWords(text);
    if (!words.ok()) continue;
    if (std::any_of(words->begin(), words->end(), [&](const std::string& w) {
          return reserved.contains(w);
        })) {
      continue;
    }
    Sentence sentence = generator.Tokenized(text);
    if (!sentence.ids.empty() &&
        static_cast<int64_t>(sentence.ids.size()) <= segment_size / 2) {
      generator.noise_.push_back(std::move(sentence));
    }
  }
  if (generator.noise_.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("only ", generator.noise_.size(),
                     " usable noise sentences (need 16 or more)"));
  }
  return generator;
}

TaskGenerator::Sentence TaskGenerator::Tokenized(
    const std::string& text) const {
  auto ids = tokenizer_->Encode(text);
  return Sentence{text, ids.ok() ? *std::move(ids) : std::vector<int32_t>{}};
}

Sample TaskGenerator::Generate(Task task, int segments, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  Facts facts = task == Task::kReasoning ? TwoArgumentRelations(rng)
                                         : PersonAtLocation(rng);
  std::vector<Sentence> fact_sentences;
  int64_t fact_tokens = 0;
  for (const auto& text : facts.sentences) {
    fact_sentences.push_back(Tokenized(text));
    fact_tokens += static_cast<int64_t>(fact_sentences.back().ids.size());
  }
  // Fill with noise to within half a segment of the target, so the ids span
  // exactly `segments` segments (every noise sentence is at most half one).
  const int64_t target =
      static_cast<int64_t>(std::max(segments, 1)) * segment_size_;
  int64_t remaining = target - fact_tokens;
  std::vector<const Sentence*> sentences;
  std::uniform_int_distribution<size_t> pick(0, noise_.size() - 1);
  for (int misses = 0; remaining > 0 && misses < 64;) {
    const Sentence& candidate = noise_[pick(rng)];
    if (static_cast<int64_t>(candidate.ids.size()) <= remaining) {
      sentences.push_back(&candidate);
      remaining -= static_cast<int64_t>(candidate.ids.size());
      misses = 0;
    } else {
      ++misses;
    }
  }

  Sample sample;
  sample.task = task;
  sample.question = facts.question;
  sample.answer = facts.answer;
  sample.label = LabelOf(facts.answer);
  sample.question_ids = Tokenized(facts.question).ids;
  // Where the facts go among the noise sentences.
  std::vector<int> slots;
  const int n = static_cast<int>(sentences.size());
  if (task == Task::kMemorize) {
    slots = {0};
  } else {
    std::uniform_int_distribution<int> slot(0, n);
    for (size_t i = 0; i < fact_sentences.size(); ++i)
      slots.push_back(slot(rng));
    std::sort(slots.begin(), slots.end());
  }
  size_t next_fact = 0;
  int position = 0;
  auto append = [&](const Sentence& sentence) {
    if (!sample.document.empty()) sample.document.push_back(' ');
    sample.document += sentence.text;
    sample.document_ids.insert(sample.document_ids.end(), sentence.ids.begin(),
                               sentence.ids.end());
    ++position;
  };
  for (int i = 0; i <= n; ++i) {
    while (next_fact < slots.size() && slots[next_fact] == i) {
      sample.fact_positions.push_back(position);
      append(fact_sentences[next_fact++]);
    }
    if (i < n) append(*sentences[i]);
  }
  return sample;
}

}  // namespace rmt
