// rmt-train: trains an RMT model on the memory tasks with the curriculum of
// the RMT papers and writes a model directory.
//
//   rmt-train --out models/rmt-babi --target_segments 4 --max_steps 3000
//
// The vocabulary is built from the noise text and the task templates; the
// model starts from BERT's random initialisation, or with --init from a model
// directory (one rmt-import made from a pretrained BERT), whose vocabulary,
// tokenizer options, architecture and rmt config it keeps. --resume
// continues from --out/checkpoint. Training is float32; --save_dtype stores
// the final model's weights as bfloat16 or float16 (checkpoints stay
// float32).
//
//   rmt-import --from build/minilm/model --out /tmp/minilm-rmt
//       --labels "$(rmt-train --print_labels)" --num_mem_tokens 8 ...
//   rmt-train --init /tmp/minilm-rmt --out models/minilm-babi ...
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/guarded_main.h"
#include "model/host_allocator.h"
#include "model/model_directory.h"
#include "model/status_macros.h"
#include "model/torch_interop.h"
#include "tools/program_flags.h"
#include "train/label_extension.h"
#include "train/noise_text.h"
#include "train/tasks.h"
#include "train/trainer.h"

ABSL_FLAG(std::string, out, "", "Output model directory (required).");
ABSL_FLAG(std::string, init, "",
          "Start from this model directory (e.g. made by rmt-import) instead "
          "of random weights; its labels must be the tasks' "
          "(--print_labels), or the same without unknown (the bundled "
          "model: where --tasks has unknown, its classifier gains a new "
          "row for it), and the architecture flags (--vocab_size, "
          "--hidden, --layers, --heads, --intermediate, --mem_tokens, "
          "--segment_size, --memory_attention, --dropout, --init_form, "
          "--init_std, --init_embedding_std) are not used.");
ABSL_FLAG(bool, print_labels, false,
          "Print the tasks' labels, comma-separated (for rmt-import "
          "--labels), and exit.");
ABSL_FLAG(std::string, noise_file, "",
          "Noise text file; empty: Debian's fortunes.");
ABSL_FLAG(std::string, tasks, "memorize,detect,reasoning,unknown",
          "Tasks to learn.");
ABSL_FLAG(int, vocab_size, 3000, "Vocabulary size, memory tokens excluded.");
ABSL_FLAG(int, hidden, 128, "Hidden size.");
ABSL_FLAG(int, layers, 2, "Encoder layers.");
ABSL_FLAG(int, heads, 4, "Attention heads.");
ABSL_FLAG(int, intermediate, 512, "MLP size.");
ABSL_FLAG(int, mem_tokens, 4, "Memory tokens.");
ABSL_FLAG(int, segment_size, 48, "Content tokens per segment.");
ABSL_FLAG(std::string, memory_attention, "full", "full or bottleneck.");
ABSL_FLAG(double, dropout, 0.0, "Hidden and attention dropout.");
ABSL_FLAG(std::string, init_form, "bert",
          "Random initial weights: bert (normal, --init_std and "
          "--init_embedding_std, zero biases) or torch (PyTorch's default: "
          "linear weights and biases uniform in +-1/sqrt(fan_in), "
          "embeddings N(0, 1)).");
ABSL_FLAG(double, init_std, rmt::RandomInit{}.weight_std,
          "Deviation of the random initial weights, embeddings aside "
          "(BERT's 0.02).");
ABSL_FLAG(double, init_embedding_std, rmt::RandomInit{}.embedding_std,
          "Deviation of the random initial word, position and token-type "
          "embeddings (BERT's 0.02).");
ABSL_FLAG(int, target_segments, 4, "Curriculum target (segments).");
ABSL_FLAG(int, start_segments, 1,
          "First curriculum stage (segments): above 1 to go on training a "
          "model (--init) that reads shorter documents already.");
ABSL_FLAG(int, backprop_segments, 0,
          "Backpropagate through at most this many last segments of each "
          "document; the earlier ones run without gradients (0: all).");
ABSL_FLAG(int, batch_size, 32, "Samples per step.");
ABSL_FLAG(double, lr, 1e-3, "Peak learning rate (AdamW).");
ABSL_FLAG(double, weight_decay, 0.01, "AdamW weight decay.");
ABSL_FLAG(int, warmup_steps, 100, "Linear warm-up steps.");
ABSL_FLAG(int, max_steps, 3000, "Step budget for the whole run.");
ABSL_FLAG(int, lr_decay_steps, 0,
          "Step at which the learning rate has decayed to a tenth of its "
          "peak (0: --max_steps).");
ABSL_FLAG(double, max_seconds, 0,
          "Stop after the step that crosses this many seconds of training "
          "in this invocation (a resumed run starts a new budget; loading "
          "comes before it): that step is validated and saved as the last "
          "of --max_steps, and checkpointed unless --checkpoint_every is 0 "
          "(0: no limit).");
ABSL_FLAG(int, stage_max_steps, 1000, "Step budget of one curriculum stage.");
ABSL_FLAG(bool, task_curriculum, true,
          "Introduce the tasks one at a time (in --tasks order) at one "
          "segment before documents grow.");
ABSL_FLAG(double, advance_accuracy, 0.98,
          "Validation accuracy every task must reach to add a segment.");
ABSL_FLAG(int, assist_steps, 0,
          "Reader assist: steps in which every question also reads its last "
          "document segment's states (0: off; see train/trainer.h).");
ABSL_FLAG(int, assist_ramp, 1000,
          "Reader assist: steps over which those states are withdrawn.");
ABSL_FLAG(int, eval_every, 50, "Steps between validations.");
ABSL_FLAG(int, eval_samples, 64, "Validation samples per task.");
ABSL_FLAG(int, checkpoint_every, 200, "Steps between checkpoints.");
ABSL_FLAG(uint32_t, seed, 1, "Seed of weights and data.");
ABSL_FLAG(bool, resume, false, "Continue from --out/checkpoint.");
ABSL_FLAG(std::string, save_dtype, "float32",
          "Weights of the final model directory: float32, bfloat16 or "
          "float16 (training and checkpoints stay float32).");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda, cuda:N or auto.");
ABSL_FLAG(int, threads, 0, "Intra-op threads (0: one per hardware thread).");

namespace rmt {
namespace {

absl::StatusOr<ModelConfig> MakeConfig(int64_t content_vocab,
                                       const std::vector<Task>& tasks) {
  ModelConfig config;
  config.rmt.num_mem_tokens = absl::GetFlag(FLAGS_mem_tokens);
  config.rmt.segment_size = absl::GetFlag(FLAGS_segment_size);
  if (absl::GetFlag(FLAGS_memory_attention) == "bottleneck") {
    config.rmt.memory_attention = MemoryAttention::kBottleneck;
  }
  config.vocab_size = content_vocab + config.rmt.num_mem_tokens;
  config.hidden_size = absl::GetFlag(FLAGS_hidden);
  config.num_hidden_layers = absl::GetFlag(FLAGS_layers);
  config.num_attention_heads = absl::GetFlag(FLAGS_heads);
  config.intermediate_size = absl::GetFlag(FLAGS_intermediate);
  config.max_position_embeddings = config.segment_length();
  config.hidden_dropout_prob = absl::GetFlag(FLAGS_dropout);
  config.attention_probs_dropout_prob = absl::GetFlag(FLAGS_dropout);
  config.labels = ModelLabels(tasks);
  RETURN_IF_ERROR(config.Validate("rmt-train flags"));
  return config;
}

// The model --init names, checked against what training needs.
absl::StatusOr<std::shared_ptr<ModelBundle>> LoadInitModel(
    const std::string& dir, const std::vector<Task>& tasks,
    torch::Device device, uint32_t seed) {
  LoadOptions load;
  load.device = device;
  ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(dir, load));
  if (bundle->config.rmt.num_mem_tokens == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir,
        ": a plain BERT without memory tokens; make an RMT of it with "
        "rmt-import"));
  }
  // A model trained before the unknown task learns it with a new
  // classifier row; its other answers stay where they are (unknown is the
  // last label).
  if (bundle->config.labels == ModelLabels({}) &&
      ModelLabels(tasks) == TaskLabels()) {
    ASSIGN_OR_RETURN(bundle->model,
                     AppendLabels(bundle->model, {kUnknownAnswer}, seed));
    bundle->config = bundle->model->config();
    std::cerr << "rmt-train: " << dir << " has no \"" << kUnknownAnswer
              << "\" label; its classifier gains a new row for it\n";
  }
  if (absl::Status labels = CheckModelLabels(bundle->config.labels, tasks);
      !labels.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": ", labels.message(), "; import it with rmt-import --labels ",
        absl::StrJoin(TaskLabels(), ",")));
  }
  return bundle;
}

absl::Status Run(int argc, char** argv) {
  if (absl::GetFlag(FLAGS_print_labels)) {
    std::cout << absl::StrJoin(TaskLabels(), ",") << "\n";
    return absl::OkStatus();
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  ASSIGN_OR_RETURN(torch::Device device,
                   ParseDevice(absl::GetFlag(FLAGS_device)));

  TrainOptions options;
  options.out_dir = out;
  ASSIGN_OR_RETURN(options.tasks, ParseTaskList(absl::GetFlag(FLAGS_tasks)));
  options.target_segments = absl::GetFlag(FLAGS_target_segments);
  options.start_segments = absl::GetFlag(FLAGS_start_segments);
  options.backprop_segments = absl::GetFlag(FLAGS_backprop_segments);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.learning_rate = absl::GetFlag(FLAGS_lr);
  options.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  options.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  options.max_steps = absl::GetFlag(FLAGS_max_steps);
  options.lr_decay_steps = absl::GetFlag(FLAGS_lr_decay_steps);
  options.max_seconds = absl::GetFlag(FLAGS_max_seconds);
  options.stage_max_steps = absl::GetFlag(FLAGS_stage_max_steps);
  options.advance_accuracy = absl::GetFlag(FLAGS_advance_accuracy);
  options.task_curriculum = absl::GetFlag(FLAGS_task_curriculum);
  options.assist_steps = absl::GetFlag(FLAGS_assist_steps);
  options.assist_ramp = absl::GetFlag(FLAGS_assist_ramp);
  options.eval_every = absl::GetFlag(FLAGS_eval_every);
  options.eval_samples = absl::GetFlag(FLAGS_eval_samples);
  options.checkpoint_every = absl::GetFlag(FLAGS_checkpoint_every);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.resume = absl::GetFlag(FLAGS_resume);
  ASSIGN_OR_RETURN(options.save_dtype,
                   ParseComputeDType(absl::GetFlag(FLAGS_save_dtype)));

  ASSIGN_OR_RETURN(NoiseText noise,
                   LoadNoiseFileOrDefault(absl::GetFlag(FLAGS_noise_file)));
  const std::string init = absl::GetFlag(FLAGS_init);
  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  RmtModel model{nullptr};
  if (!init.empty()) {
    ASSIGN_OR_RETURN(auto bundle,
                     LoadInitModel(init, options.tasks, device, options.seed));
    tokenizer = bundle->tokenizer;
    model = bundle->model;
    std::cerr << "rmt-train: starting from " << init << "\n";
  } else {
    ASSIGN_OR_RETURN(auto vocab, BuildTaskVocabulary(
                                     noise, absl::GetFlag(FLAGS_vocab_size)));
    tokenizer = std::make_shared<WordPieceTokenizer>(vocab, TokenizerOptions{});
    ASSIGN_OR_RETURN(ModelConfig config,
                     MakeConfig(vocab->size(), options.tasks));
    RandomInit random_init;
    const std::string form = absl::GetFlag(FLAGS_init_form);
    if (form == "torch") {
      random_init.form = InitForm::kTorch;
    } else if (form != "bert") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--init_form must be bert or torch, got \"", form, "\""));
    }
    random_init.weight_std = absl::GetFlag(FLAGS_init_std);
    random_init.embedding_std = absl::GetFlag(FLAGS_init_embedding_std);
    for (double std : {random_init.weight_std, random_init.embedding_std}) {
      if (!(std > 0 && std <= 10)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--init_std and --init_embedding_std must be in (0, 10], got ",
            std));
      }
    }
    model = CreateRandomModel(config, SpecialTokensOf(*vocab),
                              absl::GetFlag(FLAGS_seed), random_init);
    model->to(device);
  }
  const Vocabulary& vocab = tokenizer->vocab();
  options.tokenizer_options = tokenizer->options();
  ASSIGN_OR_RETURN(TaskGenerator generator,
                   TaskGenerator::Create(tokenizer, noise,
                                         model->config().rmt.segment_size));
  std::cerr << "rmt-train: " << noise.sentences().size() << " noise sentences, "
            << vocab.size() << " tokens in the vocabulary\n";
  std::filesystem::create_directories(out);
  {
    std::ofstream command(std::filesystem::path(out) / "train_command.txt");
    std::vector<std::string> args(argv, argv + argc);
    command << absl::StrJoin(args, " ") << "\n";
  }
  std::ofstream log(std::filesystem::path(out) / "train_log.jsonl",
                    options.resume ? std::ios::app : std::ios::trunc);
  struct Tee : std::streambuf {
    std::streambuf* a;
    std::streambuf* b;
    int overflow(int c) override {
      if (c == EOF) return !EOF;
      return a->sputc(c) == EOF || b->sputc(c) == EOF ? EOF : c;
    }
    int sync() override { return a->pubsync() | b->pubsync(); }
  } tee;
  tee.a = log.rdbuf();
  tee.b = std::cout.rdbuf();
  std::ostream both(&tee);
  ASSIGN_OR_RETURN(TrainResult result,
                   Train(model, vocab, generator, options, &both));
  std::cerr << "rmt-train: " << result.steps << " steps, reached "
            << result.segments << " segments, last loss " << result.last_loss
            << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-train", [&] {
    rmt::ParseProgramFlags(argc, argv,
                           "Trains an RMT model on the synthetic tasks with a "
                           "segment curriculum.\n  rmt-train --out DIR ...");
    rmt::KeepTensorBuffersMapped();
    absl::Status status = rmt::Run(argc, argv);
    if (!status.ok()) {
      std::cerr << "rmt-train: " << status << "\n";
      return 1;
    }
    return 0;
  });
}
