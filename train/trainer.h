// The curriculum trainer of the RMT papers: backpropagation through every
// segment of a document (or its last few: backprop_segments), starting at
// one segment (or start_segments) and adding one each time validation
// accuracy passes a threshold (or the stage's step budget runs out), up to a
// target number of segments. One model learns all tasks.
//
// Checkpoints (a model directory plus optimizer and trainer state) let a run
// resume where it stopped; a JSONL log records every evaluation. Training
// and checkpoints are float32; only the final model directory may be stored
// in a smaller dtype (save_dtype).
#ifndef RMT_TRAIN_TRAINER_H_
#define RMT_TRAIN_TRAINER_H_

#include <torch/torch.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/rmt_model.h"
#include "model/tokenizer.h"
#include "train/tasks.h"

namespace rmt {

struct TrainOptions {
  std::string out_dir;  // model directory written at the end
  std::vector<Task> tasks{std::begin(kAllTasks), std::end(kAllTasks)};
  int target_segments = 4;
  // The first curriculum stage: documents of up to this many segments.
  // Above 1 to go on training a model that already reads shorter documents.
  int start_segments = 1;
  // Truncated backpropagation through time (0: off): gradients flow through
  // at most the last `backprop_segments` segments of a document; the ones
  // before still run, without gradients, so the memory those last segments
  // receive is what a long document really leaves there. A step's cost then
  // grows with the document's length only by forward passes, and training
  // sees memory after many more segments than it could backpropagate
  // through: a memory that fades over hundreds of segments at inference
  // started from states short documents never showed the model.
  int backprop_segments = 0;
  int batch_size = 32;
  double learning_rate = 1e-3;
  double weight_decay = 0.01;
  int warmup_steps = 100;
  int max_steps = 3000;
  // The learning rate decays linearly to a tenth of its peak at this step
  // (0: at max_steps). A run that max_seconds stopped early is replayed,
  // same schedule and same batches, with max_steps at the step it reached
  // and this at its own decay end (its lr_decay_steps, else max_steps).
  int lr_decay_steps = 0;
  // Wall-clock budget in seconds of this call's training loop (0: none;
  // a resumed run starts a new one). The step that crosses it is the run's
  // last: validated and saved like the one at max_steps, and checkpointed
  // (unless checkpoint_every is 0), so a run on a machine lent for minutes
  // ends with a model and a checkpoint to resume from rather than being
  // killed mid-write. The learning-rate schedule does not change with it.
  double max_seconds = 0;
  // A curriculum stage advances after this many steps even below threshold.
  int stage_max_steps = 1000;
  double advance_accuracy = 0.98;  // every task's validation accuracy
  // Tasks join one at a time (in `tasks` order) in the first stage before
  // documents grow: a small model finds the easy task's signal far sooner
  // alone than mixed with tasks it cannot yet solve.
  bool task_curriculum = false;
  // Reader assist (models/rmt-babi/notes.md): trained through the memory
  // alone, reasoning stays at chance; in the probe (scripts/
  // reasoning_probe.py) a question segment that also reads the document's
  // states learns it, and withdrawing those states then moves the answer
  // into the memory. For the first `assist_steps` steps every question also
  // reads its last document segment's states; over the next `assist_ramp`
  // steps a linearly growing share of each batch reads only the memory, and
  // after that none is assisted. Documents grow beyond the first stage only
  // after the assist, and the first stage with every task in gets its whole
  // step budget after it. Validation always reads the memory alone.
  // 0 turns it off.
  int assist_steps = 0;
  int assist_ramp = 1000;
  int eval_every = 50;
  int eval_samples = 64;  // per task
  double clip_norm = 1.0;
  int checkpoint_every = 200;
  uint32_t seed = 1;
  bool resume = false;
  // Written to the model directory's tokenizer_config.json (an imported
  // cased model must stay cased).
  TokenizerOptions tokenizer_options;
  // The weights' dtype in the final model directory: torch::kFloat,
  // torch::kBFloat16 or torch::kHalf.
  torch::ScalarType save_dtype = torch::kFloat;
};

struct TrainResult {
  int steps = 0;
  int segments = 0;  // the curriculum stage reached
  double last_loss = 0;
  std::map<Task, double> accuracy;  // validation, at `segments`
};

// Trains `model` in place. `log` receives one JSON object per line. The
// model's labels must be those CheckModelLabels accepts for options.tasks
// (samples carry TaskLabels() indices).
absl::StatusOr<TrainResult> Train(RmtModel& model, const Vocabulary& vocab,
                                  const TaskGenerator& generator,
                                  const TrainOptions& options,
                                  std::ostream* log);

}  // namespace rmt

#endif  // RMT_TRAIN_TRAINER_H_
