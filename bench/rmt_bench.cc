// rmt-bench: throughput of the RMT segment step and of the engine.
//
// Table 1: one batched segment step (B full segments), tokens/s and GFLOP/s
//          against batch size.
// Table 2: S concurrent sessions, each streaming its own document through
//          the engine, against the raw batched step at batch S, in the same
//          run (the ratio is what the scheduler costs or saves); on CUDA the
//          engine runs twice, with CUDA graphs and eagerly.
// MFU is given against a matrix product timed in the same run and, with
// --datasheet_tflops, against the device's datasheet peak. On CUDA it also
// prints the attention kernel, device memory with --state_sessions sessions
// open, and device memory along one --long_document_tokens document.
//
//   rmt-bench --configs=small,base --batches=1,2,4,8
//
// With --worker it serves bench/bench_compare.py (make bench-compare), which
// races the raw step and the engine against bench/eager_reference.py.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/kernel_profile.h"
#include "model/attention_backend.h"
#include "model/device_memory.h"
#include "model/engine.h"
#include "model/guarded_main.h"
#include "model/host_allocator.h"
#include "model/model_directory.h"
#include "model/safetensors.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"
#include "model/torch_interop.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::vector<std::string>, configs,
          std::vector<std::string>({"small", "base"}),
          "Model sizes: small (4 layers, hidden 256, 128-token segments) "
          "and/or base (BERT-base: 12 layers, hidden 768, 499-token segments), "
          "or a model directory (e.g. models/rmt-babi).");
ABSL_FLAG(std::vector<std::string>, batches,
          std::vector<std::string>({"1", "2", "4", "8", "16"}),
          "Batch sizes for the step table.");
ABSL_FLAG(std::vector<std::string>, sessions,
          std::vector<std::string>({"1", "4", "16"}),
          "Concurrent sessions for the engine table.");
ABSL_FLAG(double, min_seconds, 2.0, "Least time spent per measurement.");
ABSL_FLAG(int, segments_per_session, 2,
          "Least segments each engine session sends (more to fill "
          "--min_seconds).");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda, cuda:N or auto.");
ABSL_FLAG(bool, tune_malloc, true,
          "Keep large buffers mapped between steps (KeepTensorBuffersMapped); "
          "false measures glibc's defaults.");
ABSL_FLAG(std::string, dtype, "float32",
          "Compute precision: float32, bfloat16 or float16 (memories keep "
          "the config's memory_dtype; --memory_dtype overrides it).");
ABSL_FLAG(std::string, memory_dtype, "",
          "Memory precision for random configs: float32, bfloat16, float16 "
          "(empty: the config's).");
ABSL_FLAG(int64_t, long_document_tokens, 0,
          "Also time one session reading a document of this many tokens "
          "through the engine (the paper's longest: 2043904); 0: skip.");
ABSL_FLAG(int64_t, state_sessions, 10000,
          "Sessions for the state-size line (weights + memories).");
ABSL_FLAG(double, datasheet_tflops, 0,
          "The device's datasheet peak for --dtype in TFLOP/s, dense (H100 "
          "SXM bf16: 989.4); adds an MFU column against it. 0: no column.");
ABSL_FLAG(std::vector<std::string>, profile_sessions, {},
          "On CUDA: after each config's tables, run the engine (CUDA graphs) "
          "with these many sessions under the torch profiler and print the "
          "kernels that took the most device time, e.g. 1,32.");
ABSL_FLAG(int, threads, 0,
          "Torch intra-op threads for both the raw step and the engine "
          "(0: one per hardware thread).");
ABSL_FLAG(bool, worker, false,
          "Serve bench/bench_compare.py: one command per stdin line, one "
          "reply line each (see Worker below).");
ABSL_FLAG(std::string, worker_dir, "build/bench-compare",
          "Where --worker writes model directories and check files.");

namespace rmt {
namespace {

using Clock = std::chrono::steady_clock;

ModelConfig BenchConfig(const std::string& name) {
  ModelConfig config;
  config.labels = {"a", "b", "c", "d"};
  config.type_vocab_size = 2;
  if (name == "base") {
    config.hidden_size = 768;
    config.num_hidden_layers = 12;
    config.num_attention_heads = 12;
    config.intermediate_size = 3072;
    config.max_position_embeddings = 512;
    config.rmt.num_mem_tokens = 10;
    config.rmt.segment_size = 499;
    config.vocab_size = 30522 + 10;
  } else {
    config.hidden_size = 256;
    config.num_hidden_layers = 4;
    config.num_attention_heads = 4;
    config.intermediate_size = 1024;
    config.max_position_embeddings = 256;
    config.rmt.num_mem_tokens = 10;
    config.rmt.segment_size = 128;
    config.vocab_size = 8000 + 10;
  }
  return config;
}

// Forward FLOPs of one full segment as the step computes them: projections
// and MLP (2 per multiply-add) plus the two attention matrix products, over
// all T positions in every layer but the last, which computes keys and
// values for all of them and the rest only for the 1 + m rows the step
// reads ([CLS] and the memory; see model/inference_encoder.h).
double SegmentFlops(const ModelConfig& c) {
  const double t = static_cast<double>(c.segment_length());
  const double r = static_cast<double>(1 + c.rmt.num_mem_tokens);
  const double d = static_cast<double>(c.hidden_size);
  const double i = static_cast<double>(c.intermediate_size);
  const double layer = 2 * t * (4 * d * d + 2 * d * i) + 4 * t * t * d;
  const double last =
      2 * t * 2 * d * d + 2 * r * (2 * d * d + 2 * d * i) + 4 * r * t * d;
  return (c.num_hidden_layers - 1) * layer + last;
}

std::vector<int32_t> FullSegment(std::mt19937& rng, const ModelConfig& config) {
  std::uniform_int_distribution<int32_t> id(5, config.content_vocab_size() - 1);
  std::vector<int32_t> segment(config.rmt.segment_size);
  for (auto& t : segment) t = id(rng);
  return segment;
}

void Synchronize(torch::Device device) {
  // A device-to-host copy waits for all queued work on the device.
  if (device.is_cuda()) torch::zeros({1}, torch::device(device)).cpu();
}

// Seconds per batched step of `batch` full segments (median-free mean over
// at least min_seconds, after one warm-up step).
double TimeStepOnThisThread(RmtModel& model, int batch, torch::Device device) {
  c10::InferenceMode inference;  // as the engine runs it
  std::mt19937 rng(batch);
  std::vector<std::vector<int32_t>> segments;
  for (int b = 0; b < batch; ++b)
    segments.push_back(FullSegment(rng, model->config()));
  torch::Tensor memory = model->InitMemory(batch).clone();
  // Warm up for a while, not one step: the first runs on a cold thread pool
  // and allocator measured up to 1.7x slower here.
  const auto warm_until = Clock::now() + std::chrono::milliseconds(500);
  do {
    memory = model->Step(memory, model->MakeBatch(segments)).clone();
    Synchronize(device);
  } while (Clock::now() < warm_until);
  const double min_seconds = absl::GetFlag(FLAGS_min_seconds);
  int steps = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    // A copy, as the engine writes memories to its pool: keeping a view would
    // keep the whole (B, T, d) output alive and change the allocator's
    // behaviour, not the model's cost.
    memory = model->Step(memory, model->MakeBatch(segments)).clone();
    Synchronize(device);
    ++steps;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed / steps;
}

// Runs on a fresh thread with the engine's thread settings, so the raw step
// and the engine's scheduler thread are measured alike.
double TimeStep(RmtModel& model, int batch, torch::Device device) {
  const int threads = at::get_num_threads();
  double seconds = 0;
  std::thread runner([&] {
    at::set_num_threads(threads);
    seconds = TimeStepOnThisThread(model, batch, device);
  });
  runner.join();
  return seconds;
}

// Tokens/s of `sessions` sessions each streaming its segments through the
// engine from its own thread. A failed segment fails the measurement: tokens
// that were never computed must not count as throughput.
absl::StatusOr<double> EngineTokensPerSecond(
    RmtModel& model, int sessions, double raw_step_seconds, bool cuda_graphs,
    std::optional<KernelProfile>* profile = nullptr) {
  EngineOptions options;
  options.cuda_graphs = cuda_graphs;
  options.max_batch = sessions;
  options.max_queue_delay = absl::Milliseconds(2);
  options.device_slots = sessions;
  options.intra_op_threads = at::get_num_threads();
  auto engine = Engine::Create(model.ptr(), options);
  if (!engine.ok()) return engine.status();
  // Enough segments for about min_seconds of work at the raw step's speed.
  const int per_session = std::max(
      absl::GetFlag(FLAGS_segments_per_session),
      static_cast<int>(absl::GetFlag(FLAGS_min_seconds) / raw_step_seconds) +
          1);
  std::vector<SlotId> slots;
  for (int s = 0; s < sessions; ++s) slots.push_back(*(*engine)->OpenSlot());
  // One warm-up segment each, so allocation and first-touch costs stay out.
  {
    std::mt19937 rng(0);
    std::vector<std::future<absl::Status>> warm;
    for (SlotId slot : slots) {
      warm.push_back(
          (*engine)->SubmitSegment(slot, FullSegment(rng, model->config())));
    }
    for (auto& w : warm) RETURN_IF_ERROR(w.get());
  }
  const torch::Device device = model->parameters().front().device();
  Synchronize(device);
  KernelProfiler profiler;
  if (profile != nullptr) RETURN_IF_ERROR(profiler.Start());
  absl::Mutex failure_mu;
  absl::Status failure ABSL_GUARDED_BY(failure_mu);
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int s = 0; s < sessions; ++s) {
    clients.emplace_back([&, s] {
      std::mt19937 rng(s + 1);
      std::vector<std::future<absl::Status>> results;
      for (int i = 0; i < per_session; ++i) {
        results.push_back((*engine)->SubmitSegment(
            slots[s], FullSegment(rng, model->config())));
      }
      for (auto& r : results) {
        absl::Status status = r.get();
        if (!status.ok()) {
          absl::MutexLock lock(&failure_mu);
          if (failure.ok()) failure = status;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  // Before any further device call: after a failed segment the device may
  // fail every call, and the failure is what must be reported.
  if (!failure.ok()) return failure;
  // A finished segment is one queued on the device: the clock stops when the
  // device has run them all, or the queue's tail would count as free.
  Synchronize(device);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (profile != nullptr) {
    ASSIGN_OR_RETURN(*profile, profiler.Stop(device));
  }
  const EngineCounters counters = (*engine)->Counters();
  std::fprintf(stderr,
               "engine: %lld batches, %lld rows, %lld failed, compute %.3f s\n",
               (long long)counters.batches, (long long)counters.rows,
               (long long)counters.failed_batches,
               absl::ToDoubleSeconds(counters.compute));
  return double(sessions) * per_session * model->config().rmt.segment_size /
         seconds;
}

// FLOP/s of a square matrix product in `dtype` on `device`: the peak that
// model FLOP utilisation is measured against, taken in the same run.
double MatmulPeakFlops(torch::Device device, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const int64_t n = device.is_cuda() ? 8192 : 2048;
  auto options = torch::TensorOptions().device(device).dtype(dtype);
  torch::Tensor a = torch::randn({n, n}, options);
  torch::Tensor b = torch::randn({n, n}, options);
  torch::Tensor c = a.mm(b);
  Synchronize(device);
  int reps = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    c = a.mm(b);
    Synchronize(device);
    ++reps;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < absl::GetFlag(FLAGS_min_seconds));
  return 2.0 * n * n * n * reps / elapsed;
}

// What the CUDA allocator holds now; nullopt off CUDA or in a build without
// RMT_CUDA.
std::optional<DeviceMemory> CudaMemory(torch::Device device) {
  if (!device.is_cuda()) return std::nullopt;
  absl::StatusOr<DeviceMemory> memory = DeviceMemoryInUse(device);
  if (!memory.ok()) return std::nullopt;
  return *memory;
}

double Megabytes(int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

// One session reading `tokens` tokens in full segments through the engine:
// the latency of a whole long document, segments strictly in order. On CUDA
// also the allocator's peak over the first eighth of the document and over
// the rest: equal peaks mean memory does not grow with the document.
absl::Status TimeLongDocument(RmtModel& model, int64_t tokens) {
  EngineOptions options;
  options.max_batch = 1;
  options.max_queue_delay = absl::ZeroDuration();
  options.device_slots = 1;
  options.intra_op_threads = at::get_num_threads();
  ASSIGN_OR_RETURN(auto engine, Engine::Create(model.ptr(), options));
  const torch::Device device = model->parameters().front().device();
  const int64_t segment_size = model->config().rmt.segment_size;
  const int64_t segments = (tokens + segment_size - 1) / segment_size;
  ASSIGN_OR_RETURN(SlotId slot, engine->OpenSlot());
  std::mt19937 rng(11);
  const std::vector<int32_t> segment = FullSegment(rng, model->config());
  RETURN_IF_ERROR(engine->SubmitSegment(slot, segment).get());  // warm-up
  Synchronize(device);  // the warm-up out of the timing, as in the engine's
  ResetPeakDeviceMemory(device).IgnoreError();  // UNIMPLEMENTED off CUDA
  std::optional<DeviceMemory> early;
  int64_t failed = 0;
  absl::Status first_failure;
  const auto start = Clock::now();
  // A bounded window of queued segments, as a streaming client keeps.
  std::deque<std::future<absl::Status>> window;
  auto wait_oldest = [&] {
    absl::Status status = window.front().get();
    window.pop_front();
    if (!status.ok() && failed++ == 0) first_failure = status;
  };
  for (int64_t i = 0; i < segments; ++i) {
    if (window.size() >= 8) wait_oldest();
    if (i == segments / 8) {
      early = CudaMemory(device);
      ResetPeakDeviceMemory(device).IgnoreError();
    }
    window.push_back(engine->SubmitSegment(slot, segment));
  }
  while (!window.empty()) wait_oldest();
  Synchronize(device);  // the last segments may still be queued there
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "\none session, %lld tokens (%lld segments of %lld): %.2f s, %.0f "
      "tokens/s\n",
      (long long)(segments * segment_size), (long long)segments,
      (long long)segment_size, seconds, segments * segment_size / seconds);
  if (failed > 0) {
    return absl::InternalError(
        absl::StrCat(failed,
                     " segments of the long document failed, the "
                     "first with ",
                     first_failure.ToString()));
  }
  const std::optional<DeviceMemory> late = CudaMemory(device);
  if (early && late) {
    std::printf(
        "device memory, peak allocated: %.1f MB over segments 1-%lld, %.1f MB "
        "over segments %lld-%lld\n",
        Megabytes(early->peak_allocated_bytes), (long long)(segments / 8),
        Megabytes(late->peak_allocated_bytes), (long long)(segments / 8 + 1),
        (long long)segments);
  }
  return absl::OkStatus();
}

// Device memory with `sessions` sessions open in one engine, their memories
// rows of its pool, and the peak while one full batch of them runs. The
// engine runs eagerly here: CUDA graphs add static buffers per batch-size
// bucket, a fixed cost that is not the sessions'. CUDA only (a no-op
// elsewhere).
absl::Status ReportSessionsMemory(RmtModel& model, int64_t sessions) {
  const torch::Device device = model->parameters().front().device();
  const std::optional<DeviceMemory> before = CudaMemory(device);
  if (!before) return absl::OkStatus();
  EngineOptions options;
  options.cuda_graphs = false;
  options.max_batch = static_cast<int>(std::min<int64_t>(sessions, 128));
  options.device_slots = sessions;
  options.intra_op_threads = at::get_num_threads();
  ASSIGN_OR_RETURN(auto engine, Engine::Create(model.ptr(), options));
  std::vector<SlotId> slots;
  for (int64_t s = 0; s < sessions; ++s) {
    ASSIGN_OR_RETURN(SlotId slot, engine->OpenSlot());
    slots.push_back(slot);
  }
  const std::optional<DeviceMemory> open = CudaMemory(device);
  RETURN_IF_ERROR(ResetPeakDeviceMemory(device));
  std::mt19937 rng(5);
  std::vector<std::future<absl::Status>> batch;
  for (int b = 0; b < options.max_batch; ++b) {
    batch.push_back(
        engine->SubmitSegment(slots[b], FullSegment(rng, model->config())));
  }
  for (auto& result : batch) RETURN_IF_ERROR(result.get());
  const std::optional<DeviceMemory> after = CudaMemory(device);
  if (!open || !after) return absl::InternalError("device memory unreadable");
  const int64_t engine_bytes = open->allocated_bytes - before->allocated_bytes;
  std::printf(
      "device memory, %lld sessions open: %.1f MB allocated (model %.1f MB; "
      "engine with its memory pool %.1f MB, %.0f bytes per session); peak "
      "%.1f MB while a batch of %d ran; %.1f MB reserved\n",
      (long long)sessions, Megabytes(open->allocated_bytes),
      Megabytes(before->allocated_bytes), Megabytes(engine_bytes),
      static_cast<double>(engine_bytes) / static_cast<double>(sessions),
      Megabytes(after->peak_allocated_bytes), options.max_batch,
      Megabytes(after->reserved_bytes));
  return absl::OkStatus();
}

std::vector<int> Ints(const std::vector<std::string>& values) {
  std::vector<int> out;
  for (const auto& v : values) out.push_back(std::stoi(v));
  return out;
}

// The model a --configs entry names, in eval mode on `device` in `dtype`. A
// model directory (e.g. models/rmt-babi) is measured as it is.
absl::StatusOr<RmtModel> BenchModel(const std::string& name,
                                    torch::Device device,
                                    torch::ScalarType dtype,
                                    std::optional<MemoryDType> memory_dtype) {
  ModelConfig config;
  RmtModel loaded{nullptr};
  if (std::filesystem::is_directory(name)) {
    auto bundle = LoadModelDirectory(name);
    if (!bundle.ok()) return bundle.status();
    config = (*bundle)->config;
    loaded = (*bundle)->model;
  } else {
    config = BenchConfig(name);
  }
  if (memory_dtype.has_value()) config.rmt.memory_dtype = *memory_dtype;
  RmtModel model = CreateRandomModel(
      config, loaded ? loaded->special_tokens() : SpecialTokens{}, 1);
  if (loaded) {
    torch::NoGradGuard no_grad;
    auto saved = loaded->named_parameters();
    for (auto& item : model->named_parameters()) {
      item.value().copy_(*saved.find(item.key()));
    }
  }
  model->eval();
  model->to(device, dtype);
  return model;
}

// Writes `model` as a model directory (a vocabulary of placeholders around
// the special tokens) for bench/eager_reference.py to load.
absl::Status SaveBenchModel(RmtModel& model, const std::string& directory) {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                     "[MASK]"};
  while (static_cast<int64_t>(tokens.size()) <
         model->config().content_vocab_size()) {
    tokens.push_back(absl::StrCat("[unused", tokens.size(), "]"));
  }
  ASSIGN_OR_RETURN(auto vocab, Vocabulary::FromTokens(tokens));
  const SpecialTokens special = SpecialTokensOf(*vocab);
  if (special.cls != model->special_tokens().cls ||
      special.sep != model->special_tokens().sep ||
      special.pad != model->special_tokens().pad) {
    return absl::InternalError("special token ids differ from the model's");
  }
  return SaveModelDirectory(directory, *model, *vocab);
}

// The C++ model's outputs on fixed input, in the golden format of
// tests/golden/README.md (tokens.{s}.{b}, memory.{s}, question.{b}, logits):
// three rows, three segments (all full, then mixed lengths) and a question
// each, run as the bench runs the step (InferenceMode).
absl::Status WriteCheckFile(RmtModel& model, const std::string& path) {
  c10::InferenceMode inference;
  const ModelConfig& config = model->config();
  const int full = static_cast<int>(config.rmt.segment_size);
  const std::vector<std::vector<int>> lengths = {
      {full, full, full}, {full, 1, full / 2 + 1}, {3, full, 2}};
  const std::vector<int> question_lengths = {full / 4 + 1, full, 2};
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> id(5, config.content_vocab_size() - 1);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> tokens(n);
    for (auto& t : tokens) t = id(rng);
    return tokens;
  };
  std::vector<torch::Tensor> keep_alive;
  std::vector<std::pair<std::string, TensorView>> tensors;
  auto add = [&](const std::string& name,
                 const torch::Tensor& value) -> absl::Status {
    keep_alive.push_back(value.to(torch::kCPU).contiguous());
    ASSIGN_OR_RETURN(TensorView view, ViewOfTensor(keep_alive.back()));
    tensors.emplace_back(name, view);
    return absl::OkStatus();
  };
  auto ids = [](const std::vector<int32_t>& tokens) {
    return torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()));
  };
  torch::Tensor memory = model->InitMemory(3).clone();
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<std::vector<int32_t>> segments;
    for (size_t b = 0; b < lengths[s].size(); ++b) {
      segments.push_back(random_tokens(lengths[s][b]));
      RETURN_IF_ERROR(
          add(absl::StrCat("tokens.", s, ".", b), ids(segments[b])));
    }
    memory = model->Step(memory, model->MakeBatch(segments));
    RETURN_IF_ERROR(add(absl::StrCat("memory.", s), memory.to(torch::kFloat)));
  }
  std::vector<std::vector<int32_t>> questions;
  for (size_t b = 0; b < question_lengths.size(); ++b) {
    questions.push_back(random_tokens(question_lengths[b]));
    RETURN_IF_ERROR(add(absl::StrCat("question.", b), ids(questions[b])));
  }
  RETURN_IF_ERROR(add(
      "logits",
      model->Answer(memory, model->MakeBatch(questions)).to(torch::kFloat)));
  return WriteSafetensors(path, tensors, {{"generator", "rmt-bench --worker"}});
}

// bench/bench_compare.py's side of the race. Commands, one per line:
//   prepare CONFIG            -> "prepared MODEL_DIR CHECK_FILE": the model
//                                directory the Python reference loads and
//                                this model's outputs to compare with
//   step CONFIG BATCH SECONDS -> "tokens_per_s X": the raw step, as above
//   engine CONFIG SESSIONS SECONDS -> "tokens_per_s X": the engine table's
//                                measurement
// Failures answer "error MESSAGE". Models stay loaded between commands.
int Worker(torch::Device device, torch::ScalarType dtype) {
  std::map<std::string, RmtModel> models;
  std::map<std::pair<std::string, int>, double> step_seconds;
  auto model_for = [&](const std::string& name) -> absl::StatusOr<RmtModel> {
    auto it = models.find(name);
    if (it != models.end()) return it->second;
    ASSIGN_OR_RETURN(RmtModel model,
                     BenchModel(name, device, dtype, std::nullopt));
    models.emplace(name, model);
    return model;
  };
  auto run = [&](const std::vector<std::string>& words)
      -> absl::StatusOr<std::string> {
    if (words.size() == 2 && words[0] == "prepare") {
      ASSIGN_OR_RETURN(RmtModel model, model_for(words[1]));
      std::filesystem::path name =
          std::filesystem::path(words[1]).lexically_normal();
      if (!name.has_filename()) name = name.parent_path();  // "dir/"
      const std::string base = name.filename().string();
      const std::string dir =
          (std::filesystem::path(absl::GetFlag(FLAGS_worker_dir)) / base)
              .string();
      std::error_code error;
      std::filesystem::create_directories(absl::GetFlag(FLAGS_worker_dir),
                                          error);
      if (error) {
        return absl::InternalError(absl::StrCat(absl::GetFlag(FLAGS_worker_dir),
                                                ": ", error.message()));
      }
      const std::string model_dir =
          std::filesystem::is_directory(words[1]) ? words[1] : dir + "-model";
      if (model_dir != words[1]) {
        RETURN_IF_ERROR(SaveBenchModel(model, model_dir));
      }
      const std::string check = dir + "-check.safetensors";
      RETURN_IF_ERROR(WriteCheckFile(model, check));
      return absl::StrCat("prepared ", model_dir, " ", check);
    }
    int count = 0;
    double seconds = 0;
    if (words.size() != 4 || !absl::SimpleAtoi(words[2], &count) ||
        !absl::SimpleAtod(words[3], &seconds) || count < 1) {
      return absl::InvalidArgumentError("unknown command");
    }
    ASSIGN_OR_RETURN(RmtModel model, model_for(words[1]));
    absl::SetFlag(&FLAGS_min_seconds, seconds);
    const int64_t segment = model->config().rmt.segment_size;
    double& step = step_seconds[{words[1], count}];
    if (words[0] == "step") {
      step = TimeStep(model, count, device);
      return absl::StrFormat("tokens_per_s %.1f", count * segment / step);
    }
    if (words[0] == "engine") {
      if (step == 0) step = TimeStep(model, count, device);  // sizes the run
      ASSIGN_OR_RETURN(const double tokens_per_second,
                       EngineTokensPerSecond(model, count, step,
                                             /*cuda_graphs=*/true));
      return absl::StrFormat("tokens_per_s %.1f", tokens_per_second);
    }
    return absl::InvalidArgumentError("unknown command");
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> words =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (words.empty()) continue;
    absl::StatusOr<std::string> reply;
    try {
      reply = run(words);
    } catch (const std::exception& e) {
      reply = absl::InternalError(e.what());
    }
    std::cout << (reply.ok() ? *reply
                             : absl::StrCat("error ", line, ": ",
                                            reply.status().ToString()))
              << std::endl;
  }
  return 0;
}

// The engine with CUDA graphs on `sessions` sessions, for about min_seconds,
// under the torch profiler: where the device time goes.
absl::Status PrintKernelProfile(RmtModel& model, int sessions) {
  const double raw_seconds =
      TimeStep(model, sessions, model->parameters().front().device());
  std::optional<KernelProfile> profile;
  ASSIGN_OR_RETURN(double tps,
                   EngineTokensPerSecond(model, sessions, raw_seconds,
                                         /*cuda_graphs=*/true, &profile));
  std::printf(
      "\nkernel profile, engine with CUDA graphs, %d sessions (%.0f tokens/s "
      "while profiled):\n\n%s",
      sessions, tps, FormatKernelProfile(*profile, /*top=*/12).c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

int Main() {
  // The same thread count for the raw step (this thread) and the engine's
  // scheduler thread, or the comparison measures thread settings.
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  auto device = ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::cerr << device.status() << "\n";
    return 1;
  }
  auto dtype = ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) {
    std::cerr << dtype.status() << "\n";
    return 1;
  }
  if (absl::GetFlag(FLAGS_worker)) return Worker(*device, *dtype);
  if (!absl::GetFlag(FLAGS_profile_sessions).empty() && !device->is_cuda()) {
    std::cerr << "--profile_sessions profiles GPU kernels: it needs --device "
                 "cuda\n";
    return 1;
  }
  std::printf(
      "device: %s, torch threads: %d, torch %s, tuned malloc: %s, compute "
      "%s\n",
      device->str().c_str(), at::get_num_threads(), TORCH_VERSION,
      absl::GetFlag(FLAGS_tune_malloc) ? "yes" : "no",
      std::string(c10::toString(*dtype)).c_str());
  std::optional<MemoryDType> memory_dtype;
  for (MemoryDType d :
       {MemoryDType::kFloat32, MemoryDType::kBFloat16, MemoryDType::kFloat16}) {
    if (MemoryDTypeName(d) == absl::GetFlag(FLAGS_memory_dtype))
      memory_dtype = d;
  }
  if (!absl::GetFlag(FLAGS_memory_dtype).empty() && !memory_dtype) {
    std::cerr << "--memory_dtype: use float32, bfloat16 or float16\n";
    return 1;
  }
  const double peak = MatmulPeakFlops(*device, *dtype);
  std::printf("matmul peak (%s, same run): %.1f GFLOP/s\n",
              std::string(c10::toString(*dtype)).c_str(), peak / 1e9);
  for (const std::string& name : absl::GetFlag(FLAGS_configs)) {
    auto prepared = BenchModel(name, *device, *dtype, memory_dtype);
    if (!prepared.ok()) {
      std::cerr << prepared.status() << "\n";
      return 1;
    }
    RmtModel model = *prepared;
    const ModelConfig& config = model->config();
    std::printf(
        "\n### %s: %lld layers, hidden %lld, %lld heads, segment %lld + %lld "
        "memory tokens\n\n",
        name.c_str(), (long long)config.num_hidden_layers,
        (long long)config.hidden_size, (long long)config.num_attention_heads,
        (long long)config.rmt.segment_size,
        (long long)config.rmt.num_mem_tokens);
    {
      const int64_t state =
          config.rmt.num_mem_tokens * config.hidden_size *
          c10::elementSize(ScalarTypeOf(config.rmt.memory_dtype));
      int64_t weights = 0;
      for (const auto& p : model->parameters()) {
        weights += p.numel() * static_cast<int64_t>(p.element_size());
      }
      const int64_t n = absl::GetFlag(FLAGS_state_sessions);
      std::printf(
          "state per session: %lld bytes (%lld x %lld %s); weights %.1f MB; "
          "%lld sessions: %.1f MB\n\n",
          (long long)state, (long long)config.rmt.num_mem_tokens,
          (long long)config.hidden_size,
          std::string(MemoryDTypeName(config.rmt.memory_dtype)).c_str(),
          weights / 1e6, (long long)n, (weights + n * state) / 1e6);
    }
    {
      const StepAttentionBackends attention =
          ChooseStepAttention(config, *device, *dtype, /*batch=*/1);
      std::printf("attention kernel: %s for full segments, %s with padding\n\n",
                  attention.full_segments.c_str(), attention.padded.c_str());
    }
    // MFU columns: against the matrix product timed above and, when given,
    // the datasheet peak.
    const double datasheet = absl::GetFlag(FLAGS_datasheet_tflops) * 1e12;
    const std::string mfu_header =
        datasheet > 0 ? "MFU (matmul) | MFU (datasheet)" : "MFU (matmul)";
    const std::string mfu_rule = datasheet > 0 ? "---:|---:" : "---:";
    auto mfu = [&](double tokens_per_second) {
      const double flops =
          tokens_per_second * SegmentFlops(config) / config.rmt.segment_size;
      std::string cells = absl::StrFormat("%.1f%%", 100 * flops / peak);
      if (datasheet > 0) {
        absl::StrAppendFormat(&cells, " | %.1f%%", 100 * flops / datasheet);
      }
      return cells;
    };
    std::printf("| batch | ms/step | tokens/s | GFLOP/s | %s | vs batch 1 |\n",
                mfu_header.c_str());
    std::printf("|---:|---:|---:|---:|%s|---:|\n", mfu_rule.c_str());
    std::map<int, double> step_tokens_per_second;
    double base = 0;
    for (int batch : Ints(absl::GetFlag(FLAGS_batches))) {
      const double seconds = TimeStep(model, batch, *device);
      const double tps = batch * config.rmt.segment_size / seconds;
      if (base == 0) base = tps;
      step_tokens_per_second[batch] = tps;
      const double flops = batch * SegmentFlops(config) / seconds;
      std::printf("| %d | %.2f | %.0f | %.1f | %s | %.2fx |\n", batch,
                  seconds * 1e3, tps, flops / 1e9, mfu(tps).c_str(),
                  tps / base);
      std::fflush(stdout);
    }
    // On CUDA the engine runs with CUDA graphs (its default) and eagerly;
    // the raw step is always eager.
    const bool graphs = device->is_cuda();
    if (graphs) {
      std::printf(
          "\n| sessions | engine tokens/s, CUDA graphs | %s | engine tokens/s, "
          "eager | graphs / eager | raw step tokens/s, eager (batch = "
          "sessions) | engine (graphs) / raw |\n",
          mfu_header.c_str());
      std::printf("|---:|---:|%s|---:|---:|---:|---:|\n", mfu_rule.c_str());
    } else {
      std::printf(
          "\n| sessions | engine tokens/s | %s | raw step tokens/s (batch = "
          "sessions) | engine / raw |\n",
          mfu_header.c_str());
      std::printf("|---:|---:|%s|---:|---:|\n", mfu_rule.c_str());
    }
    for (int sessions : Ints(absl::GetFlag(FLAGS_sessions))) {
      const double raw = step_tokens_per_second.count(sessions)
                             ? step_tokens_per_second[sessions]
                             : sessions * config.rmt.segment_size /
                                   TimeStep(model, sessions, *device);
      const double raw_seconds = sessions * config.rmt.segment_size / raw;
      absl::StatusOr<double> engine_tps =
          EngineTokensPerSecond(model, sessions, raw_seconds, graphs);
      absl::StatusOr<double> eager_tps =
          graphs ? EngineTokensPerSecond(model, sessions, raw_seconds,
                                         /*cuda_graphs=*/false)
                 : engine_tps;
      for (const auto* result : {&engine_tps, &eager_tps}) {
        if (!result->ok()) {
          std::printf("FAILED: the engine with %d sessions: %s\n", sessions,
                      result->status().ToString().c_str());
          return 1;
        }
      }
      if (graphs) {
        std::printf("| %d | %.0f | %s | %.0f | %.2f | %.0f | %.2f |\n",
                    sessions, *engine_tps, mfu(*engine_tps).c_str(), *eager_tps,
                    *engine_tps / *eager_tps, raw, *engine_tps / raw);
      } else {
        std::printf("| %d | %.0f | %s | %.0f | %.2f |\n", sessions, *engine_tps,
                    mfu(*engine_tps).c_str(), raw, *engine_tps / raw);
      }
      std::fflush(stdout);
    }
    absl::Status done = absl::OkStatus();
    if (device->is_cuda()) {
      std::printf("\n");
      done = ReportSessionsMemory(model, absl::GetFlag(FLAGS_state_sessions));
    }
    if (done.ok() && absl::GetFlag(FLAGS_long_document_tokens) > 0) {
      done = TimeLongDocument(model, absl::GetFlag(FLAGS_long_document_tokens));
    }
    // Out before the next measurement's engine line on stderr, so a log
    // of both keeps their order.
    std::fflush(stdout);
    for (int sessions : Ints(absl::GetFlag(FLAGS_profile_sessions))) {
      if (!done.ok()) break;
      done = PrintKernelProfile(model, sessions);
    }
    if (!done.ok()) {
      std::printf("FAILED: %s\n", done.ToString().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-bench", [&] {
    rmt::ParseProgramFlags(argc, argv,
                           "Step and engine throughput tables.\n"
                           "  rmt-bench [--configs ...]");
    if (absl::GetFlag(FLAGS_tune_malloc)) rmt::KeepTensorBuffersMapped();
    return rmt::Main();
  });
}
