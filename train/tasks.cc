#include "train/tasks.h"

#include <algorithm>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
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

// The question forms, shared by the generator and TemplateText.
std::string WhereIs(absl::string_view person) {
  return absl::StrCat("Where is ", person, "?");
}
// "What is north of the kitchen?": the room in `direction` of `room`.
std::string WhatIsDirectionOf(absl::string_view direction,
                              absl::string_view room) {
  return absl::StrCat("What is ", direction, " of the ", room, "?");
}
// "What is the kitchen north of?": the room that `room` is in `direction` of.
std::string WhatIsRoomDirectionOf(absl::string_view room,
                                  absl::string_view direction) {
  return absl::StrCat("What is the ", room, " ", direction, " of?");
}

struct Facts {
  std::vector<std::string> sentences;
  std::string question;
  std::string answer;
  // The people and rooms the sentences name.
  std::vector<std::string> named;
};

Facts PersonAtLocation(std::mt19937_64& rng) {
  const std::string person = Pick(kPersons, rng);
  const std::string location = Pick(kLocations, rng);
  return Facts{
      {absl::StrCat(person, " ", Pick(kMoves, rng), " the ", location, ".")},
      WhereIs(person),
      location,
      {person, location}};
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
  facts.named = {a, b, c};
  facts.sentences = {
      absl::StrCat("The ", a, " is ", kDirections[d1], " of the ", b, "."),
      absl::StrCat("The ", c, " is ", kDirections[d2], " of the ", b, ".")};
  switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
    case 0:
      facts.question = WhatIsDirectionOf(kDirections[d1], b);
      facts.answer = a;
      break;
    case 1:
      facts.question = WhatIsDirectionOf(kDirections[d2], b);
      facts.answer = c;
      break;
    case 2:  // b is opposite(d1) of a
      facts.question = WhatIsRoomDirectionOf(b, kDirections[Opposite(d1)]);
      facts.answer = a;
      break;
    default:
      facts.question = WhatIsRoomDirectionOf(b, kDirections[Opposite(d2)]);
      facts.answer = c;
      break;
  }
  if (std::uniform_int_distribution<int>(0, 1)(rng) == 1) {
    std::swap(facts.sentences[0], facts.sentences[1]);
  }
  return facts;
}

// The facts of detect & memorize or of reasoning (half each) and a question
// about a person or room they do not name. Noise names no person or room
// (TaskGenerator::Create), so nothing in the document answers it.
Facts UnanswerableQuestion(std::mt19937_64& rng) {
  const bool about_person = std::uniform_int_distribution<int>(0, 1)(rng) == 0;
  Facts facts =
      about_person ? PersonAtLocation(rng) : TwoArgumentRelations(rng);
  std::vector<std::string> strangers;
  if (about_person) {
    strangers.assign(std::begin(kPersons), std::end(kPersons));
  } else {
    strangers.assign(std::begin(kLocations), std::end(kLocations));
  }
  strangers.erase(std::remove_if(strangers.begin(), strangers.end(),
                                 [&](const std::string& name) {
                                   return std::find(facts.named.begin(),
                                                    facts.named.end(),
                                                    name) != facts.named.end();
                                 }),
                  strangers.end());
  const std::string& stranger = strangers[std::uniform_int_distribution<size_t>(
      0, strangers.size() - 1)(rng)];
  if (about_person) {
    facts.question = WhereIs(stranger);
  } else {
    const char* direction = Pick(kDirections, rng);
    facts.question = std::uniform_int_distribution<int>(0, 1)(rng) == 0
                         ? WhatIsDirectionOf(direction, stranger)
                         : WhatIsRoomDirectionOf(stranger, direction);
  }
  facts.answer = kUnknownAnswer;
  return facts;
}

Facts FactsOf(Task task, std::mt19937_64& rng) {
  switch (task) {
    case Task::kMemorize:
    case Task::kDetect:
      return PersonAtLocation(rng);
    case Task::kReasoning:
      return TwoArgumentRelations(rng);
    case Task::kUnknown:
      return UnanswerableQuestion(rng);
  }
  return PersonAtLocation(rng);
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
    case Task::kUnknown:
      return "unknown";
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
  if (name == "unknown") return Task::kUnknown;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown task \"", name, "\" (memorize, detect, reasoning, unknown)"));
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
  static const auto* labels = [] {
    auto* rooms = new std::vector<std::string>(std::begin(kLocations),
                                               std::end(kLocations));
    rooms->push_back(kUnknownAnswer);
    return rooms;
  }();
  return *labels;
}

namespace {

bool AsksUnknown(const std::vector<Task>& tasks) {
  return std::find(tasks.begin(), tasks.end(), Task::kUnknown) != tasks.end();
}

}  // namespace

std::vector<std::string> ModelLabels(const std::vector<Task>& tasks) {
  std::vector<std::string> labels = TaskLabels();
  // "unknown" is the last label, so a model without it has the others'
  // indices.
  if (!AsksUnknown(tasks)) labels.pop_back();
  return labels;
}

absl::Status CheckModelLabels(const std::vector<std::string>& labels,
                              const std::vector<Task>& tasks) {
  const std::vector<std::string>& all = TaskLabels();
  const bool asks_unknown = AsksUnknown(tasks);
  if (labels == all || labels == ModelLabels(tasks)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the model's labels (", absl::StrJoin(labels, ","),
                   ") are not the tasks' (", absl::StrJoin(all, ","),
                   asks_unknown ? ")" : ", or the same without unknown)"));
}

std::vector<std::string> TemplateText() {
  std::vector<std::string> text;
  for (const char* person : kPersons) {
    for (const char* move : kMoves) {
      for (const char* location : kLocations) {
        text.push_back(absl::StrCat(person, " ", move, " the ", location, "."));
      }
    }
    text.push_back(WhereIs(person));
  }
  for (const char* direction : kDirections) {
    for (const char* location : kLocations) {
      text.push_back(absl::StrCat("The ", location, " is ", direction,
                                  " of the ", location, "."));
      text.push_back(WhatIsDirectionOf(direction, location));
      text.push_back(WhatIsRoomDirectionOf(location, direction));
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
  // Reasoning's and unknown's two facts must fit one segment, or documents
  // span more segments than asked (and a batch mixes lengths). Word-level
  // vocabularies need a few tokens a sentence; one that cuts the templates'
  // words into characters needs several times more.
  size_t longest = 0;
  for (const std::string& text : TemplateText()) {
    longest = std::max(longest, generator.Tokenized(text).ids.size());
  }
  if (static_cast<int64_t>(2 * longest) > segment_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment_size ", segment_size,
        " cannot hold two facts in this vocabulary's tokens (up to ", longest,
        " a sentence): use a segment of at least ", 2 * longest,
        " or a vocabulary with whole-word tokens for the tasks' names"));
  }
  // Noise must not mention the tasks' people or rooms, or a question could
  // have two answers, or an unknown one an answer. Compared lower-cased, so a
  // cased tokenizer drops "Mary" too.
  absl::flat_hash_set<std::string> reserved;
  for (const char* p : kPersons) reserved.insert(absl::AsciiStrToLower(p));
  for (const char* l : kLocations) reserved.insert(l);
  for (const std::string& text : noise.sentences()) {
    auto words = generator.tokenizer_->SplitWords(text);
    if (!words.ok()) continue;
    if (std::any_of(words->begin(), words->end(), [&](const std::string& w) {
          return reserved.contains(absl::AsciiStrToLower(w));
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
  Facts facts = FactsOf(task, rng);
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
