// rmt-import: a Hugging Face BERT checkpoint directory -> an RMT model
// directory (tools/hf_import.h says what is kept and what is new).
//
//   rmt-import --from build/minilm/model --out models/minilm-rmt
//       --labels office,kitchen,garden --num_mem_tokens 8 --segment_size 32
//       --layers 3 --prune_corpus /usr/share/games/fortunes/fortunes
//       --truncate_positions --dtype bf16
//
// The result is loaded back once before the tool reports success.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/guarded_main.h"
#include "model/model_directory.h"
#include "model/status_macros.h"
#include "tools/hf_import.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::string, from, "",
          "Hugging Face checkpoint directory (config.json, vocab.txt, "
          "model.safetensors); required.");
ABSL_FLAG(std::string, out, "", "RMT model directory to write; required.");
ABSL_FLAG(std::string, labels, "",
          "Comma-separated answer labels of the new classifier; required.");
ABSL_FLAG(int, num_mem_tokens, 10, "Memory tokens appended to the vocabulary.");
ABSL_FLAG(int, segment_size, 0,
          "Content tokens per segment; 0: as many as the positions allow.");
ABSL_FLAG(std::string, memory_attention, "full", "full or bottleneck.");
ABSL_FLAG(std::string, memory_dtype, "float32",
          "Precision of sessions' memories: float32, bfloat16 or float16.");
ABSL_FLAG(int, layers, 0, "Keep only the first N encoder layers (0: all).");
ABSL_FLAG(std::string, prune_corpus, "",
          "Comma-separated text files: keep only the vocabulary pieces they "
          "tokenize to (and the special tokens).");
ABSL_FLAG(bool, truncate_positions, false,
          "Keep only the position embeddings one segment uses.");
ABSL_FLAG(std::string, dtype, "f32", "Stored weights: f32, f16 or bf16.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the memory rows and the classifier.");

namespace rmt {
namespace {

std::vector<std::string> SplitList(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

absl::StatusOr<ImportOptions> OptionsFromFlags() {
  ImportOptions options;
  options.labels = SplitList(absl::GetFlag(FLAGS_labels));
  options.num_mem_tokens = absl::GetFlag(FLAGS_num_mem_tokens);
  options.segment_size = absl::GetFlag(FLAGS_segment_size);
  if (options.segment_size < 0) {
    return absl::InvalidArgumentError("--segment_size must be >= 0");
  }
  const std::string attention = absl::GetFlag(FLAGS_memory_attention);
  if (attention == "bottleneck") {
    options.memory_attention = MemoryAttention::kBottleneck;
  } else if (attention != "full") {
    return absl::InvalidArgumentError(
        "--memory_attention must be full or bottleneck");
  }
  const std::string memory_dtype = absl::GetFlag(FLAGS_memory_dtype);
  bool known = false;
  for (MemoryDType dtype :
       {MemoryDType::kFloat32, MemoryDType::kBFloat16, MemoryDType::kFloat16}) {
    if (memory_dtype == MemoryDTypeName(dtype)) {
      options.memory_dtype = dtype;
      known = true;
    }
  }
  if (!known) {
    return absl::InvalidArgumentError(
        "--memory_dtype must be float32, bfloat16 or float16");
  }
  options.keep_layers = absl::GetFlag(FLAGS_layers);
  options.prune_corpus = SplitList(absl::GetFlag(FLAGS_prune_corpus));
  options.truncate_positions = absl::GetFlag(FLAGS_truncate_positions);
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype == "f32") {
    options.dtype = DType::kF32;
  } else if (dtype == "f16") {
    options.dtype = DType::kF16;
  } else if (dtype == "bf16") {
    options.dtype = DType::kBF16;
  } else {
    return absl::InvalidArgumentError("--dtype must be f32, f16 or bf16");
  }
  options.seed = absl::GetFlag(FLAGS_seed);
  return options;
}

absl::Status Run() {
  const std::string from = absl::GetFlag(FLAGS_from);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (from.empty() || out.empty()) {
    return absl::InvalidArgumentError("--from and --out are required");
  }
  ASSIGN_OR_RETURN(const ImportOptions options, OptionsFromFlags());
  ASSIGN_OR_RETURN(const ImportReport report,
                   ImportHfCheckpoint(from, out, options));
  ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(out));
  std::cout << absl::StrFormat(
      "rmt-import: %s -> %s\n  vocabulary %d -> %d tokens + %d memory\n"
      "  layers %d -> %d, hidden %d, segment %d tokens\n"
      "  %d parameters, %.1f MB of weights, fingerprint %s\n",
      from, out, report.source_vocab, report.kept_vocab,
      report.config.rmt.num_mem_tokens, report.source_layers,
      report.config.num_hidden_layers, report.config.hidden_size,
      report.config.rmt.segment_size, report.parameters,
      report.weight_bytes / 1e6, bundle->fingerprint);
  return absl::OkStatus();
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-import", [&] {
    rmt::ParseProgramFlags(
        argc, argv,
        "Turns a Hugging Face BERT checkpoint into an RMT model directory.\n"
        "  rmt-import --from HF_DIR --out DIR --labels a,b,c [...]");
    absl::Status status = rmt::Run();
    if (!status.ok()) {
      std::cerr << "rmt-import: " << status << "\n";
      return 1;
    }
    return 0;
  });
}
