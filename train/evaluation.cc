#include "train/evaluation.h"

#include <algorithm>

namespace rmt {

int64_t SegmentCount(const std::vector<int32_t>& ids, int64_t segment_size) {
  return (static_cast<int64_t>(ids.size()) + segment_size - 1) / segment_size;
}

torch::Tensor DocumentLogits(RmtModelImpl& model,
                             const std::vector<Sample>& samples,
                             int64_t assisted, int64_t backprop_segments) {
  const int64_t segment_size = model.config().rmt.segment_size;
  const int64_t batch = static_cast<int64_t>(samples.size());
  const int64_t segments = SegmentCount(samples[0].document_ids, segment_size);
  TORCH_CHECK(assisted >= 0 && assisted <= batch, "assisted ", assisted,
              " is not within the batch of ", batch);
  TORCH_CHECK(backprop_segments >= 0, "backprop_segments ", backprop_segments,
              " is negative");
  // Segments before this one run without gradients.
  const int64_t first_backprop =
      backprop_segments > 0 ? std::max<int64_t>(0, segments - backprop_segments)
                            : 0;
  torch::Tensor memory = model.InitMemory(batch);
  torch::Tensor context;        // (B, T, d): the last segment's states
  torch::Tensor context_valid;  // (B, T)
  std::vector<std::vector<int32_t>> step(batch);
  for (int64_t s = 0; s < segments; ++s) {
    for (int64_t b = 0; b < batch; ++b) {
      const auto& ids = samples[b].document_ids;
      TORCH_CHECK(SegmentCount(ids, segment_size) == segments,
                  "samples of one batch need the same number of segments");
      const auto begin = ids.begin() + s * segment_size;
      const auto end =
          ids.begin() + std::min<int64_t>((s + 1) * segment_size, ids.size());
      step[b].assign(begin, end);
    }
    const SegmentBatch segment = model.MakeBatch(step);
    if (s < first_backprop) {
      torch::NoGradGuard no_grad;
      memory = model.Step(memory, segment);
    } else if (assisted > 0 && s + 1 == segments) {
      StepOutput out = model.StepWithStates(memory, segment);
      memory = out.memory;
      context = out.states;
      torch::Tensor row_assisted =
          torch::arange(batch, segment.attention_mask.options().dtype(
                                   torch::kLong)) >= batch - assisted;
      context_valid = segment.attention_mask & row_assisted.unsqueeze(1);
    } else {
      memory = model.Step(memory, segment);
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    step[b] = samples[b].question_ids;
    if (static_cast<int64_t>(step[b].size()) > segment_size) {
      step[b].resize(segment_size);
    }
  }
  const SegmentBatch questions = model.MakeBatch(step);
  if (context.defined()) {
    return model.AnswerWithContext(memory, questions, context, context_valid);
  }
  return model.Answer(memory, questions);
}

double Accuracy(RmtModelImpl& model, const TaskGenerator& generator, Task task,
                int segments, const AccuracyOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const std::vector<std::string>& model_labels = model.config().labels;
  int64_t correct = 0;
  for (int start = 0; start < options.samples; start += options.batch_size) {
    const int count = std::min(options.batch_size, options.samples - start);
    std::vector<Sample> batch;
    std::vector<int64_t> labels;
    for (int i = 0; i < count; ++i) {
      // Each (task, segments) point draws its own samples: task in bits
      // 28-29, segments in 14-27, sample in 0-13 of the 30-bit index.
      const uint64_t index =
          (static_cast<uint64_t>(task) << 28) |
          ((static_cast<uint64_t>(segments) & 0x3fff) << 14) |
          (static_cast<uint64_t>(start + i) & 0x3fff);
      batch.push_back(generator.Generate(
          task, segments, SampleSeed(options.split, options.seed, index)));
      // -1, which no prediction equals, where the model has no such label.
      const auto it = std::find(model_labels.begin(), model_labels.end(),
                                batch.back().answer);
      labels.push_back(it == model_labels.end() ? -1
                                                : it - model_labels.begin());
    }
    torch::Tensor predicted = DocumentLogits(model, batch).argmax(-1).cpu();
    correct += predicted.eq(torch::tensor(labels)).sum().item<int64_t>();
  }
  if (was_training) model.train();
  return options.samples > 0 ? double(correct) / options.samples : 0.0;
}

}  // namespace rmt
