#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"
#include "train/evaluation.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Where a run stands; saved beside each checkpoint.
struct Progress {
  int step = 0;
  int stage = 1;        // documents of up to this many segments
  int stage_start = 0;  // step at which the stage began
  // Tasks in training: the first `active_tasks` of options.tasks. With
  // task_curriculum they join one at a time at one segment.
  int active_tasks = 1;
};

double LearningRate(const TrainOptions& options, int step) {
  if (step < options.warmup_steps) {
    return options.learning_rate * (step + 1) / options.warmup_steps;
  }
  // Linear decay to a tenth of the peak at lr_decay_steps (max_steps).
  const int decay_end =
      options.lr_decay_steps > 0 ? options.lr_decay_steps : options.max_steps;
  const double span = std::max(1, decay_end - options.warmup_steps);
  const double done = std::min(1.0, (step - options.warmup_steps) / span);
  return options.learning_rate * (1.0 - 0.9 * done);
}

// The first step at which no question is assisted (0: no assist).
int AssistEnd(const TrainOptions& options) {
  return options.assist_steps > 0 ? options.assist_steps + options.assist_ramp
                                  : 0;
}

// How many of a batch's questions also read their document's states at
// `step` (TrainOptions::assist_steps).
int AssistedRows(const TrainOptions& options, int step) {
  if (step >= AssistEnd(options)) return 0;
  if (step < options.assist_steps) return options.batch_size;
  // In the ramp, so assist_ramp > 0.
  const double withdrawn =
      double(step - options.assist_steps) / options.assist_ramp;
  return static_cast<int>(std::lround(options.batch_size * (1.0 - withdrawn)));
}

std::string CheckpointDir(const TrainOptions& options) {
  return (fs::path(options.out_dir) / "checkpoint").string();
}

absl::Status SaveCheckpoint(RmtModel& model, const Vocabulary& vocab,
                            torch::optim::AdamW& optimizer,
                            const TrainOptions& options,
                            const Progress& progress) {
  const std::string dir = CheckpointDir(options);
  RETURN_IF_ERROR(
      SaveModelDirectory(dir, *model, vocab, options.tokenizer_options));
  torch::save(optimizer, (fs::path(dir) / "optimizer.pt").string());
  std::ofstream state(fs::path(dir) / "trainer_state.json", std::ios::trunc);
  state << Json{{"step", progress.step},
                {"stage", progress.stage},
                {"stage_start", progress.stage_start},
                {"active_tasks", progress.active_tasks}}
               .dump()
        << "\n";
  if (!state) return absl::InternalError(absl::StrCat(dir, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<Progress> LoadCheckpoint(RmtModel& model,
                                        torch::optim::AdamW& optimizer,
                                        const TrainOptions& options) {
  const std::string dir = CheckpointDir(options);
  ASSIGN_OR_RETURN(auto bundle, LoadModelDirectory(dir));
  {
    torch::NoGradGuard no_grad;
    auto saved = bundle->model->named_parameters();
    for (auto& item : model->named_parameters()) {
      const torch::Tensor* value = saved.find(item.key());
      if (value == nullptr || value->sizes() != item.value().sizes()) {
        return absl::FailedPreconditionError(absl::StrCat(
            dir, ": checkpoint does not match the model (", item.key(), ")"));
      }
      item.value().copy_(*value);
    }
  }
  // Onto the model's device, whichever device saved it: Adam's moments
  // must sit beside their parameters.
  torch::load(optimizer, (fs::path(dir) / "optimizer.pt").string(),
              model->classifier->weight.device());
  std::ifstream in(fs::path(dir) / "trainer_state.json");
  Json state = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.contains("step")) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/trainer_state.json: unreadable"));
  }
  return Progress{state["step"].get<int>(), state["stage"].get<int>(),
                  state["stage_start"].get<int>(),
                  state.value("active_tasks", 1)};
}

std::map<Task, double> Validate(RmtModel& model, const TaskGenerator& generator,
                                const TrainOptions& options, int segments) {
  AccuracyOptions accuracy;
  accuracy.samples = options.eval_samples;
  accuracy.batch_size = options.eval_samples;
  accuracy.split = Split::kValidation;
  accuracy.seed = options.seed;
  std::map<Task, double> result;
  for (Task task : options.tasks) {
    result[task] = Accuracy(*model, generator, task, segments, accuracy);
  }
  return result;
}

}  // namespace

absl::StatusOr<TrainResult> Train(RmtModel& model, const Vocabulary& vocab,
                                  const TaskGenerator& generator,
                                  const TrainOptions& options,
                                  std::ostream* log) {
  if (options.tasks.empty() || options.batch_size < 1 ||
      options.target_segments < 1 || options.max_steps < 1 ||
      options.eval_every < 1) {
    return absl::InvalidArgumentError(
        "training needs tasks, batch_size, target_segments, max_steps and "
        "eval_every of at least 1");
  }
  if (options.assist_steps < 0 || options.assist_ramp < 0 ||
      options.backprop_segments < 0 || options.lr_decay_steps < 0 ||
      !(options.max_seconds >= 0)) {
    return absl::InvalidArgumentError(
        "assist_steps, assist_ramp, backprop_segments, lr_decay_steps and "
        "max_seconds cannot be negative");
  }
  if (options.start_segments < 1 ||
      options.start_segments > options.target_segments) {
    return absl::InvalidArgumentError(absl::StrCat(
        "start_segments (", options.start_segments,
        ") must be in 1..target_segments (", options.target_segments, ")"));
  }
  const int assist_end = AssistEnd(options);
  RETURN_IF_ERROR(CheckModelLabels(model->config().labels, options.tasks));
  torch::manual_seed(options.seed);
  torch::optim::AdamW optimizer(
      model->parameters(), torch::optim::AdamWOptions(options.learning_rate)
                               .weight_decay(options.weight_decay));
  Progress progress;
  progress.stage = options.start_segments;
  const int num_tasks = static_cast<int>(options.tasks.size());
  progress.active_tasks = options.task_curriculum ? 1 : num_tasks;
  if (options.resume && fs::exists(CheckpointDir(options))) {
    ASSIGN_OR_RETURN(progress, LoadCheckpoint(model, optimizer, options));
  }

  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  const auto seconds_since_start = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start)
        .count();
  };
  double loss_sum = 0;
  int loss_count = 0;
  model->train();
  for (; progress.step < options.max_steps; ++progress.step) {
    const int step = progress.step;
    // Data depend only on the seed and the step, so a resumed run sees the
    // same batches. Each batch has one length, drawn from 1..stage so shorter
    // documents are not forgotten.
    std::mt19937_64 rng(SampleSeed(Split::kTrain, options.seed,
                                   static_cast<uint64_t>(step) << 10));
    const int segments =
        std::uniform_int_distribution<int>(1, progress.stage)(rng);
    std::vector<Sample> batch;
    std::vector<int64_t> labels;
    for (int i = 0; i < options.batch_size; ++i) {
      const Task task = options.tasks[(step + i) % progress.active_tasks];
      batch.push_back(generator.Generate(
          task, segments,
          SampleSeed(Split::kTrain, options.seed,
                     static_cast<uint64_t>(step) * options.batch_size + i)));
      labels.push_back(batch.back().label);
    }
    const double lr = LearningRate(options, step);
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    optimizer.zero_grad();
    const int assisted = AssistedRows(options, step);
    torch::Tensor logits =
        DocumentLogits(*model, batch, assisted, options.backprop_segments);
    // The labels go where the logits are: on a GPU, a CPU target is refused.
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits, torch::tensor(labels).to(logits.device()));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), options.clip_norm);
    optimizer.step();
    // One read of the loss: on a GPU each read waits for the device.
    result.last_loss = loss.item<double>();
    loss_sum += result.last_loss;
    ++loss_count;

    const bool out_of_time =
        options.max_seconds > 0 && seconds_since_start() >= options.max_seconds;
    const bool last = step + 1 == options.max_steps || out_of_time;
    bool reached_target = false;  // every task passed at the target length
    if ((step + 1) % options.eval_every == 0 || last) {
      result.accuracy = Validate(model, generator, options, progress.stage);
      double worst = 1.0;
      Json accuracy = Json::object();
      for (int t = 0; t < num_tasks; ++t) {
        const double value = result.accuracy[options.tasks[t]];
        accuracy[TaskName(options.tasks[t])] = value;
        if (t < progress.active_tasks) worst = std::min(worst, value);
      }
      const double seconds = seconds_since_start();
      if (log != nullptr) {
        *log << Json{{"step", step + 1},
                     {"segments", progress.stage},
                     {"tasks", progress.active_tasks},
                     {"loss", loss_sum / loss_count},
                     {"lr", lr},
                     // This step's share; the loss is the window's mean.
                     {"assisted", double(assisted) / options.batch_size},
                     {"accuracy", accuracy},
                     {"seconds", seconds}}
                    .dump()
             << std::endl;
      }
      loss_sum = 0;
      loss_count = 0;
      result.segments = progress.stage;
      const bool passed = worst >= options.advance_accuracy;
      const bool all_tasks = progress.active_tasks == num_tasks;
      // Documents grow only once the assist is over, and the first stage
      // (all tasks in) gets its whole budget after it.
      const bool assist_over = step + 1 >= assist_end;
      const int stage_began =
          all_tasks && progress.stage == options.start_segments
              ? std::max(progress.stage_start, assist_end)
              : progress.stage_start;
      const bool budget_spent =
          step + 1 - stage_began >= options.stage_max_steps;
      if (passed && all_tasks && progress.stage >= options.target_segments) {
        reached_target = true;
      } else if (passed || budget_spent) {
        if (!all_tasks) {
          ++progress.active_tasks;
          progress.stage_start = step + 1;
        } else if (progress.stage < options.target_segments && assist_over) {
          ++progress.stage;
          progress.stage_start = step + 1;
        }
      }
    }
    // Out of time, the checkpoint is saved whatever the step (checkpoints
    // on), so that --resume goes on from here.
    if (!options.out_dir.empty() && options.checkpoint_every > 0 &&
        ((step + 1) % options.checkpoint_every == 0 || out_of_time)) {
      Progress saved = progress;
      saved.step = step + 1;
      RETURN_IF_ERROR(SaveCheckpoint(model, vocab, optimizer, options, saved));
    }
    if (reached_target || out_of_time) {
      ++progress.step;
      break;
    }
  }
  result.steps = progress.step;
  model->eval();
  if (!options.out_dir.empty()) {
    RETURN_IF_ERROR(SaveModelDirectory(options.out_dir, *model, vocab,
                                       options.tokenizer_options,
                                       options.save_dtype));
  }
  return result;
}

}  // namespace rmt
