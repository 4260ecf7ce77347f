// rmt-datagen: the memory tasks as JSONL, and vocabularies for them.
//
//   rmt-datagen --tasks memorize,detect,reasoning,unknown --segments 4
//               --samples 1000 --split test --out test.jsonl
//   rmt-datagen --build_vocab vocab.txt --vocab_size 3000
//
// Each line: {"task", "document", "question", "answer", "segments",
// "fact_positions"}. Lengths are counted in tokens of --model's vocabulary
// (or of a vocabulary built from the noise when no model is given). Samples
// are deterministic in --seed; train, validation and test never share seeds.
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "model/config.h"
#include "model/guarded_main.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tools/program_flags.h"
#include "train/noise_text.h"
#include "train/tasks.h"

ABSL_FLAG(std::string, tasks, "memorize,detect,reasoning,unknown",
          "Tasks, comma-separated.");
ABSL_FLAG(int, samples, 100, "Samples per task.");
ABSL_FLAG(int, segments, 1, "Document length in segments.");
ABSL_FLAG(int, tokens, 0, "Document length in tokens (overrides --segments).");
ABSL_FLAG(int, segment_size, 48,
          "Tokens per segment when no --model is given.");
ABSL_FLAG(std::string, model, "",
          "Model directory whose vocabulary and segment size count lengths.");
ABSL_FLAG(std::string, split, "train", "train, validation or test.");
ABSL_FLAG(uint32_t, seed, 1, "Seed.");
ABSL_FLAG(std::string, noise_file, "",
          "Noise text file; empty: Debian's fortunes.");
ABSL_FLAG(std::string, out, "-", "JSONL output file, - for stdout.");
ABSL_FLAG(std::string, build_vocab, "",
          "Instead of samples, write a vocab.txt built from the noise and the "
          "task templates to this path.");
ABSL_FLAG(int, vocab_size, 3000, "Size of a built vocabulary.");

namespace rmt {
namespace {

absl::Status Run() {
  ASSIGN_OR_RETURN(NoiseText noise,
                   LoadNoiseFileOrDefault(absl::GetFlag(FLAGS_noise_file)));
  if (!absl::GetFlag(FLAGS_build_vocab).empty()) {
    ASSIGN_OR_RETURN(auto vocab, BuildTaskVocabulary(
                                     noise, absl::GetFlag(FLAGS_vocab_size)));
    RETURN_IF_ERROR(vocab->Save(absl::GetFlag(FLAGS_build_vocab)));
    std::cerr << "rmt-datagen: wrote " << vocab->size() << " tokens to "
              << absl::GetFlag(FLAGS_build_vocab) << "\n";
    return absl::OkStatus();
  }

  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  int64_t segment_size = absl::GetFlag(FLAGS_segment_size);
  if (!absl::GetFlag(FLAGS_model).empty()) {
    const std::string dir = absl::GetFlag(FLAGS_model);
    ASSIGN_OR_RETURN(tokenizer, LoadTokenizer(dir));
    ASSIGN_OR_RETURN(ModelConfig config,
                     ModelConfig::LoadFile(dir + "/config.json"));
    segment_size = config.rmt.segment_size;
  } else {
    ASSIGN_OR_RETURN(auto vocab, BuildTaskVocabulary(
                                     noise, absl::GetFlag(FLAGS_vocab_size)));
    tokenizer = std::make_shared<WordPieceTokenizer>(vocab, TokenizerOptions{});
  }
  ASSIGN_OR_RETURN(TaskGenerator generator,
                   TaskGenerator::Create(tokenizer, noise, segment_size));
  ASSIGN_OR_RETURN(Split split, ParseSplit(absl::GetFlag(FLAGS_split)));
  int segments = absl::GetFlag(FLAGS_segments);
  if (absl::GetFlag(FLAGS_tokens) > 0) {
    segments = static_cast<int>(
        (absl::GetFlag(FLAGS_tokens) + segment_size - 1) / segment_size);
  }
  if (segments < 1)
    return absl::InvalidArgumentError("--segments must be >= 1");

  std::ofstream file;
  std::ostream* out = &std::cout;
  if (absl::GetFlag(FLAGS_out) != "-") {
    file.open(absl::GetFlag(FLAGS_out), std::ios::trunc);
    if (!file) {
      return absl::InternalError(
          absl::StrCat(absl::GetFlag(FLAGS_out), ": cannot write"));
    }
    out = &file;
  }
  uint64_t index = 0;
  ASSIGN_OR_RETURN(std::vector<Task> tasks,
                   ParseTaskList(absl::GetFlag(FLAGS_tasks)));
  for (Task task : tasks) {
    for (int i = 0; i < absl::GetFlag(FLAGS_samples); ++i) {
      Sample sample = generator.Generate(
          task, segments,
          SampleSeed(split, absl::GetFlag(FLAGS_seed), index++));
      *out << nlohmann::json{{"task", TaskName(task)},
                             {"document", sample.document},
                             {"question", sample.question},
                             {"answer", sample.answer},
                             {"segments", segments},
                             {"fact_positions", sample.fact_positions}}
                  .dump()
           << "\n";
    }
  }
  out->flush();
  return *out ? absl::OkStatus() : absl::InternalError("write failed");
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-datagen", [&] {
    rmt::ParseProgramFlags(argc, argv,
                           "Writes synthetic RMT task samples as JSONL.\n"
                           "  rmt-datagen --task memorize --segments 8 ...");
    absl::Status status = rmt::Run();
    if (!status.ok()) {
      std::cerr << "rmt-datagen: " << status << "\n";
      return 1;
    }
    return 0;
  });
}
