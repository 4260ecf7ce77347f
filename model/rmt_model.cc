#include "model/rmt_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/inference_encoder.h"

namespace rmt {

struct RmtModelImpl::Inference {
  Inference(BertModelImpl& bert, const ModelConfig& config)
      : encoder(bert, config) {}

  InferenceEncoder encoder;
  // Additive MemBottleneck mask of an unpadded segment of every length up to
  // the positions the model has: the (T, T) top-left block is a length-T
  // segment's. Undefined with full attention.
  torch::Tensor bottleneck_mask;
};

RmtModelImpl::RmtModelImpl(ModelConfig config, SpecialTokens special_tokens)
    : config_(std::move(config)), special_tokens_(special_tokens) {
  bert = register_module("bert", BertModel(config_));
  classifier = register_module(
      "classifier",
      torch::nn::Linear(config_.hidden_size, config_.num_labels()));
}

torch::Tensor RmtModelImpl::InitMemory(int64_t batch) {
  const int64_t m = config_.rmt.num_mem_tokens;
  torch::Tensor rows = bert->embeddings->word_embeddings->weight.slice(
      0, config_.vocab_size - m, config_.vocab_size);  // (m, d)
  return rows.unsqueeze(0).expand({batch, m, config_.hidden_size});
}

SegmentBatch RmtModelImpl::MakeBatch(
    const std::vector<std::vector<int32_t>>& segments,
    int64_t pad_to_length) const {
  const int64_t m = config_.rmt.num_mem_tokens;
  const int64_t batch = static_cast<int64_t>(segments.size());
  size_t longest = 0;
  for (const auto& segment : segments)
    longest = std::max(longest, segment.size());
  const int64_t length =
      std::max<int64_t>(pad_to_length, static_cast<int64_t>(longest) + m + 3);

  // Assembled on the host; in page-locked memory when the model is on a GPU,
  // so the copies below run asynchronously.
  const torch::Device device =
      bert->embeddings->word_embeddings->weight.device();
  const bool pinned = device.is_cuda();
  torch::Tensor ids =
      torch::full({batch, length}, special_tokens_.pad,
                  torch::dtype(torch::kLong).pinned_memory(pinned));
  torch::Tensor valid = torch::zeros(
      {batch, length}, torch::dtype(torch::kBool).pinned_memory(pinned));
  auto ids_a = ids.accessor<int64_t, 2>();
  auto valid_a = valid.accessor<bool, 2>();
  bool padded = false;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& segment = segments[b];
    int64_t p = 0;
    ids_a[b][p++] = special_tokens_.cls;
    // The ids under the memory are placeholders: their embeddings are
    // replaced by the memory state in Forward.
    for (int64_t i = 0; i < m; ++i) {
      ids_a[b][p++] = config_.vocab_size - m + i;
    }
    ids_a[b][p++] = special_tokens_.sep;
    for (int32_t id : segment) ids_a[b][p++] = id;
    ids_a[b][p++] = special_tokens_.sep;
    for (int64_t i = 0; i < p; ++i) valid_a[b][i] = true;
    padded = padded || p < length;
  }
  SegmentBatch out{ids.to(device, /*non_blocking=*/true),
                   valid.to(device, /*non_blocking=*/true)};
  out.padded = padded;
  return out;
}

torch::Tensor RmtModelImpl::AttentionMask(const torch::Tensor& valid,
                                          torch::ScalarType dtype,
                                          int64_t context_length) const {
  const int64_t m = config_.rmt.num_mem_tokens;
  torch::Tensor allowed;  // true where a query may attend to a key
  if (config_.rmt.memory_attention == MemoryAttention::kFull) {
    allowed = valid.unsqueeze(1).unsqueeze(1);  // (B, 1, 1, T)
  } else {
    // MemBottleneck: memory queries see every real key; all other queries
    // see only the memory keys.
    const int64_t length = valid.size(1);
    torch::Tensor is_memory =
        torch::zeros({length}, valid.options().dtype(torch::kBool));
    is_memory.slice(0, 1, 1 + m).fill_(true);
    is_memory.slice(0, length - context_length).fill_(true);
    torch::Tensor query_is_memory = is_memory.view({1, length, 1});
    torch::Tensor key_is_memory = is_memory.view({1, 1, length});
    torch::Tensor keys = valid.unsqueeze(1);  // (B, 1, T)
    allowed = (keys & (query_is_memory | key_is_memory))
                  .unsqueeze(1);  // (B, 1, T, T)
  }
  return torch::zeros(allowed.sizes(), valid.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), MaskedScore(dtype));
}

void RmtModelImpl::CheckMemory(const torch::Tensor& memory,
                               const SegmentBatch& batch) const {
  const int64_t m = config_.rmt.num_mem_tokens;
  TORCH_CHECK(memory.dim() == 3 && memory.size(1) == m &&
                  memory.size(2) == config_.hidden_size,
              "memory must be (B, ", m, ", ", config_.hidden_size, "), got ",
              memory.sizes());
  TORCH_CHECK(memory.size(0) == batch.input_ids.size(0), "memory batch ",
              memory.size(0), " != segment batch ", batch.input_ids.size(0));
}

StepOutput RmtModelImpl::Forward(const torch::Tensor& memory,
                                 const SegmentBatch& batch, bool with_logits) {
  CheckMemory(memory, batch);
  if (is_training() || torch::GradMode::is_enabled()) {
    return ForwardModules(memory, batch, with_logits);
  }
  return ForwardInference(memory, batch, with_logits);
}

StepOutput RmtModelImpl::StepWithStates(const torch::Tensor& memory,
                                        const SegmentBatch& batch) {
  CheckMemory(memory, batch);
  return ForwardModules(memory, batch, /*with_logits=*/false);
}

torch::Tensor RmtModelImpl::AnswerWithContext(
    const torch::Tensor& memory, const SegmentBatch& questions,
    const torch::Tensor& context, const torch::Tensor& context_valid) {
  CheckMemory(memory, questions);
  const int64_t batch = questions.input_ids.size(0);
  TORCH_CHECK(context.dim() == 3 && context.size(0) == batch &&
                  context.size(2) == config_.hidden_size,
              "context must be (", batch, ", L, ", config_.hidden_size,
              "), got ", context.sizes());
  TORCH_CHECK(
      context_valid.sizes() == torch::IntArrayRef({batch, context.size(1)}) &&
          context_valid.scalar_type() == torch::kBool,
      "context_valid must be bool (", batch, ", ", context.size(1), "), got ",
      context_valid.sizes());
  return ForwardModules(memory, questions, /*with_logits=*/true, context,
                        context_valid)
      .logits;
}

std::shared_ptr<const RmtModelImpl::Inference>
RmtModelImpl::CurrentInference() {
  absl::MutexLock lock(&inference_mu_);
  if (inference_ != nullptr && inference_->encoder.IsCurrent()) {
    return inference_;
  }
  auto inference = std::make_shared<Inference>(*bert, config_);
  if (config_.rmt.memory_attention == MemoryAttention::kBottleneck) {
    const torch::Tensor& words = inference->encoder.word_embeddings();
    const int64_t length = config_.max_position_embeddings;
    torch::Tensor all_valid = torch::ones(
        {1, length}, torch::dtype(torch::kBool).device(words.device()));
    inference->bottleneck_mask =
        AttentionMask(all_valid, words.scalar_type())[0][0];  // (T, T)
  }
  inference_ = std::move(inference);
  return inference_;
}

StepOutput RmtModelImpl::ForwardInference(const torch::Tensor& memory,
                                          const SegmentBatch& batch,
                                          bool with_logits) {
  const std::shared_ptr<const Inference> inference = CurrentInference();
  const InferenceEncoder& encoder = inference->encoder;
  const int64_t m = config_.rmt.num_mem_tokens;
  const int64_t length = batch.input_ids.size(1);
  // (B, T, d); the memory enters where the [MEM] embeddings were.
  torch::Tensor words =
      at::embedding(encoder.word_embeddings(), batch.input_ids);
  if (m > 0) words.narrow(1, 1, m).copy_(memory);
  torch::Tensor mask;  // none: every query sees every key
  if (batch.padded) {
    mask = AttentionMask(batch.attention_mask, encoder.dtype());
  } else if (inference->bottleneck_mask.defined()) {
    mask = inference->bottleneck_mask.narrow(0, 0, length).narrow(1, 0, length);
  }
  // Only [CLS] and the memory are read from the last layer.
  torch::Tensor hidden = encoder.Forward(words, mask, 1 + m);  // (B, 1+m, d)
  StepOutput out;
  out.memory = hidden.narrow(1, 1, m).to(memory.dtype());  // (B, m, d)
  if (with_logits) out.logits = classifier(bert->pooler(hidden));
  return out;
}

StepOutput RmtModelImpl::ForwardModules(const torch::Tensor& memory,
                                        const SegmentBatch& batch,
                                        bool with_logits,
                                        const torch::Tensor& context,
                                        const torch::Tensor& context_valid) {
  const int64_t m = config_.rmt.num_mem_tokens;
  torch::Tensor words =
      bert->embeddings->word_embeddings(batch.input_ids);  // (B, T, d)
  // Memory enters where the [MEM] embeddings were; torch::cat keeps the
  // gradient path to the previous segment's memory.
  torch::Tensor inputs = torch::cat(
      {words.slice(1, 0, 1), memory.to(words.dtype()), words.slice(1, 1 + m)},
      1);  // (B, T, d)
  torch::Tensor embedded = bert->embeddings(inputs);
  torch::Tensor valid = batch.attention_mask;
  int64_t context_length = 0;
  if (context.defined()) {
    context_length = context.size(1);
    embedded = torch::cat({embedded, context.to(embedded.dtype())}, 1);
    valid = torch::cat({valid, context_valid}, 1);
  }
  torch::Tensor hidden = bert->encoder(
      embedded, AttentionMask(valid, embedded.scalar_type(), context_length));
  StepOutput out;
  out.memory = hidden.slice(1, 1, 1 + m).to(memory.dtype());  // (B, m, d)
  if (!context.defined()) out.states = hidden;
  if (with_logits) {
    torch::Tensor pooled = torch::nn::functional::dropout(
        bert->pooler(hidden), torch::nn::functional::DropoutFuncOptions()
                                  .p(config_.hidden_dropout_prob)
                                  .training(is_training()));
    out.logits = classifier(pooled);  // (B, num_labels)
  }
  return out;
}

absl::Status ValidateSegment(const ModelConfig& config,
                             const std::vector<int32_t>& tokens) {
  if (tokens.empty()) {
    return absl::InvalidArgumentError("a segment needs at least one token");
  }
  if (static_cast<int64_t>(tokens.size()) > config.rmt.segment_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment holds at most ", config.rmt.segment_size,
                     " tokens, got ", tokens.size()));
  }
  const int64_t limit = config.content_vocab_size();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", tokens[i], " at index ", i,
                       " is out of range [0, ", limit, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace rmt
