// rmt-cli: answers a question about a text file with an RMT model, on this
// machine, without a server. It streams the file in chunks through the
// streaming tokenizer, cuts the ids into segments, runs them through the
// engine one after another (the memory carries the document), and asks.
//
//   rmt-cli --model models/rmt-babi --doc story.txt --question "Where is Mary?"
//
// Without --model it creates a small randomly initialised model and says
// plainly that its answers mean nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/engine.h"
#include "model/file_util.h"
#include "model/guarded_main.h"
#include "model/host_allocator.h"
#include "model/model_directory.h"
#include "model/segmenter.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"
#include "model/torch_interop.h"
#include "model/untrained_model.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::string, model, "",
          "Model directory (config.json, vocab.txt, model.safetensors). Empty: "
          "models/rmt-babi if it exists, else an UNTRAINED random model "
          "created in --untrained_dir.");
ABSL_FLAG(std::string, untrained_dir, "build/untrained-model",
          "Where to create the untrained model when --model is empty.");
ABSL_FLAG(std::string, doc, "", "Text file to read (UTF-8).");
ABSL_FLAG(std::string, question, "", "The question to ask about the file.");
ABSL_FLAG(int, top_k, 3, "How many labels to print, best first.");
ABSL_FLAG(int, chunk_bytes, 64 * 1024, "Bytes read from the file at a time.");
ABSL_FLAG(std::string, device, "auto", "cpu, cuda, cuda:N or auto.");
ABSL_FLAG(std::string, dtype, "float32",
          "Compute precision: float32, bfloat16 or float16 (weights are "
          "converted at load; memories keep the config's memory_dtype).");

namespace rmt {
namespace {

absl::Status Run() {
  const std::string doc = absl::GetFlag(FLAGS_doc);
  const std::string question = absl::GetFlag(FLAGS_question);
  if (doc.empty() || question.empty()) {
    return absl::InvalidArgumentError("--doc and --question are required");
  }
  ASSIGN_OR_RETURN(ResolvedModel resolved,
                   ResolveModelDirectory(absl::GetFlag(FLAGS_model),
                                         absl::GetFlag(FLAGS_untrained_dir)));
  const std::string& model_dir = resolved.directory;
  const bool untrained = resolved.untrained;
  if (untrained) {
    std::cerr << "WARNING: no --model given and no bundled model; using an "
                 "UNTRAINED model with random weights in "
              << model_dir << ". Its answers mean nothing.\n";
  }
  ASSIGN_OR_RETURN(torch::Device device,
                   ParseDevice(absl::GetFlag(FLAGS_device)));
  LoadOptions load;
  load.device = device;
  ASSIGN_OR_RETURN(load.dtype, ParseComputeDType(absl::GetFlag(FLAGS_dtype)));
  ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(model_dir, load));
  const ModelConfig& config = bundle->config;
  std::cerr << absl::StrFormat(
      "model %s (%s): %d layers, hidden %d, %d memory tokens, segments of %d "
      "tokens, %s attention, on %s\n",
      bundle->name, bundle->fingerprint, config.num_hidden_layers,
      config.hidden_size, config.rmt.num_mem_tokens, config.rmt.segment_size,
      MemoryAttentionName(config.rmt.memory_attention), device.str());

  EngineOptions engine_options;
  engine_options.max_batch = 1;
  engine_options.device_slots = 1;
  // Torch's default for a new thread may be one core; use them all.
  engine_options.intra_op_threads =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(auto engine,
                   Engine::Create(bundle->model.ptr(), engine_options));
  ASSIGN_OR_RETURN(SlotId slot, engine->OpenSlot());

  // Read whole (a document is small beside the ids it becomes) and fed in
  // --chunk_bytes pieces, as a server receives it.
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(doc));
  StreamingTokenizer stream(bundle->tokenizer.get());
  Segmenter segmenter(config.rmt.segment_size);
  std::vector<std::future<absl::Status>> segments;
  int64_t tokens = 0;
  auto submit = [&](std::vector<int32_t> segment) {
    tokens += static_cast<int64_t>(segment.size());
    segments.push_back(engine->SubmitSegment(slot, std::move(segment)));
  };
  const auto start = std::chrono::steady_clock::now();
  const size_t chunk_bytes = std::max(1, absl::GetFlag(FLAGS_chunk_bytes));
  std::vector<int32_t> ids;
  for (size_t offset = 0; offset < text.size(); offset += chunk_bytes) {
    ids.clear();
    RETURN_IF_ERROR(
        stream.Feed(absl::string_view(text).substr(offset, chunk_bytes), &ids));
    for (auto& segment : segmenter.Append(ids)) submit(std::move(segment));
  }
  ids.clear();
  RETURN_IF_ERROR(stream.Finish(&ids));
  for (auto& segment : segmenter.Append(ids)) submit(std::move(segment));
  if (auto tail = segmenter.Flush()) submit(std::move(*tail));
  for (auto& result : segments) RETURN_IF_ERROR(result.get());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cerr << absl::StrFormat(
      "read %d tokens in %d segments in %.2f s (%.0f tokens/s)\n", tokens,
      segments.size(), seconds, seconds > 0 ? tokens / seconds : 0.0);

  ASSIGN_OR_RETURN(std::vector<int32_t> question_ids,
                   bundle->tokenizer->Encode(question));
  if (question_ids.empty()) {
    return absl::InvalidArgumentError("the question has no tokens");
  }
  if (static_cast<int64_t>(question_ids.size()) > config.rmt.segment_size) {
    std::cerr << "question truncated to " << config.rmt.segment_size
              << " tokens\n";
    question_ids.resize(config.rmt.segment_size);
  }
  ASSIGN_OR_RETURN(
      Answer answer,
      engine->SubmitQuestion(slot, question_ids, absl::GetFlag(FLAGS_top_k))
          .get());
  std::cout << "Q: " << question << "\n";
  std::cout << "A: " << answer.top_k[0].label
            << (untrained ? "   (UNTRAINED MODEL: meaningless)" : "") << "\n";
  for (const ScoredLabel& scored : answer.top_k) {
    std::cout << absl::StrFormat("   %-20s %.4f\n", scored.label, scored.score);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-cli", [&] {
    rmt::ParseProgramFlags(
        argc, argv,
        "Answers a question about a text file with an RMT model.\n"
        "  rmt-cli --model DIR --doc FILE --question \"...\"");
    rmt::KeepTensorBuffersMapped();
    absl::Status status = rmt::Run();
    if (!status.ok()) {
      std::cerr << "rmt-cli: " << status << "\n";
      return 1;
    }
    return 0;
  });
}
