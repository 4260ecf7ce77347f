#include "model/config.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/file_util.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace rmt {
namespace {

using Json = nlohmann::json;

absl::Status ConfigError(absl::string_view source, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", message));
}

// Upper bounds on every dimension, far beyond any BERT (BERT-large is 1024
// wide, 24 layers, 30522 words, 512 positions) yet small enough that a typo
// or a corrupt config.json is refused here instead of making torch try to
// allocate terabytes (an uncaught c10::Error or std::bad_alloc at start-up).
constexpr int64_t kMaxHiddenSize = 65536;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxIntermediateSize = 4 * kMaxHiddenSize;
constexpr int64_t kMaxVocabSize = 10'000'000;
constexpr int64_t kMaxPositions = 1 << 20;
constexpr int64_t kMaxTypeVocabSize = 1024;
constexpr int64_t kMaxMemTokens = 65536;
// Each bound above still allows configs of petabytes when combined; the
// total is what decides whether the model fits anywhere (20e9 float32
// parameters are 80 GB).
constexpr double kMaxParameters = 20e9;

// The parameters RmtModel allocates for `config` (the shapes are listed in
// checkpoint_layout.h). In double so that no combination of sizes can
// overflow.
double ParameterCount(const ModelConfig& config) {
  const double d = static_cast<double>(config.hidden_size);
  const double inner = static_cast<double>(config.intermediate_size);
  const double embeddings =
      (static_cast<double>(config.vocab_size) +
       static_cast<double>(config.max_position_embeddings) +
       static_cast<double>(config.type_vocab_size)) *
          d +
      2 * d;
  const double layer =
      4 * (d * d + d) + 2 * d + (d * inner + inner) + (inner * d + d) + 2 * d;
  const double pooler = d * d + d;
  const double labels = static_cast<double>(config.labels.size());
  const double classifier = d * labels + labels;
  return embeddings + static_cast<double>(config.num_hidden_layers) * layer +
         pooler + classifier;
}

absl::StatusOr<const Json*> Field(const Json& object, absl::string_view source,
                                  const std::string& key) {
  auto it = object.find(key);
  if (it == object.end()) {
    return ConfigError(source, absl::StrCat("missing key \"", key, "\""));
  }
  return &*it;
}

absl::StatusOr<int64_t> PositiveInt(const Json& object,
                                    absl::string_view source,
                                    const std::string& key) {
  ASSIGN_OR_RETURN(const Json* value, Field(object, source, key));
  if (!value->is_number_integer() || value->get<int64_t>() <= 0) {
    return ConfigError(
        source, absl::StrCat("\"", key, "\" must be a positive integer"));
  }
  return value->get<int64_t>();
}

absl::StatusOr<double> NumberOr(const Json& object, absl::string_view source,
                                const std::string& key, double fallback,
                                double min, double max) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_number() || it->get<double>() < min || it->get<double>() > max) {
    return ConfigError(
        source, absl::StrCat("\"", key, "\" must be a number in [", min, ", ",
                             max, "]"));
  }
  return it->get<double>();
}

absl::StatusOr<Activation> ParseActivation(const Json& value,
                                           absl::string_view source) {
  if (value.is_string()) {
    const std::string name = value.get<std::string>();
    if (name == "gelu") return Activation::kGelu;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
      return Activation::kGeluTanh;
    }
    if (name == "relu") return Activation::kRelu;
  }
  return ConfigError(source,
                     absl::StrCat("unknown \"hidden_act\" ", value.dump(),
                                  " (supported: gelu, gelu_new, "
                                  "gelu_pytorch_tanh, relu)"));
}

absl::StatusOr<std::vector<std::string>> ParseLabels(const Json& value,
                                                     absl::string_view source) {
  if (!value.is_object() || value.empty()) {
    return ConfigError(source, "\"id2label\" must be a non-empty object");
  }
  std::vector<std::string> labels(value.size());
  std::vector<bool> seen(value.size(), false);
  for (const auto& [key, label] : value.items()) {
    size_t id = 0;
    bool numeric = !key.empty() && key.size() < 10 &&
                   key.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) id = std::stoul(key);
    if (!numeric || id >= labels.size() || seen[id]) {
      return ConfigError(
          source,
          absl::StrCat("\"id2label\" keys must be the ids 0..",
                       labels.size() - 1, " each once; got \"", key, "\""));
    }
    if (!label.is_string()) {
      return ConfigError(
          source, absl::StrCat("\"id2label\"[\"", key, "\"] must be a string"));
    }
    seen[id] = true;
    labels[id] = label.get<std::string>();
  }
  return labels;
}

// `max_position_embeddings` sizes the segment of a plain BERT checkpoint.
absl::StatusOr<RmtConfig> ParseRmt(const Json& root, absl::string_view source,
                                   int64_t max_position_embeddings) {
  if (!root.contains("rmt")) {
    // A Hugging Face BERT as save_pretrained writes it: no memory, and a
    // segment ([CLS] [SEP] tokens [SEP]) as long as the positions allow.
    RmtConfig config;
    config.num_mem_tokens = 0;
    config.segment_size = max_position_embeddings - 3;
    return config;
  }
  const Json* rmt = &root["rmt"];
  if (!rmt->is_object())
    return ConfigError(source, "\"rmt\" must be an object");
  const std::string rmt_source = absl::StrCat(source, " (rmt)");
  RmtConfig config;
  ASSIGN_OR_RETURN(config.num_mem_tokens,
                   PositiveInt(*rmt, rmt_source, "num_mem_tokens"));
  ASSIGN_OR_RETURN(config.segment_size,
                   PositiveInt(*rmt, rmt_source, "segment_size"));
  auto attention = rmt->find("memory_attention");
  if (attention != rmt->end()) {
    if (*attention == "full") {
      config.memory_attention = MemoryAttention::kFull;
    } else if (*attention == "bottleneck") {
      config.memory_attention = MemoryAttention::kBottleneck;
    } else {
      return ConfigError(
          rmt_source, absl::StrCat("\"memory_attention\" must be \"full\" or "
                                   "\"bottleneck\", got ",
                                   attention->dump()));
    }
  }
  auto memory_dtype = rmt->find("memory_dtype");
  if (memory_dtype != rmt->end()) {
    bool known = false;
    for (MemoryDType dtype : {MemoryDType::kFloat32, MemoryDType::kBFloat16,
                              MemoryDType::kFloat16}) {
      if (memory_dtype->is_string() &&
          memory_dtype->get<std::string>() == MemoryDTypeName(dtype)) {
        config.memory_dtype = dtype;
        known = true;
      }
    }
    if (!known) {
      return ConfigError(rmt_source,
                         absl::StrCat("\"memory_dtype\" must be \"float32\", "
                                      "\"bfloat16\" or \"float16\", got ",
                                      memory_dtype->dump()));
    }
  }
  return config;
}

// Hugging Face BertConfig keys that change the forward pass in ways this
// encoder does not implement: a checkpoint using them is refused rather than
// computed wrongly. Keys that only matter to training or generation
// (classifier_dropout, initializer_range, use_cache, ...) are ignored.
absl::Status RefuseUnsupportedBertVariants(const Json& root,
                                           absl::string_view source) {
  auto type = root.find("position_embedding_type");
  if (type != root.end() && *type != "absolute") {
    return ConfigError(
        source, absl::StrCat("\"position_embedding_type\" ", type->dump(),
                             " is not supported (only \"absolute\")"));
  }
  for (const char* key : {"is_decoder", "add_cross_attention"}) {
    auto it = root.find(key);
    if (it != root.end() && *it != false) {
      return ConfigError(source, absl::StrCat("\"", key, "\": ", it->dump(),
                                              " is not supported (an encoder "
                                              "only)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view MemoryAttentionName(MemoryAttention attention) {
  return attention == MemoryAttention::kFull ? "full" : "bottleneck";
}

absl::string_view MemoryDTypeName(MemoryDType dtype) {
  switch (dtype) {
    case MemoryDType::kFloat32:
      return "float32";
    case MemoryDType::kBFloat16:
      return "bfloat16";
    case MemoryDType::kFloat16:
      return "float16";
  }
  return "float32";
}

absl::string_view ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kGelu:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_new";
    case Activation::kRelu:
      return "relu";
  }
  return "gelu";
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(absl::string_view json_text,
                                                  absl::string_view source) {
  Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return ConfigError(source, "not a JSON object");
  }
  ModelConfig config;
  ASSIGN_OR_RETURN(config.vocab_size, PositiveInt(root, source, "vocab_size"));
  ASSIGN_OR_RETURN(config.hidden_size,
                   PositiveInt(root, source, "hidden_size"));
  ASSIGN_OR_RETURN(config.num_hidden_layers,
                   PositiveInt(root, source, "num_hidden_layers"));
  ASSIGN_OR_RETURN(config.num_attention_heads,
                   PositiveInt(root, source, "num_attention_heads"));
  ASSIGN_OR_RETURN(config.intermediate_size,
                   PositiveInt(root, source, "intermediate_size"));
  ASSIGN_OR_RETURN(const Json* act, Field(root, source, "hidden_act"));
  ASSIGN_OR_RETURN(config.hidden_act, ParseActivation(*act, source));
  ASSIGN_OR_RETURN(config.max_position_embeddings,
                   PositiveInt(root, source, "max_position_embeddings"));
  ASSIGN_OR_RETURN(config.type_vocab_size,
                   PositiveInt(root, source, "type_vocab_size"));
  ASSIGN_OR_RETURN(const Json* eps, Field(root, source, "layer_norm_eps"));
  if (!eps->is_number() || eps->get<double>() <= 0 || eps->get<double>() > 1) {
    return ConfigError(source, "\"layer_norm_eps\" must be a number in (0, 1]");
  }
  config.layer_norm_eps = eps->get<double>();
  ASSIGN_OR_RETURN(config.hidden_dropout_prob,
                   NumberOr(root, source, "hidden_dropout_prob", 0.1, 0, 1));
  ASSIGN_OR_RETURN(
      config.attention_probs_dropout_prob,
      NumberOr(root, source, "attention_probs_dropout_prob", 0.1, 0, 1));
  if (root.contains("id2label")) {
    ASSIGN_OR_RETURN(config.labels, ParseLabels(root["id2label"], source));
  } else {
    // Hugging Face leaves its default labels out of the file it writes.
    config.labels = {"LABEL_0", "LABEL_1"};
  }
  RETURN_IF_ERROR(RefuseUnsupportedBertVariants(root, source));
  ASSIGN_OR_RETURN(config.rmt,
                   ParseRmt(root, source, config.max_position_embeddings));
  RETURN_IF_ERROR(config.Validate(source));
  return config;
}

absl::StatusOr<ModelConfig> ModelConfig::LoadFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return FromJson(text, path);
}

absl::Status ModelConfig::Validate(absl::string_view source) const {
  // Configs built in code reach here without FromJson's per-key checks, so
  // name the offending key as FromJson would.
  struct Size {
    const char* key;
    int64_t value;
    int64_t max;
    int64_t min = 1;
  };
  const Size sizes[] = {
      {"vocab_size", vocab_size, kMaxVocabSize},
      {"hidden_size", hidden_size, kMaxHiddenSize},
      {"num_hidden_layers", num_hidden_layers, kMaxLayers},
      // At most one head per hidden unit; the divisibility check below
      // enforces it too, but this names the key that is absurd.
      {"num_attention_heads", num_attention_heads, kMaxHiddenSize},
      {"intermediate_size", intermediate_size, kMaxIntermediateSize},
      {"max_position_embeddings", max_position_embeddings, kMaxPositions},
      {"type_vocab_size", type_vocab_size, kMaxTypeVocabSize},
      // 0: a plain BERT (a Hugging Face checkpoint as saved, no "rmt").
      {"rmt.num_mem_tokens", rmt.num_mem_tokens, kMaxMemTokens, 0},
      {"rmt.segment_size", rmt.segment_size, kMaxPositions}};
  for (const Size& size : sizes) {
    if (size.value < size.min) {
      return ConfigError(
          source, absl::StrCat("\"", size.key, "\" must be ",
                               size.min == 0 ? "a non-negative" : "a positive",
                               " integer, got ", size.value));
    }
    if (size.value > size.max) {
      return ConfigError(source,
                         absl::StrCat("\"", size.key, "\" is ", size.value,
                                      ", above the limit of ", size.max));
    }
  }
  if (hidden_size % num_attention_heads != 0) {
    return ConfigError(source, absl::StrCat("\"hidden_size\" ", hidden_size,
                                            " is not a multiple of "
                                            "\"num_attention_heads\" ",
                                            num_attention_heads));
  }
  // [CLS], [SEP], [PAD] and at least one ordinary token live below the
  // memory rows.
  if (content_vocab_size() < 4) {
    return ConfigError(source,
                       absl::StrCat("\"vocab_size\" ", vocab_size,
                                    " leaves no room for a vocabulary beside ",
                                    rmt.num_mem_tokens, " memory tokens"));
  }
  // Compared without forming segment_length(): for a huge segment_size the
  // sum overflows int64 (undefined behaviour; in practice it wraps negative
  // and the check would pass). The right side cannot overflow since every
  // term is positive.
  if (rmt.segment_size > max_position_embeddings - rmt.num_mem_tokens - 3) {
    return ConfigError(
        source,
        absl::StrCat("a segment needs \"segment_size\" ", rmt.segment_size,
                     " + \"num_mem_tokens\" ", rmt.num_mem_tokens,
                     " + 3 positions but \"max_position_embeddings\" is ",
                     max_position_embeddings));
  }
  if (labels.empty()) return ConfigError(source, "no labels in \"id2label\"");
  const double parameters = ParameterCount(*this);
  if (parameters > kMaxParameters) {
    return ConfigError(
        source,
        absl::StrFormat("\"vocab_size\" %d, \"hidden_size\" %d, "
                        "\"num_hidden_layers\" %d, \"intermediate_size\" %d "
                        "and \"max_position_embeddings\" %d make %.3g "
                        "parameters, above the limit of %.3g",
                        vocab_size, hidden_size, num_hidden_layers,
                        intermediate_size, max_position_embeddings, parameters,
                        kMaxParameters));
  }
  return absl::OkStatus();
}

std::string ModelConfig::ToJson() const {
  Json id2label = Json::object();
  Json label2id = Json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = i;
  }
  Json root = {
      {"architectures", {"BertForSequenceClassification"}},
      {"model_type", "bert"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"intermediate_size", intermediate_size},
      {"hidden_act", std::string(ActivationName(hidden_act))},
      {"max_position_embeddings", max_position_embeddings},
      {"type_vocab_size", type_vocab_size},
      {"layer_norm_eps", layer_norm_eps},
      {"hidden_dropout_prob", hidden_dropout_prob},
      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
      {"id2label", id2label},
      {"label2id", label2id},
      {"rmt",
       {{"num_mem_tokens", rmt.num_mem_tokens},
        {"segment_size", rmt.segment_size},
        {"memory_attention",
         std::string(MemoryAttentionName(rmt.memory_attention))},
        {"memory_dtype", std::string(MemoryDTypeName(rmt.memory_dtype))}}},
  };
  // A plain BERT is written as Hugging Face writes it (FromJson derives its
  // segment size from max_position_embeddings).
  if (rmt.num_mem_tokens == 0) root.erase("rmt");
  return root.dump(2) + "\n";
}

}  // namespace rmt
