// The memory-task generator, the vocabulary builder, the trainer and the
// evaluator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "tests/tiny_model.h"
#include "tests/train_fixture.h"
#include "train/evaluation.h"
#include "train/label_extension.h"
#include "train/noise_text.h"
#include "train/tasks.h"
#include "train/trainer.h"
#include "train/vocab_builder.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSegmentSize = 40;

using ::rmt::testing::LogLines;
using ::rmt::testing::TrainFixture;

// Built once: the fortunes files stand in for the noise, as in training.
const TrainFixture& Shared() {
  static const TrainFixture* fixture =
      ::rmt::testing::MakeTrainFixture({"/usr/share/games/fortunes/science",
                                        "/usr/share/games/fortunes/computers"},
                                       kSegmentSize)
          .release();
  return *fixture;
}

std::vector<std::string> Sentences(const std::string& document) {
  std::vector<std::string> out;
  std::string current;
  for (size_t i = 0; i < document.size(); ++i) {
    current.push_back(document[i]);
    const char c = document[i];
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == document.size() || document[i + 1] == ' ')) {
      out.push_back(current);
      current.clear();
      ++i;  // the space
    }
  }
  return out;
}

// An independent solver: reads the facts back out of the text and answers,
// "unknown" when no fact does.
std::string Solve(const Sample& sample) {
  static const std::regex move(
      R"(^(\w+) (?:moved|went|journeyed|travelled|went back) to the (\w+)\.$)");
  static const std::regex relation(R"(^The (\w+) is (\w+) of the (\w+)\.$)");
  static const std::regex where(R"(^Where is (\w+)\?$)");
  static const std::regex what_of(R"(^What is (\w+) of the (\w+)\?$)");
  static const std::regex what_is_the(R"(^What is the (\w+) (\w+) of\?$)");
  const std::map<std::string, std::string> opposite = {{"north", "south"},
                                                       {"south", "north"},
                                                       {"east", "west"},
                                                       {"west", "east"}};
  std::map<std::string, std::string> location;
  std::vector<std::array<std::string, 3>> relations;  // a is d of b
  std::smatch m;
  for (const std::string& s : Sentences(sample.document)) {
    if (std::regex_match(s, m, move)) location[m[1]] = m[2];
    if (std::regex_match(s, m, relation))
      relations.push_back({m[1], m[2], m[3]});
  }
  if (std::regex_match(sample.question, m, where)) {
    auto it = location.find(m[1]);
    return it == location.end() ? "unknown" : it->second;
  }
  if (std::regex_match(sample.question, m, what_of)) {
    for (const auto& r : relations) {
      if (r[1] == m[1].str() && r[2] == m[2].str()) return r[0];
    }
  }
  if (std::regex_match(sample.question, m, what_is_the)) {
    // "the b is d of X" means "X is opposite(d) of b".
    for (const auto& r : relations) {
      if (r[2] == m[1].str() && r[1] == opposite.at(m[2])) return r[0];
    }
  }
  return "unknown";
}

// The person or room a question asks about.
std::string Subject(const std::string& question) {
  static const std::regex where(R"(^Where is (\w+)\?$)");
  static const std::regex what_of(R"(^What is \w+ of the (\w+)\?$)");
  static const std::regex what_is_the(R"(^What is the (\w+) \w+ of\?$)");
  std::smatch m;
  if (std::regex_match(question, m, where) ||
      std::regex_match(question, m, what_of) ||
      std::regex_match(question, m, what_is_the)) {
    return m[1];
  }
  return "";
}

TEST(TasksTest, LabelsKeepTheRoomsIndicesAndEndWithUnknown) {
  const auto& labels = TaskLabels();
  EXPECT_TRUE(std::is_sorted(labels.begin(), labels.end()));
  EXPECT_THAT(labels,
              ::testing::ElementsAre("bathroom", "bedroom", "garden", "hallway",
                                     "kitchen", "office", "unknown"));
  // The bundled model, trained without the unknown task, has the six rooms.
  auto bundled = ModelConfig::LoadFile(
      absl::StrCat(RMT_SOURCE_DIR, "/models/rmt-babi/config.json"));
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  EXPECT_EQ(bundled->labels,
            std::vector<std::string>(labels.begin(), labels.end() - 1));
  auto tasks = ParseTaskList("memorize,detect,reasoning,unknown");
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_THAT(*tasks, ::testing::ElementsAreArray(kAllTasks));
  EXPECT_EQ(TaskName(Task::kUnknown), "unknown");
}

// A model trained without the unknown task (the bundled one) may go on
// learning the other tasks, never the unknown task itself.
TEST(TasksTest, ModelLabelsMayLackUnknownWhereNoTaskAsksIt) {
  const std::vector<std::string>& all = TaskLabels();
  const std::vector<std::string> rooms(all.begin(), all.end() - 1);
  const std::vector<Task> known = {Task::kMemorize, Task::kReasoning};
  const std::vector<Task> with_unknown = {Task::kMemorize, Task::kUnknown};
  EXPECT_TRUE(CheckModelLabels(all, known).ok());
  EXPECT_TRUE(CheckModelLabels(all, with_unknown).ok());
  EXPECT_TRUE(CheckModelLabels(rooms, known).ok());
  EXPECT_EQ(CheckModelLabels(rooms, with_unknown).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::string> reordered = rooms;
  std::swap(reordered[0], reordered[1]);
  EXPECT_EQ(CheckModelLabels(reordered, known).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckModelLabels({"yes", "no"}, known).code(),
            absl::StatusCode::kInvalidArgument);
  // A new model gets only the labels its tasks can answer.
  EXPECT_EQ(ModelLabels(known), rooms);
  EXPECT_EQ(ModelLabels(with_unknown), all);
}

// A vocabulary that spells the tasks' words out character by character
// needs several times the tokens: a segment that cannot hold two facts is
// refused up front, and one that can gives documents of exactly the asked
// segments.
TEST(TasksTest, RefusesASegmentTooShortForTwoFactsInTheVocabulary) {
  const auto& f = Shared();
  std::vector<std::string> tokens = {"[PAD]",  "[UNK]", "[CLS]", "[SEP]",
                                     "[MASK]", ".",     "?"};
  for (char c = 'a'; c <= 'z'; ++c) {
    tokens.push_back(std::string(1, c));
    tokens.push_back(absl::StrCat("##", std::string(1, c)));
  }
  auto vocab = Vocabulary::FromTokens(tokens);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto characters =
      std::make_shared<WordPieceTokenizer>(*vocab, TokenizerOptions{});
  auto refused = TaskGenerator::Create(characters, f.noise, kSegmentSize);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              ::testing::HasSubstr("cannot hold two facts"));

  auto generator = TaskGenerator::Create(characters, f.noise, 96);
  ASSERT_TRUE(generator.ok()) << generator.status();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Sample sample = generator->Generate(Task::kReasoning, 2, seed);
    EXPECT_EQ(SegmentCount(sample.document_ids, 96), 2) << sample.document;
  }
}

TEST(TasksTest, SamplesAreDeterministicInTheSeed) {
  const auto& generator = *Shared().generator;
  for (Task task : kAllTasks) {
    Sample a = generator.Generate(task, 3, 42);
    Sample b = generator.Generate(task, 3, 42);
    Sample c = generator.Generate(task, 3, 43);
    EXPECT_EQ(a.document, b.document);
    EXPECT_EQ(a.question, b.question);
    EXPECT_EQ(a.document_ids, b.document_ids);
    EXPECT_NE(a.document, c.document);
  }
}

TEST(TasksTest, AnswersFollowFromTheFactsInTheText) {
  const auto& generator = *Shared().generator;
  for (Task task : kAllTasks) {
    for (uint64_t seed = 0; seed < 200; ++seed) {
      Sample sample = generator.Generate(task, 2, seed);
      ASSERT_EQ(Solve(sample), sample.answer) << TaskName(task) << "\n"
                                              << sample.document << "\n"
                                              << sample.question;
      EXPECT_EQ(TaskLabels()[sample.label], sample.answer);
    }
  }
}

TEST(TasksTest, FactsArePlacedAsEachTaskSays) {
  const auto& generator = *Shared().generator;
  std::set<int> detect_positions;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Sample memorize = generator.Generate(Task::kMemorize, 3, seed);
    EXPECT_THAT(memorize.fact_positions, ::testing::ElementsAre(0));
    Sample detect = generator.Generate(Task::kDetect, 3, seed);
    ASSERT_EQ(detect.fact_positions.size(), 1u);
    detect_positions.insert(detect.fact_positions[0]);
    Sample reasoning = generator.Generate(Task::kReasoning, 3, seed);
    ASSERT_EQ(reasoning.fact_positions.size(), 2u);
    const auto sentences = Sentences(reasoning.document);
    for (int position : reasoning.fact_positions) {
      ASSERT_LT(position, static_cast<int>(sentences.size()));
      EXPECT_THAT(sentences[position], ::testing::StartsWith("The "));
    }
  }
  // Detect & memorize hides its fact anywhere, not only at the start.
  EXPECT_GT(detect_positions.size(), 5u);
  EXPECT_GT(*detect_positions.rbegin(), 3);
}

// Half the unknown samples ask where a person is, half ask a reasoning
// question; either way about someone or somewhere the document never names,
// though it holds the facts of the task it imitates.
TEST(TasksTest, UnknownQuestionsAskAboutWhatTheDocumentNeverNames) {
  const auto& generator = *Shared().generator;
  static const std::regex move(
      R"(^\w+ (?:moved|went|journeyed|travelled|went back) to the \w+\.$)");
  static const std::regex relation(R"(^The \w+ is \w+ of the \w+\.$)");
  const int unknown_label = static_cast<int>(TaskLabels().size()) - 1;
  int about_person = 0;
  int about_room = 0;
  std::set<int> positions;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    Sample sample = generator.Generate(Task::kUnknown, 3, seed);
    EXPECT_EQ(sample.answer, "unknown");
    EXPECT_EQ(sample.label, unknown_label);
    const std::string subject = Subject(sample.question);
    ASSERT_FALSE(subject.empty()) << sample.question;
    const std::regex named(absl::StrCat("\\b", subject, "\\b"),
                           std::regex::icase);
    ASSERT_FALSE(std::regex_search(sample.document, named))
        << sample.question << "\n"
        << sample.document;
    const auto sentences = Sentences(sample.document);
    const bool person = absl::StartsWith(sample.question, "Where is ");
    ASSERT_EQ(sample.fact_positions.size(), person ? 1u : 2u)
        << sample.question;
    for (int position : sample.fact_positions) {
      ASSERT_LT(position, static_cast<int>(sentences.size()));
      EXPECT_TRUE(
          std::regex_match(sentences[position], person ? move : relation))
          << sentences[position];
      positions.insert(position);
    }
    ++(person ? about_person : about_room);
  }
  EXPECT_GT(about_person, 100);
  EXPECT_GT(about_room, 100);
  // The facts sit anywhere in the noise, not only at the start.
  EXPECT_GT(*positions.rbegin(), 3);
}

// A vocabulary built with TemplateText holds every word a question or fact
// can use whole.
TEST(TasksTest, TemplateTextCoversEveryQuestionAndFact) {
  const auto& f = Shared();
  std::set<std::string> words;
  for (const std::string& text : TemplateText()) {
    auto split = f.tokenizer->SplitWords(text);
    ASSERT_TRUE(split.ok());
    words.insert(split->begin(), split->end());
  }
  for (Task task : kAllTasks) {
    for (uint64_t seed = 0; seed < 100; ++seed) {
      Sample sample = f.generator->Generate(task, 1, seed);
      std::vector<std::string> texts = {sample.question};
      const auto sentences = Sentences(sample.document);
      for (int position : sample.fact_positions) {
        texts.push_back(sentences[position]);
      }
      for (const std::string& text : texts) {
        auto split = f.tokenizer->SplitWords(text);
        ASSERT_TRUE(split.ok());
        for (const std::string& word : *split) {
          EXPECT_TRUE(words.count(word)) << word << " in " << text;
        }
      }
    }
  }
}

TEST(TasksTest, DocumentsFillExactlyTheAskedSegments) {
  const auto& f = Shared();
  for (int segments : {1, 2, 5, 9}) {
    for (Task task : kAllTasks) {
      Sample sample = f.generator->Generate(task, segments, segments * 7 + 1);
      EXPECT_EQ(SegmentCount(sample.document_ids, kSegmentSize), segments);
      // The ids are the tokenizer's ids of the text.
      EXPECT_EQ(*f.tokenizer->Encode(sample.document), sample.document_ids);
      EXPECT_EQ(*f.tokenizer->Encode(sample.question), sample.question_ids);
    }
  }
}

TEST(TasksTest, SplitsNeverShareSeeds) {
  for (uint32_t seed : {0u, 1u, 0xffffffffu}) {
    for (uint64_t i : {0ull, 1ull, (1ull << 30) - 1}) {
      EXPECT_NE(SampleSeed(Split::kTrain, seed, i),
                SampleSeed(Split::kTest, seed, i));
      EXPECT_NE(SampleSeed(Split::kTrain, seed, i),
                SampleSeed(Split::kValidation, seed, i));
      EXPECT_EQ(SampleSeed(Split::kTest, seed, i) >> 62, 2u);
    }
  }
}

TEST(VocabularyBuilderTest, KeepsEveryCharacterAndTheTemplates) {
  const auto& f = Shared();
  EXPECT_EQ(f.vocab->Token(0), "[PAD]");
  for (const char* word : {"kitchen", "mary", "journeyed", "north", "?"}) {
    EXPECT_GE(f.vocab->Find(word), 0) << word;
  }
  EXPECT_GE(f.vocab->Find("q"), 0);
  EXPECT_GE(f.vocab->Find("##q"), 0);
  // No noise sentence contains an [UNK] word.
  for (size_t i = 0; i < f.noise.sentences().size(); i += 7) {
    auto ids = f.tokenizer->Encode(f.noise.sentences()[i]);
    ASSERT_TRUE(ids.ok());
    EXPECT_THAT(*ids, ::testing::Not(::testing::Contains(f.vocab->unk_id())))
        << f.noise.sentences()[i];
  }
}

ModelConfig SmokeConfig(const Vocabulary& vocab) {
  return ::rmt::testing::SmokeConfig(vocab, kSegmentSize);
}

TEST(TrainerTest, LossFallsWithinSeconds) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  TrainOptions options;
  options.tasks = {Task::kMemorize};
  options.target_segments = 1;
  options.batch_size = 16;
  options.learning_rate = 3e-3;
  options.warmup_steps = 5;
  options.max_steps = 150;
  options.eval_every = 25;
  options.eval_samples = 16;
  options.advance_accuracy = 2.0;  // never stop early
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 150);
  auto lines = LogLines(log.str());
  ASSERT_EQ(lines.size(), 6u);
  const double first = lines.front()["loss"].get<double>();
  const double last = lines.back()["loss"].get<double>();
  EXPECT_LT(last, first * 0.8) << log.str();
}

// With task_curriculum the tasks join one at a time at one segment, then
// documents grow; with every validation passing (threshold 0) each
// evaluation is one curriculum step, and the run stops once everything is
// in at the target length.
TEST(TrainerTest, TaskCurriculumAddsTasksThenSegments) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  TrainOptions options;
  options.tasks = {Task::kMemorize, Task::kDetect, Task::kReasoning,
                   Task::kUnknown};
  options.task_curriculum = true;
  options.target_segments = 2;
  options.batch_size = 3;
  options.max_steps = 20;
  options.eval_every = 1;
  options.eval_samples = 2;
  options.advance_accuracy = 0.0;
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  auto lines = LogLines(log.str());
  std::vector<std::pair<int, int>> stages;  // (tasks, segments) per line
  for (const auto& line : lines) {
    stages.emplace_back(line["tasks"].get<int>(), line["segments"].get<int>());
  }
  const std::vector<std::pair<int, int>> expected = {
      {1, 1}, {2, 1}, {3, 1}, {4, 1}, {4, 2}};
  EXPECT_EQ(stages, expected) << log.str();
  EXPECT_EQ(result->steps, 5);
  EXPECT_EQ(result->segments, 2);
}

// Reader assist: every question reads its document's states for
// assist_steps steps, then a shrinking share over assist_ramp steps; the
// one-segment stage's budget only starts once the assist is over.
TEST(TrainerTest, ReaderAssistIsWithdrawnBeforeDocumentsGrow) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  TrainOptions options;
  options.tasks = {Task::kReasoning};
  options.target_segments = 2;
  options.batch_size = 4;
  options.max_steps = 12;
  options.eval_every = 1;
  options.eval_samples = 2;
  options.advance_accuracy = 2.0;  // stages advance by budget only
  options.stage_max_steps = 2;
  options.assist_steps = 4;
  options.assist_ramp = 4;
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<double> assisted;
  std::vector<int> segments;
  for (const auto& line : LogLines(log.str())) {
    assisted.push_back(line["assisted"].get<double>());
    segments.push_back(line["segments"].get<int>());
  }
  const std::vector<double> expected_assisted = {1,   1,    1, 1, 1, 0.75,
                                                 0.5, 0.25, 0, 0, 0, 0};
  // The assist is over from step 9; the stage's two steps are 9 and 10.
  const std::vector<int> expected_segments = {1, 1, 1, 1, 1, 1,
                                              1, 1, 1, 1, 2, 2};
  EXPECT_EQ(assisted, expected_assisted) << log.str();
  EXPECT_EQ(segments, expected_segments) << log.str();

  // Passing validation does not grow documents during the assist either:
  // with every validation passing, the second segment comes at step 9 and
  // the run stops there, at its target.
  options.advance_accuracy = 0.0;
  std::stringstream passing;
  result = Train(model, *f.vocab, *f.generator, options, &passing);
  ASSERT_TRUE(result.ok()) << result.status();
  segments.clear();
  for (const auto& line : LogLines(passing.str())) {
    segments.push_back(line["segments"].get<int>());
  }
  EXPECT_EQ(segments, (std::vector<int>{1, 1, 1, 1, 1, 1, 1, 1, 2}))
      << passing.str();

  options.assist_steps = -1;
  EXPECT_EQ(
      Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, ResumesFromItsCheckpoint) {
  const auto& f = Shared();
  const fs::path dir =
      fs::temp_directory_path() / absl::StrCat("rmt_train_resume_", ::getpid());
  fs::remove_all(dir);
  TrainOptions options;
  options.out_dir = dir.string();
  options.tasks = {Task::kMemorize, Task::kReasoning};
  options.batch_size = 4;
  options.max_steps = 10;
  options.eval_every = 5;
  options.eval_samples = 4;
  options.checkpoint_every = 10;
  {
    RmtModel model =
        CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
    ASSERT_TRUE(Train(model, *f.vocab, *f.generator, options, nullptr).ok());
  }
  ASSERT_TRUE(fs::exists(dir / "checkpoint" / "optimizer.pt"));
  options.resume = true;
  options.max_steps = 15;
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 99);
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 15);
  auto lines = LogLines(log.str());
  ASSERT_EQ(lines.size(), 1u);  // only step 15 was left to evaluate
  EXPECT_EQ(lines[0]["step"].get<int>(), 15);
  EXPECT_TRUE(LoadModelDirectory(dir.string()).ok());
  fs::remove_all(dir);
}

TEST(TrainerTest, StopsAfterTheStepThatCrossesItsTimeBudgetAndSaves) {
  const auto& f = Shared();
  const fs::path dir =
      fs::temp_directory_path() / absl::StrCat("rmt_train_budget_", ::getpid());
  fs::remove_all(dir);
  TrainOptions options;
  options.out_dir = dir.string();
  options.tasks = {Task::kMemorize};
  options.batch_size = 2;
  options.max_steps = 100;
  options.eval_every = 50;
  options.eval_samples = 2;
  options.checkpoint_every = 50;
  // Any step takes longer than this, so the first one crosses it: no wait
  // on the clock.
  options.max_seconds = 1e-9;
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 1);
  auto lines = LogLines(log.str());
  ASSERT_EQ(lines.size(), 1u);  // the last step is validated
  EXPECT_EQ(lines[0]["step"].get<int>(), 1);
  EXPECT_TRUE(LoadModelDirectory(dir.string()).ok());
  std::ifstream state(dir / "checkpoint" / "trainer_state.json");
  ASSERT_TRUE(state) << "no checkpoint to resume from";
  EXPECT_EQ(nlohmann::json::parse(state)["step"].get<int>(), 1);

  // --resume goes on from that step, with a budget of its own.
  options.resume = true;
  options.max_seconds = 0;
  options.max_steps = 3;
  std::stringstream resumed_log;
  auto resumed = Train(model, *f.vocab, *f.generator, options, &resumed_log);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->steps, 3);
  auto resumed_lines = LogLines(resumed_log.str());
  ASSERT_EQ(resumed_lines.size(), 1u);
  EXPECT_EQ(resumed_lines[0]["step"].get<int>(), 3);
  fs::remove_all(dir);

  options.out_dir.clear();
  options.resume = false;
  options.max_seconds = -1;
  EXPECT_EQ(
      Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, DecaysTheLearningRateToATenthAtLrDecaySteps) {
  const auto& f = Shared();
  TrainOptions options;
  options.tasks = {Task::kMemorize};
  options.batch_size = 2;
  options.learning_rate = 1e-3;
  options.warmup_steps = 1;
  options.max_steps = 10;
  options.eval_every = 10;
  options.eval_samples = 2;
  auto last_lr = [&](int lr_decay_steps) {
    options.lr_decay_steps = lr_decay_steps;
    RmtModel model =
        CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
    std::stringstream log;
    auto result = Train(model, *f.vocab, *f.generator, options, &log);
    EXPECT_TRUE(result.ok()) << result.status();
    auto lines = LogLines(log.str());
    return lines.empty() ? -1.0 : lines.back()["lr"].get<double>();
  };
  // The last step (index 9) is 8 of the 9 or 18 decay steps after warm-up.
  EXPECT_NEAR(last_lr(0), 1e-3 * (1 - 0.9 * 8 / 9), 1e-12);
  EXPECT_NEAR(last_lr(19), 1e-3 * (1 - 0.9 * 8 / 18), 1e-12);
  options.lr_decay_steps = -1;
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  EXPECT_EQ(
      Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, RefusesAModelWhoseLabelsAreNotTheTasks) {
  const auto& f = Shared();
  ModelConfig config = SmokeConfig(*f.vocab);
  config.labels.pop_back();  // a model from before the unknown task
  RmtModel model = CreateRandomModel(config, SpecialTokensOf(*f.vocab), 3);
  TrainOptions options;
  options.max_steps = 1;
  options.batch_size = 2;
  options.eval_samples = 2;
  EXPECT_EQ(
      Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
  // It can go on learning the tasks it has every answer of.
  options.tasks = {Task::kMemorize, Task::kDetect, Task::kReasoning};
  EXPECT_TRUE(Train(model, *f.vocab, *f.generator, options, nullptr).ok());
}

// The bundled model learns the unknown task with one more classifier row:
// what it answers already must not move, and the new row must start as a
// new model's, not as a copy or zeros.
TEST(LabelExtensionTest, AppendedLabelKeepsTheOldLogitsAndStartsFresh) {
  const auto& f = Shared();
  ModelConfig config = SmokeConfig(*f.vocab);
  config.labels.pop_back();
  RmtModel model = CreateRandomModel(config, SpecialTokensOf(*f.vocab), 3);
  {
    // Non-zero biases, so a bias that is not copied shows.
    torch::NoGradGuard no_grad;
    model->classifier->bias.normal_(0.0, 1.0);
  }
  auto grown = AppendLabels(model, {kUnknownAnswer}, 4);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ((*grown)->config().labels, TaskLabels());
  EXPECT_EQ(model->config().labels.size(), TaskLabels().size() - 1);

  torch::NoGradGuard no_grad;
  SegmentBatch batch = model->MakeBatch({{5, 6, 7, 8}, {9, 10}});
  torch::Tensor before = model->Answer(model->InitMemory(2), batch);
  torch::Tensor after = (*grown)->Answer((*grown)->InitMemory(2), batch);
  const int64_t rooms = before.size(1);
  ASSERT_EQ(after.size(1), rooms + 1);
  EXPECT_TRUE(torch::equal(after.slice(1, 0, rooms), before));
  torch::Tensor row = (*grown)->classifier->weight[rooms];
  const double std = row.std().item<double>();
  EXPECT_GT(std, 0.01);
  EXPECT_LT(std, 0.04);
  EXPECT_EQ((*grown)->classifier->bias[rooms].item<float>(), 0.0f);
  EXPECT_FALSE(torch::equal(after.select(1, rooms), after.select(1, 0)));

  EXPECT_EQ(AppendLabels(model, {}, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AppendLabels(model, {"garden"}, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AppendLabels(model, {"x", "x"}, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// start_segments is the first stage: documents start there and grow to the
// target; it cannot lie outside 1..target_segments.
TEST(TrainerTest, StartSegmentsIsTheFirstStage) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  TrainOptions options;
  options.tasks = {Task::kMemorize};
  options.start_segments = 2;
  options.target_segments = 3;
  options.batch_size = 2;
  options.max_steps = 10;
  options.eval_every = 1;
  options.eval_samples = 2;
  options.advance_accuracy = 0.0;  // every validation advances
  std::stringstream log;
  auto result = Train(model, *f.vocab, *f.generator, options, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<int> segments;
  for (const auto& line : LogLines(log.str())) {
    segments.push_back(line["segments"].get<int>());
  }
  EXPECT_EQ(segments, (std::vector<int>{2, 3})) << log.str();
  for (int start : {0, 4}) {
    options.start_segments = start;
    EXPECT_EQ(
        Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
        absl::StatusCode::kInvalidArgument)
        << start;
  }
  options.start_segments = 1;
  options.backprop_segments = -1;
  EXPECT_EQ(
      Train(model, *f.vocab, *f.generator, options, nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// save_dtype stores the final model's weights as bfloat16; training and the
// checkpoint stay float32, and the bf16 model answers as the float32 one.
TEST(TrainerTest, SavesTheFinalModelInTheAskedDtype) {
  const auto& f = Shared();
  const fs::path dir =
      fs::temp_directory_path() / absl::StrCat("rmt_train_bf16_", ::getpid());
  fs::remove_all(dir);
  TrainOptions options;
  options.out_dir = dir.string();
  options.tasks = {Task::kMemorize};
  options.batch_size = 2;
  options.max_steps = 2;
  options.eval_every = 2;
  options.eval_samples = 2;
  options.checkpoint_every = 2;  // after the last step: the same weights
  options.save_dtype = torch::kBFloat16;
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 3);
  ASSERT_TRUE(Train(model, *f.vocab, *f.generator, options, nullptr).ok());
  EXPECT_EQ(model->classifier->weight.scalar_type(), torch::kFloat);

  auto dtypes = [](const fs::path& model_dir) {
    std::set<std::string> names;
    auto file =
        SafetensorsFile::Open((model_dir / "model.safetensors").string());
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return names;
    for (const auto& [name, view] : (*file)->tensors()) {
      names.insert(std::string(DTypeName(view.dtype)));
    }
    return names;
  };
  EXPECT_THAT(dtypes(dir), ::testing::ElementsAre("BF16"));
  EXPECT_THAT(dtypes(dir / "checkpoint"), ::testing::ElementsAre("F32"));

  auto bf16 = LoadModelDirectory(dir.string());
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  auto f32 = LoadModelDirectory((dir / "checkpoint").string());
  ASSERT_TRUE(f32.ok()) << f32.status();
  std::vector<Sample> samples;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    samples.push_back(f.generator->Generate(Task::kDetect, 2, seed));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor expected = DocumentLogits(*(*f32)->model, samples);
  const torch::Tensor actual = DocumentLogits(*(*bf16)->model, samples);
  // bfloat16 keeps 8 significant bits (relative rounding up to 2^-8).
  EXPECT_LT(testing::NormRelativeError(actual, expected), 3e-2);
  EXPECT_GT(testing::NormRelativeError(actual, expected), 0.0);
  fs::remove_all(dir);
}

// The samples Accuracy draws for (task, segments) at the default options.
std::vector<Sample> TestSamples(Task task, int segments, int count) {
  std::vector<Sample> samples;
  for (int i = 0; i < count; ++i) {
    const uint64_t index = (static_cast<uint64_t>(task) << 28) |
                           (static_cast<uint64_t>(segments) << 14) |
                           static_cast<uint64_t>(i);
    samples.push_back(Shared().generator->Generate(
        task, segments, SampleSeed(Split::kTest, 1, index)));
  }
  return samples;
}

// A model that always answers the label `answer` of `labels`.
RmtModel ConstantModel(const std::vector<std::string>& labels,
                       const std::string& answer) {
  const auto& f = Shared();
  ModelConfig config = SmokeConfig(*f.vocab);
  config.labels = labels;
  RmtModel model = CreateRandomModel(config, SpecialTokensOf(*f.vocab), 5);
  torch::NoGradGuard no_grad;
  model->classifier->weight.zero_();
  model->classifier->bias.zero_();
  const auto it = std::find(labels.begin(), labels.end(), answer);
  model->classifier->bias[it - labels.begin()] = 10.0;
  return model;
}

// Accuracy compares label names, so a model whose labels are not
// TaskLabels() (other order, no "unknown") is scored right, and scores 0 on
// the unknown task.
TEST(EvaluationTest, ScoresLabelNamesAndZeroForAnAnswerTheModelLacks) {
  AccuracyOptions options;
  options.samples = 30;
  options.batch_size = 30;
  const std::vector<std::string> rooms_reversed = {
      "office", "kitchen", "hallway", "garden", "bedroom", "bathroom"};
  RmtModel says_garden = ConstantModel(rooms_reversed, "garden");
  int garden = 0;
  for (const Sample& sample : TestSamples(Task::kDetect, 2, options.samples)) {
    garden += sample.answer == "garden";
  }
  ASSERT_GT(garden, 0);
  const auto& f = Shared();
  EXPECT_DOUBLE_EQ(
      Accuracy(*says_garden, *f.generator, Task::kDetect, 2, options),
      double(garden) / options.samples);
  EXPECT_EQ(Accuracy(*says_garden, *f.generator, Task::kUnknown, 2, options),
            0.0);

  RmtModel says_unknown = ConstantModel(TaskLabels(), "unknown");
  EXPECT_EQ(Accuracy(*says_unknown, *f.generator, Task::kUnknown, 2, options),
            1.0);
  EXPECT_EQ(Accuracy(*says_unknown, *f.generator, Task::kReasoning, 2, options),
            0.0);
}

// The trainer's reader assist: the last `assisted` rows of a batch answer
// from their memory and their last segment's states, the others exactly as
// without it, on documents of several segments.
TEST(EvaluationTest, AssistedRowsAreTheLastOnesOfTheBatch) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 5);
  std::vector<Sample> batch;
  for (uint64_t i = 0; i < 4; ++i) {
    batch.push_back(f.generator->Generate(Task::kReasoning, 2,
                                          SampleSeed(Split::kTrain, 1, i)));
  }
  const torch::Tensor plain = DocumentLogits(*model, batch);
  const torch::Tensor assisted = DocumentLogits(*model, batch, 3);
  EXPECT_TRUE(torch::allclose(assisted[0], plain[0], 1e-5, 1e-6));
  for (int row = 1; row < 4; ++row) {
    EXPECT_FALSE(torch::allclose(assisted[row], plain[row], 1e-3, 1e-4)) << row;
  }
  EXPECT_TRUE(torch::allclose(DocumentLogits(*model, batch, 0), plain));
}

// Truncated backpropagation: the same logits, but the segments before the
// last `backprop_segments` pass no gradient back. The initial memory (the
// memory tokens' word-embedding rows) enters only the first segment, so
// only a run that backpropagates through it gives those rows a gradient.
TEST(EvaluationTest, BackpropSegmentsStopsGradientsBeforeTheLastSegments) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 5);
  std::vector<Sample> batch;
  for (uint64_t i = 0; i < 3; ++i) {
    batch.push_back(f.generator->Generate(Task::kDetect, 3,
                                          SampleSeed(Split::kTrain, 1, i)));
  }
  const int64_t memory_tokens = model->config().rmt.num_mem_tokens;
  torch::Tensor& embeddings = model->bert->embeddings->word_embeddings->weight;
  // The initial memory's gradient, and the logits, after one backward pass.
  auto run = [&](int64_t backprop_segments) {
    model->zero_grad();
    torch::Tensor logits =
        DocumentLogits(*model, batch, /*assisted=*/0, backprop_segments);
    logits.sum().backward();
    return std::make_pair(
        logits.detach(),
        embeddings.grad().slice(0, -memory_tokens).abs().sum().item<double>());
  };
  const auto [full_logits, full_gradient] = run(0);
  EXPECT_GT(full_gradient, 0.0);
  for (int64_t backprop : {1, 2}) {
    const auto [logits, gradient] = run(backprop);
    EXPECT_TRUE(torch::allclose(logits, full_logits, 1e-5, 1e-6)) << backprop;
    EXPECT_EQ(gradient, 0.0) << backprop;
  }
  // As many as the document has, or more: all of it, as without the limit.
  for (int64_t backprop : {3, 5}) {
    const auto [logits, gradient] = run(backprop);
    EXPECT_TRUE(torch::allclose(logits, full_logits, 1e-5, 1e-6)) << backprop;
    EXPECT_NEAR(gradient, full_gradient, 1e-6 * full_gradient) << backprop;
  }
}

TEST(EvaluationTest, BatchedAccuracyEqualsOneSampleAtATime) {
  const auto& f = Shared();
  RmtModel model =
      CreateRandomModel(SmokeConfig(*f.vocab), SpecialTokensOf(*f.vocab), 5);
  AccuracyOptions options;
  options.samples = 24;
  options.batch_size = 24;
  const double batched =
      Accuracy(*model, *f.generator, Task::kDetect, 3, options);
  options.batch_size = 1;
  const double single =
      Accuracy(*model, *f.generator, Task::kDetect, 3, options);
  EXPECT_DOUBLE_EQ(batched, single);
  EXPECT_GE(batched, 0.0);
  EXPECT_LE(batched, 1.0);
  // Counting is right: a model that always says label 0 scores the share of
  // samples whose answer is label 0.
  {
    torch::NoGradGuard no_grad;
    model->classifier->weight.zero_();
    model->classifier->bias.zero_();
    model->classifier->bias[0] = 10.0;
  }
  int label_zero = 0;
  for (int i = 0; i < options.samples; ++i) {
    const uint64_t index = (static_cast<uint64_t>(Task::kDetect) << 28) |
                           (3ull << 14) | static_cast<uint64_t>(i);
    label_zero +=
        f.generator
            ->Generate(Task::kDetect, 3, SampleSeed(Split::kTest, 1, index))
            .label == 0;
  }
  EXPECT_DOUBLE_EQ(Accuracy(*model, *f.generator, Task::kDetect, 3, options),
                   double(label_zero) / options.samples);
}

}  // namespace
}  // namespace rmt

namespace rmt {
namespace {

// The bundled reference model (models/rmt-babi) still answers: a guard on
// the committed weights and on everything that loads them. The full table
// is rmt-eval's (models/rmt-babi/eval.md); this checks a small sample.
TEST(BundledModelTest, AnswersMemoryTasksOnTestSamples) {
  auto bundle =
      LoadModelDirectory(absl::StrCat(RMT_SOURCE_DIR, "/models/rmt-babi"));
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  auto noise = NoiseText::Load(DefaultNoiseFiles());
  ASSERT_TRUE(noise.ok()) << noise.status();
  auto generator = TaskGenerator::Create((*bundle)->tokenizer, *noise,
                                         (*bundle)->config.rmt.segment_size);
  ASSERT_TRUE(generator.ok()) << generator.status();
  AccuracyOptions options;
  options.samples = 100;
  options.batch_size = 100;
  for (Task task : {Task::kMemorize, Task::kDetect}) {
    EXPECT_GE(Accuracy(*(*bundle)->model, *generator, task, 4, options), 0.97)
        << TaskName(task);
  }
}

}  // namespace
}  // namespace rmt
