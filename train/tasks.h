// The three synthetic memory tasks of the RMT scaling report (Bulatov et al.
// 2023), and unanswerable questions, generated deterministically from a seed:
//
//   memorize           a fact at the start, noise, a question at the end
//                      ("Mary travelled to the office." ... "Where is Mary?")
//   detect & memorize  the same fact at a random place inside the noise
//   reasoning          two facts of bAbI's two-argument relations at random
//                      places ("The hallway is east of the bathroom." ...
//                      "The bedroom is west of the bathroom." ... "What is
//                      the bathroom east of?" -> bedroom)
//   unknown            the facts of detect & memorize or of reasoning (half
//                      each) at random places, and a question about a person
//                      or room the document never mentions ("John went to
//                      the garden." ... "Where is Mary?" -> unknown; the two
//                      relations above ... "What is north of the kitchen?"
//                      -> unknown)
//
// A document is cut into segments of `segment_size` tokens; one of
// `segments` segments means the document's ids fill exactly that many
// segments (the last one may be partial). The question is asked as a final
// segment of its own, so the answer can only come through the memory.
//
// Thread-safety: TaskGenerator is immutable; Generate is thread-safe.
#ifndef RMT_TRAIN_TASKS_H_
#define RMT_TRAIN_TASKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer.h"
#include "train/noise_text.h"

namespace rmt {

// Evaluation seeds give the task two bits (train/evaluation.cc): at most
// four tasks.
enum class Task { kMemorize, kDetect, kReasoning, kUnknown };
inline constexpr Task kAllTasks[] = {Task::kMemorize, Task::kDetect,
                                     Task::kReasoning, Task::kUnknown};

// "memorize", "detect & memorize", "reasoning", "unknown".
std::string TaskName(Task task);
// Also accepts "detect" for detect & memorize.
absl::StatusOr<Task> ParseTask(const std::string& name);
// A comma-separated list of task names ("memorize,detect,reasoning,unknown").
absl::StatusOr<std::vector<Task>> ParseTaskList(const std::string& names);

enum class Split { kTrain = 0, kValidation = 1, kTest = 2 };
absl::StatusOr<Split> ParseSplit(const std::string& name);

// The seed of sample `index` of a split: the split occupies the top bits, so
// train, validation and test never share a seed.
uint64_t SampleSeed(Split split, uint32_t seed, uint64_t index);

struct Sample {
  Task task = Task::kMemorize;
  std::string document;  // text
  std::string question;
  std::string answer;
  int32_t label = 0;  // index of answer in TaskLabels()
  std::vector<int32_t> document_ids;
  std::vector<int32_t> question_ids;
  // Sentence indices of the facts among the document's sentences (the
  // unknown task's facts too, though its question needs none of them).
  std::vector<int> fact_positions;
};

// The answer of the unknown task's questions.
inline constexpr char kUnknownAnswer[] = "unknown";

// Every answer any task can give (the classifier's labels), sorted: the six
// rooms, then "unknown" (so a model trained before the unknown task, whose
// labels are the six rooms, keeps its label indices).
const std::vector<std::string>& TaskLabels();
// OK when a model with `labels` can learn `tasks`: its labels are
// TaskLabels(), or, where no task is kUnknown, TaskLabels() without
// "unknown" (a model trained before the unknown task). INVALID_ARGUMENT
// naming both lists otherwise.
absl::Status CheckModelLabels(const std::vector<std::string>& labels,
                              const std::vector<Task>& tasks);
// The labels of a new model for `tasks`: TaskLabels(), without "unknown"
// where no task asks it, so a model never carries a label it cannot learn.
std::vector<std::string> ModelLabels(const std::vector<Task>& tasks);
// The words of every fact and question template and entity, so a
// vocabulary can hold them whole.
std::vector<std::string> TemplateText();

// The training tools' vocabulary: `size` tokens built from the noise text
// (BuildVocabulary) with every TemplateText word kept whole.
absl::StatusOr<std::shared_ptr<const Vocabulary>> BuildTaskVocabulary(
    const NoiseText& noise, int size);

class TaskGenerator {
 public:
  // Tokenizes the noise once. Sentences longer than segment_size / 2 tokens
  // are dropped so documents fill their segments closely.
  static absl::StatusOr<TaskGenerator> Create(
      std::shared_ptr<const WordPieceTokenizer> tokenizer,
      const NoiseText& noise, int64_t segment_size);

  // A sample whose document fills exactly `segments` segments.
  Sample Generate(Task task, int segments, uint64_t seed) const;

  int64_t segment_size() const { return segment_size_; }

 private:
  struct Sentence {
    std::string text;
    std::vector<int32_t> ids;
  };

  TaskGenerator() = default;
  Sentence Tokenized(const std::string& text) const;

  std::shared_ptr<const WordPieceTokenizer> tokenizer_;
  std::vector<Sentence> noise_;
  int64_t segment_size_ = 0;
};

}  // namespace rmt

#endif  // RMT_TRAIN_TASKS_H_
