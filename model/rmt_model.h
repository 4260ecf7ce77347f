// The Recurrent Memory Transformer over a BERT encoder (Bulatov et al.).
//
// Each segment enters the encoder as
//   [CLS] [MEM]*m [SEP] tokens [SEP] [PAD]...
// with the current memory written over the [MEM] embeddings; the encoder's
// outputs at the memory positions become the next memory. A question is run
// as one more segment and answered from the pooled [CLS].
//
//   RmtModel model(config, SpecialTokens{...});
//   torch::Tensor memory = model->InitMemory(2);              // (2, m, d)
//   memory = model->Step(memory, model->MakeBatch({seg_a, seg_b}));
//   torch::Tensor logits = model->Answer(memory, model->MakeBatch({q_a, q_b}));
//
// Gradients flow through any number of Steps, so training can backpropagate
// through whole documents. Parameter names match Hugging Face's
// BertForSequenceClassification ("bert.…", "classifier.…").
//
// In eval mode with gradients off (torch::NoGradGuard or, faster,
// c10::InferenceMode) Forward runs the InferenceEncoder: the same math on
// weights laid out for inference once (rebuilt when the parameters change),
// with the bottleneck mask built once and no mask where nothing is masked.
//
// Thread-safety: Forward/Step/Answer are safe concurrently in eval mode with
// gradients off; training needs a single caller.
#ifndef RMT_MODEL_RMT_MODEL_H_
#define RMT_MODEL_RMT_MODEL_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "model/bert.h"
#include "model/config.h"

namespace rmt {

// Ids the segment layout needs, from the vocabulary.
struct SpecialTokens {
  int32_t cls = 2;
  int32_t sep = 3;
  int32_t pad = 0;
};

// A batch of segments laid out for the encoder.
struct SegmentBatch {
  torch::Tensor input_ids;       // (B, T) int64
  torch::Tensor attention_mask;  // (B, T) bool, true at real positions
  // False when every row fills all T positions (no key is padding), which
  // lets inference skip the padding mask; MakeBatch sets it.
  bool padded = true;
};

struct StepOutput {
  torch::Tensor memory;  // (B, m, d)
  torch::Tensor logits;  // (B, num_labels); undefined unless asked for
  // The last layer's state at every position, (B, T, d): set on the
  // autograd path (StepWithStates, and Forward in training), undefined from
  // inference.
  torch::Tensor states;
};

class RmtModelImpl : public torch::nn::Module {
 public:
  RmtModelImpl(ModelConfig config, SpecialTokens special_tokens);

  const ModelConfig& config() const { return config_; }
  const SpecialTokens& special_tokens() const { return special_tokens_; }

  // The learned initial memory (the last m word-embedding rows) for a batch:
  // (batch, m, d). A view: clone it to keep it beyond the parameters' life.
  torch::Tensor InitMemory(int64_t batch);

  // Lays out segments of 1..segment_size content ids each; rows are padded
  // to the longest segment, or to `pad_to_length` positions when that is
  // larger (fixed shapes for graph capture). Ids are not range-checked here:
  // callers validate input (see ValidateSegment).
  SegmentBatch MakeBatch(const std::vector<std::vector<int32_t>>& segments,
                         int64_t pad_to_length = 0) const;

  // One recurrent step for a batch. memory: (B, m, d).
  StepOutput Forward(const torch::Tensor& memory, const SegmentBatch& batch,
                     bool with_logits);
  torch::Tensor Step(const torch::Tensor& memory, const SegmentBatch& batch) {
    return Forward(memory, batch, /*with_logits=*/false).memory;
  }
  // Runs the questions as final segments; returns (B, num_labels) logits.
  torch::Tensor Answer(const torch::Tensor& memory,
                       const SegmentBatch& questions) {
    return Forward(memory, questions, /*with_logits=*/true).logits;
  }

  // Training aids (autograd path; trainer.h's reader assist). As Step, also
  // returning the last layer's state at every position of the segment.
  StepOutput StepWithStates(const torch::Tensor& memory,
                            const SegmentBatch& batch);
  // As Answer, but every query of the question segment may also attend to
  // `context` (B, L, d), states StepWithStates returned, where
  // `context_valid` (B, L) is true: the context counts as memory for
  // MemBottleneck attention. It enters the encoder beside the embedded
  // question, without position embeddings (it is encoder output already).
  // A row with no valid context gets Answer's logits on the autograd path
  // (to rounding).
  torch::Tensor AnswerWithContext(const torch::Tensor& memory,
                                  const SegmentBatch& questions,
                                  const torch::Tensor& context,
                                  const torch::Tensor& context_valid);

  BertModel bert{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  // The weights laid out for inference, and what else depends only on them.
  struct Inference;

  // Forward with autograd through the modules (training, or gradients on).
  // `context`/`context_valid` as AnswerWithContext, or undefined for none.
  StepOutput ForwardModules(const torch::Tensor& memory,
                            const SegmentBatch& batch, bool with_logits,
                            const torch::Tensor& context = {},
                            const torch::Tensor& context_valid = {});
  StepOutput ForwardInference(const torch::Tensor& memory,
                              const SegmentBatch& batch, bool with_logits);
  // inference_, rebuilt first if the parameters changed since it was built.
  std::shared_ptr<const Inference> CurrentInference()
      ABSL_LOCKS_EXCLUDED(inference_mu_);
  // Additive attention mask, (B, 1, 1, T) or (B, 1, T, T) for the
  // bottleneck, where the last `context_length` positions count as memory.
  torch::Tensor AttentionMask(const torch::Tensor& valid,
                              torch::ScalarType dtype,
                              int64_t context_length = 0) const;
  void CheckMemory(const torch::Tensor& memory,
                   const SegmentBatch& batch) const;

  ModelConfig config_;
  SpecialTokens special_tokens_;

  absl::Mutex inference_mu_;
  std::shared_ptr<const Inference> inference_ ABSL_GUARDED_BY(inference_mu_);
};
TORCH_MODULE(RmtModel);

// OK when `tokens` can be one segment (or question) of this model: 1 to
// segment_size ids, each an ordinary vocabulary id. INVALID_ARGUMENT saying
// which rule failed otherwise.
absl::Status ValidateSegment(const ModelConfig& config,
                             const std::vector<int32_t>& tokens);

}  // namespace rmt

#endif  // RMT_MODEL_RMT_MODEL_H_
