// ModelConfig: the hyper-parameters of an RMT model directory's config.json.
//
// The file uses Hugging Face BERT keys plus an "rmt" object:
//   {"vocab_size": 30532, "hidden_size": 768, ..., "id2label": {"0": "office"},
//    "rmt": {"num_mem_tokens": 10, "segment_size": 499,
//            "memory_attention": "full"}}
// Without "rmt" it is a plain Hugging Face BERT (BertForSequenceClassification
// as save_pretrained writes it): no memory tokens, and a segment as long as
// max_position_embeddings allows; tools/rmt-import turns one into an RMT.
// Keys Hugging Face writes that do not change the forward pass are ignored;
// those that do and are not implemented (position_embedding_type other than
// "absolute", is_decoder, add_cross_attention) are refused.
// Every problem is reported as INVALID_ARGUMENT naming the file and the key.
#ifndef RMT_MODEL_CONFIG_H_
#define RMT_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rmt {

// How sequence tokens may attend. kBottleneck is the Memory Transformer's
// MemBottleneck: sequence tokens see only memory tokens, memory sees all.
enum class MemoryAttention { kFull, kBottleneck };

enum class Activation { kGelu, kGeluTanh, kRelu };

// The precision sessions' memories are stored in, independent of the
// precision the encoder computes in (a bf16 memory halves per-session state).
enum class MemoryDType { kFloat32, kBFloat16, kFloat16 };

absl::string_view MemoryAttentionName(MemoryAttention attention);
absl::string_view MemoryDTypeName(MemoryDType dtype);  // "float32", ...
absl::string_view ActivationName(Activation activation);

struct RmtConfig {
  // 0 only for a plain BERT (config.json without "rmt"): nothing to remember.
  int64_t num_mem_tokens = 10;
  // Content tokens per segment; a segment's full length adds [CLS], the
  // memory tokens and two [SEP].
  int64_t segment_size = 499;
  MemoryAttention memory_attention = MemoryAttention::kFull;
  MemoryDType memory_dtype = MemoryDType::kFloat32;
};

struct ModelConfig {
  // Rows of the word-embedding matrix. The last rmt.num_mem_tokens rows are
  // the memory tokens' initial embeddings (as in the RMT reference, which
  // grows BERT's vocabulary by the memory tokens), so vocab.txt holds
  // vocab_size - num_mem_tokens entries.
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  Activation hidden_act = Activation::kGelu;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  // id2label in id order; the classifier has one logit per label. Absent:
  // Hugging Face's default, LABEL_0 and LABEL_1.
  std::vector<std::string> labels;
  RmtConfig rmt;

  // Parses and validates config.json text; `source` names the file in errors.
  static absl::StatusOr<ModelConfig> FromJson(absl::string_view json_text,
                                              absl::string_view source);
  static absl::StatusOr<ModelConfig> LoadFile(const std::string& path);

  // Checks the invariants FromJson enforces (useful for configs built in code),
  // including upper bounds on every size and on the parameter count (20e9)
  // that no real BERT comes near, so that a corrupt config is refused here
  // rather than by torch failing to allocate it.
  absl::Status Validate(absl::string_view source = "config") const;
  std::string ToJson() const;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Ids [0, content_vocab_size()) are ordinary tokens from vocab.txt.
  int64_t content_vocab_size() const { return vocab_size - rmt.num_mem_tokens; }
  // Full positions of one segment: [CLS] [MEM]*m [SEP] tokens [SEP].
  int64_t segment_length() const {
    return rmt.segment_size + rmt.num_mem_tokens + 3;
  }
  int64_t num_labels() const { return static_cast<int64_t>(labels.size()); }
};

}  // namespace rmt

#endif  // RMT_MODEL_CONFIG_H_
