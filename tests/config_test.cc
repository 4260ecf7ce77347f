#include "model/config.h"

#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rmt {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kSource[] = "models/test/config.json";

// The golden model's config (tests/golden/full/model/config.json).
Json ValidConfig() {
  return Json::parse(R"({
    "architectures": ["BertForSequenceClassification"],
    "model_type": "bert",
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "id2label": {"0": "label_a", "1": "label_b", "2": "label_c"},
    "label2id": {"label_a": 0, "label_b": 1, "label_c": 2},
    "rmt": {"num_mem_tokens": 4, "segment_size": 12,
            "memory_attention": "full"}
  })");
}

absl::StatusOr<ModelConfig> Parse(const Json& json) {
  return ModelConfig::FromJson(json.dump(), kSource);
}

TEST(ModelConfigTest, ParsesValidConfig) {
  auto config = Parse(ValidConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vocab_size, 64);
  EXPECT_EQ(config->hidden_size, 32);
  EXPECT_EQ(config->num_hidden_layers, 2);
  EXPECT_EQ(config->num_attention_heads, 4);
  EXPECT_EQ(config->intermediate_size, 64);
  EXPECT_EQ(config->hidden_act, Activation::kGelu);
  EXPECT_EQ(config->max_position_embeddings, 64);
  EXPECT_EQ(config->type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(config->layer_norm_eps, 1e-12);
  EXPECT_DOUBLE_EQ(config->hidden_dropout_prob, 0.1);
  EXPECT_THAT(config->labels, ElementsAre("label_a", "label_b", "label_c"));
  EXPECT_EQ(config->rmt.num_mem_tokens, 4);
  EXPECT_EQ(config->rmt.segment_size, 12);
  EXPECT_EQ(config->rmt.memory_attention, MemoryAttention::kFull);
  EXPECT_EQ(config->head_dim(), 8);
  EXPECT_EQ(config->content_vocab_size(), 60);
  EXPECT_EQ(config->segment_length(), 19);
  EXPECT_EQ(config->num_labels(), 3);
}

TEST(ModelConfigTest, OptionalKeysTakeDefaults) {
  Json json = ValidConfig();
  json.erase("hidden_dropout_prob");
  json.erase("attention_probs_dropout_prob");
  json.erase("label2id");
  json["rmt"].erase("memory_attention");
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->hidden_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(config->attention_probs_dropout_prob, 0.1);
  EXPECT_EQ(config->rmt.memory_attention, MemoryAttention::kFull);
}

// A Hugging Face checkpoint as save_pretrained writes it: no "rmt", and keys
// of its own that do not change the forward pass.
TEST(ModelConfigTest, ConfigWithoutRmtIsPlainBert) {
  Json json = ValidConfig();
  json.erase("rmt");
  json["classifier_dropout"] = nullptr;
  json["initializer_range"] = 0.02;
  json["pad_token_id"] = 0;
  json["position_embedding_type"] = "absolute";
  json["torch_dtype"] = "float32";
  json["transformers_version"] = "4.44.2";
  json["use_cache"] = true;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rmt.num_mem_tokens, 0);
  EXPECT_EQ(config->rmt.segment_size, 64 - 3);
  EXPECT_EQ(config->content_vocab_size(), 64);
  // Written back the way Hugging Face wrote it: without "rmt".
  const Json written = Json::parse(config->ToJson());
  EXPECT_FALSE(written.contains("rmt"));
  auto again = ModelConfig::FromJson(config->ToJson(), kSource);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToJson(), config->ToJson());
}

// save_pretrained omits id2label when it is the default (two labels).
TEST(ModelConfigTest, MissingId2LabelIsHuggingFacesDefault) {
  Json json = ValidConfig();
  json.erase("id2label");
  json.erase("label2id");
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->labels, ElementsAre("LABEL_0", "LABEL_1"));
}

TEST(ModelConfigTest, RefusesBertVariantsItCannotCompute) {
  const std::vector<std::pair<std::string, Json>> variants = {
      {"position_embedding_type", "relative_key"},
      {"is_decoder", true},
      {"add_cross_attention", true}};
  for (const auto& [key, value] : variants) {
    Json json = ValidConfig();
    json[key] = value;
    auto config = Parse(json);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << key;
    EXPECT_THAT(config.status().message(),
                AllOf(HasSubstr(kSource), HasSubstr(key)));
  }
}

TEST(ModelConfigTest, LabelsFollowIdsNotKeyOrder) {
  Json json = ValidConfig();
  // JSON objects are unordered; "10" sorts before "2" as text.
  json["id2label"] = Json::object();
  for (int i = 0; i < 11; ++i) {
    json["id2label"][std::to_string(i)] = "l" + std::to_string(i);
  }
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->num_labels(), 11);
  EXPECT_EQ(config->labels[2], "l2");
  EXPECT_EQ(config->labels[10], "l10");
}

TEST(ModelConfigTest, ParsesEveryActivationAndAttention) {
  const std::vector<std::pair<std::string, Activation>> activations = {
      {"gelu", Activation::kGelu},
      {"gelu_new", Activation::kGeluTanh},
      {"gelu_pytorch_tanh", Activation::kGeluTanh},
      {"relu", Activation::kRelu}};
  for (const auto& [name, want] : activations) {
    Json json = ValidConfig();
    json["hidden_act"] = name;
    auto config = Parse(json);
    ASSERT_TRUE(config.ok()) << name << ": " << config.status();
    EXPECT_EQ(config->hidden_act, want) << name;
  }
  Json json = ValidConfig();
  json["rmt"]["memory_attention"] = "bottleneck";
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rmt.memory_attention, MemoryAttention::kBottleneck);
  for (MemoryDType dtype :
       {MemoryDType::kFloat32, MemoryDType::kBFloat16, MemoryDType::kFloat16}) {
    json["rmt"]["memory_dtype"] = std::string(MemoryDTypeName(dtype));
    config = Parse(json);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->rmt.memory_dtype, dtype);
  }
}

TEST(ModelConfigTest, ToJsonRoundTrips) {
  ModelConfig original;
  original.vocab_size = 30532;
  original.hidden_size = 768;
  original.num_hidden_layers = 12;
  original.num_attention_heads = 12;
  original.intermediate_size = 3072;
  original.hidden_act = Activation::kGeluTanh;
  original.max_position_embeddings = 512;
  original.type_vocab_size = 1;
  original.layer_norm_eps = 1e-5;
  original.hidden_dropout_prob = 0.0;
  original.attention_probs_dropout_prob = 0.25;
  original.labels = {"office", "home", "a \"quoted\" label", "ünïcode"};
  original.rmt.num_mem_tokens = 10;
  original.rmt.segment_size = 499;
  original.rmt.memory_attention = MemoryAttention::kBottleneck;
  original.rmt.memory_dtype = MemoryDType::kBFloat16;
  ASSERT_TRUE(original.Validate().ok());

  const std::string text = original.ToJson();
  auto parsed = ModelConfig::FromJson(text, kSource);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_EQ(parsed->vocab_size, original.vocab_size);
  EXPECT_EQ(parsed->hidden_size, original.hidden_size);
  EXPECT_EQ(parsed->num_hidden_layers, original.num_hidden_layers);
  EXPECT_EQ(parsed->num_attention_heads, original.num_attention_heads);
  EXPECT_EQ(parsed->intermediate_size, original.intermediate_size);
  EXPECT_EQ(parsed->hidden_act, original.hidden_act);
  EXPECT_EQ(parsed->max_position_embeddings, original.max_position_embeddings);
  EXPECT_EQ(parsed->type_vocab_size, original.type_vocab_size);
  // Exact: the JSON must carry every bit of the doubles.
  EXPECT_EQ(parsed->layer_norm_eps, original.layer_norm_eps);
  EXPECT_EQ(parsed->hidden_dropout_prob, original.hidden_dropout_prob);
  EXPECT_EQ(parsed->attention_probs_dropout_prob,
            original.attention_probs_dropout_prob);
  EXPECT_EQ(parsed->labels, original.labels);
  EXPECT_EQ(parsed->rmt.num_mem_tokens, original.rmt.num_mem_tokens);
  EXPECT_EQ(parsed->rmt.segment_size, original.rmt.segment_size);
  EXPECT_EQ(parsed->rmt.memory_attention, original.rmt.memory_attention);
  EXPECT_EQ(parsed->rmt.memory_dtype, original.rmt.memory_dtype);
  // And a second trip is a fixed point.
  EXPECT_EQ(parsed->ToJson(), text);
}

TEST(ModelConfigTest, ToJsonWritesHuggingFaceKeys) {
  auto config = Parse(ValidConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  const Json json = Json::parse(config->ToJson());
  EXPECT_EQ(json["model_type"], "bert");
  EXPECT_EQ(json["architectures"][0], "BertForSequenceClassification");
  EXPECT_EQ(json["hidden_act"], "gelu");
  EXPECT_EQ(json["id2label"]["1"], "label_b");
  EXPECT_EQ(json["label2id"]["label_c"], 2);
  EXPECT_EQ(json["rmt"]["memory_attention"], "full");
}

TEST(ModelConfigTest, LoadsGoldenConfigs) {
  for (const std::string mode : {"full", "bottleneck"}) {
    const std::string path = std::string(RMT_SOURCE_DIR) + "/tests/golden/" +
                             mode + "/model/config.json";
    auto config = ModelConfig::LoadFile(path);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(MemoryAttentionName(config->rmt.memory_attention), mode);
    EXPECT_EQ(config->vocab_size, 64);
    EXPECT_EQ(config->rmt.num_mem_tokens, 4);
    EXPECT_EQ(config->num_labels(), 5);
  }
}

TEST(ModelConfigTest, LoadFileMissingIsNotFound) {
  const std::string path = ::testing::TempDir() + "no/such/config.json";
  auto config = ModelConfig::LoadFile(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr(path));
}

TEST(ModelConfigTest, RefusesTextThatIsNotAnObject) {
  for (const char* text : {"", "{", "[1, 2]", "\"config\"", "{} {}"}) {
    auto config = ModelConfig::FromJson(text, kSource);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << text;
    EXPECT_THAT(config.status().message(),
                AllOf(HasSubstr(kSource), HasSubstr("not a JSON object")))
        << text;
  }
}

// One malformed config: `mutate` breaks ValidConfig(); the error must be
// INVALID_ARGUMENT and mention the source and `issue` (which names the key).
struct BadCase {
  std::string label;
  std::function<void(Json&)> mutate;
  std::string issue;
};

std::vector<BadCase> MissingKeyCases() {
  std::vector<BadCase> cases;
  for (const char* key :
       {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "hidden_act", "max_position_embeddings",
        "type_vocab_size", "layer_norm_eps"}) {
    cases.push_back({std::string("missing_") + key,
                     [key](Json& j) { j.erase(key); },
                     std::string("missing key \"") + key + "\""});
  }
  for (const char* key : {"num_mem_tokens", "segment_size"}) {
    cases.push_back({std::string("missing_rmt_") + key,
                     [key](Json& j) { j["rmt"].erase(key); },
                     std::string("(rmt): missing key \"") + key + "\""});
  }
  return cases;
}

std::vector<BadCase> WrongValueCases() {
  return {
      {"vocab_size_string", [](Json& j) { j["vocab_size"] = "64"; },
       "\"vocab_size\" must be a positive integer"},
      {"hidden_size_fraction", [](Json& j) { j["hidden_size"] = 32.5; },
       "\"hidden_size\" must be a positive integer"},
      {"num_hidden_layers_zero", [](Json& j) { j["num_hidden_layers"] = 0; },
       "\"num_hidden_layers\" must be a positive integer"},
      {"num_attention_heads_negative",
       [](Json& j) { j["num_attention_heads"] = -4; },
       "\"num_attention_heads\" must be a positive integer"},
      {"intermediate_size_null",
       [](Json& j) { j["intermediate_size"] = nullptr; },
       "\"intermediate_size\" must be a positive integer"},
      {"max_position_embeddings_bool",
       [](Json& j) { j["max_position_embeddings"] = true; },
       "\"max_position_embeddings\" must be a positive integer"},
      {"type_vocab_size_array",
       [](Json& j) { j["type_vocab_size"] = Json::array({2}); },
       "\"type_vocab_size\" must be a positive integer"},
      {"vocab_size_overflows_int64",
       [](Json& j) { j["vocab_size"] = uint64_t{1} << 63; },
       "\"vocab_size\" must be a positive integer"},
      {"layer_norm_eps_string", [](Json& j) { j["layer_norm_eps"] = "1e-12"; },
       "\"layer_norm_eps\" must be a number in (0, 1]"},
      {"layer_norm_eps_zero", [](Json& j) { j["layer_norm_eps"] = 0; },
       "\"layer_norm_eps\" must be a number in (0, 1]"},
      {"dropout_out_of_range", [](Json& j) { j["hidden_dropout_prob"] = 1.5; },
       "\"hidden_dropout_prob\" must be a number in [0, 1]"},
      {"attention_dropout_string",
       [](Json& j) { j["attention_probs_dropout_prob"] = "0.1"; },
       "\"attention_probs_dropout_prob\" must be a number in [0, 1]"},
      {"hidden_act_unknown", [](Json& j) { j["hidden_act"] = "swish"; },
       "unknown \"hidden_act\" \"swish\""},
      {"hidden_act_not_string", [](Json& j) { j["hidden_act"] = 1; },
       "unknown \"hidden_act\" 1"},
      {"hidden_not_divisible_by_heads", [](Json& j) { j["hidden_size"] = 30; },
       "\"hidden_size\" 30 is not a multiple of \"num_attention_heads\" 4"},
      // 12 + 4 + 3 = 19 positions; 18 is one short.
      {"segment_too_long", [](Json& j) { j["max_position_embeddings"] = 18; },
       "\"max_position_embeddings\" is 18"},
      {"segment_size_too_long", [](Json& j) { j["rmt"]["segment_size"] = 58; },
       "\"segment_size\" 58 + \"num_mem_tokens\" 4 + 3 positions"},
      // segment_size + num_mem_tokens + 3 overflows int64; must not wrap
      // around into an accepted config.
      {"segment_size_huge",
       [](Json& j) {
         j["rmt"]["segment_size"] = std::numeric_limits<int64_t>::max();
       },
       "\"rmt.segment_size\" is 9223372036854775807, above the limit"},
      {"vocab_without_room_for_memory",
       [](Json& j) { j["rmt"]["num_mem_tokens"] = 61; },
       "\"vocab_size\" 64 leaves no room"},
      {"rmt_not_object", [](Json& j) { j["rmt"] = "full"; },
       "\"rmt\" must be an object"},
      {"num_mem_tokens_string",
       [](Json& j) { j["rmt"]["num_mem_tokens"] = "4"; },
       "(rmt): \"num_mem_tokens\" must be a positive integer"},
      {"segment_size_zero", [](Json& j) { j["rmt"]["segment_size"] = 0; },
       "(rmt): \"segment_size\" must be a positive integer"},
      {"memory_dtype_unknown",
       [](Json& j) { j["rmt"]["memory_dtype"] = "int8"; },
       "\"memory_dtype\" must be \"float32\", \"bfloat16\" or \"float16\", "
       "got \"int8\""},
      {"memory_attention_unknown",
       [](Json& j) { j["rmt"]["memory_attention"] = "sparse"; },
       "\"memory_attention\" must be \"full\" or \"bottleneck\", got "
       "\"sparse\""},
      {"memory_attention_not_string",
       [](Json& j) { j["rmt"]["memory_attention"] = 0; },
       "\"memory_attention\" must be \"full\" or \"bottleneck\", got 0"},
      {"id2label_array",
       [](Json& j) {
         j["id2label"] = Json::array({"a", "b"});
       },
       "\"id2label\" must be a non-empty object"},
      {"id2label_empty", [](Json& j) { j["id2label"] = Json::object(); },
       "\"id2label\" must be a non-empty object"},
      {"id2label_gap",
       [](Json& j) {
         j["id2label"] = {{"0", "a"}, {"2", "c"}};
       },
       "\"id2label\" keys must be the ids 0..1 each once; got \"2\""},
      {"id2label_word_key",
       [](Json& j) {
         j["id2label"] = {{"zero", "a"}};
       },
       "\"id2label\" keys must be the ids 0..0 each once; got \"zero\""},
      {"id2label_negative_key",
       [](Json& j) {
         j["id2label"] = {{"-1", "a"}};
       },
       "got \"-1\""},
      {"id2label_huge_key",
       [](Json& j) {
         j["id2label"] = {{"99999999999999999999", "a"}};
       },
       "got \"99999999999999999999\""},
      // Positive but absurd sizes: each used to reach torch, which threw
      // (uncaught) trying to allocate the model.
      {"hidden_size_2_31", [](Json& j) { j["hidden_size"] = int64_t{1} << 31; },
       "\"hidden_size\" is 2147483648, above the limit of 65536"},
      {"hidden_size_2_40", [](Json& j) { j["hidden_size"] = int64_t{1} << 40; },
       "\"hidden_size\" is 1099511627776, above the limit"},
      {"intermediate_size_2_40",
       [](Json& j) { j["intermediate_size"] = int64_t{1} << 40; },
       "\"intermediate_size\" is 1099511627776, above the limit"},
      {"max_position_embeddings_2_40",
       [](Json& j) { j["max_position_embeddings"] = int64_t{1} << 40; },
       "\"max_position_embeddings\" is 1099511627776, above the limit"},
      {"type_vocab_size_2_40",
       [](Json& j) { j["type_vocab_size"] = int64_t{1} << 40; },
       "\"type_vocab_size\" is 1099511627776, above the limit"},
      {"vocab_size_2_40", [](Json& j) { j["vocab_size"] = int64_t{1} << 40; },
       "\"vocab_size\" is 1099511627776, above the limit"},
      {"num_hidden_layers_million",
       [](Json& j) { j["num_hidden_layers"] = 1000000; },
       "\"num_hidden_layers\" is 1000000, above the limit of 1024"},
      {"num_attention_heads_2_40",
       [](Json& j) { j["num_attention_heads"] = int64_t{1} << 40; },
       "\"num_attention_heads\" is 1099511627776, above the limit"},
      {"num_mem_tokens_2_40",
       [](Json& j) { j["rmt"]["num_mem_tokens"] = int64_t{1} << 40; },
       "\"rmt.num_mem_tokens\" is 1099511627776, above the limit"},
      {"segment_size_2_40",
       [](Json& j) { j["rmt"]["segment_size"] = int64_t{1} << 40; },
       "\"rmt.segment_size\" is 1099511627776, above the limit"},
      // Every size within its own limit, the product far beyond any machine.
      {"parameters_too_many",
       [](Json& j) {
         j["vocab_size"] = 10'000'000;
         j["hidden_size"] = 8192;
         j["num_attention_heads"] = 64;
       },
       "parameters, above the limit of 2e+10"},
      {"id2label_value_not_string",
       [](Json& j) {
         j["id2label"] = {{"0", 7}};
       },
       "\"id2label\"[\"0\"] must be a string"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.label; }

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, IsInvalidArgumentNamingSourceAndKey) {
  Json json = ValidConfig();
  GetParam().mutate(json);
  auto config = Parse(json);
  ASSERT_FALSE(config.ok()) << json.dump();
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
      << config.status();
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr(kSource), HasSubstr(GetParam().issue)));
}

std::string CaseName(const ::testing::TestParamInfo<BadCase>& info) {
  return info.param.label;
}

INSTANTIATE_TEST_SUITE_P(MissingKeys, BadConfigTest,
                         ::testing::ValuesIn(MissingKeyCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(WrongValues, BadConfigTest,
                         ::testing::ValuesIn(WrongValueCases()), CaseName);

// The limits are inclusive: a segment that exactly fills the positions and
// the smallest vocabulary beside the memory rows are legal.
TEST(ModelConfigTest, AcceptsValuesAtTheLimits) {
  Json json = ValidConfig();
  json["max_position_embeddings"] = 19;  // 12 + 4 + 3, exactly filled
  json["layer_norm_eps"] = 1;
  json["hidden_dropout_prob"] = 0;
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->segment_length(), config->max_position_embeddings);

  json = ValidConfig();
  json["rmt"]["num_mem_tokens"] = 60;  // leaves a content vocabulary of 4
  json["max_position_embeddings"] = 12 + 60 + 3;
  config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->content_vocab_size(), 4);
}

// The size limits must not refuse real models: BERT-large, and a config of
// about 13e9 parameters (the largest of the GPT-3 family that fits 20e9).
TEST(ModelConfigTest, AcceptsLargeRealModels) {
  Json json = ValidConfig();
  json["vocab_size"] = 30522 + 10;
  json["hidden_size"] = 1024;
  json["num_hidden_layers"] = 24;
  json["num_attention_heads"] = 16;
  json["intermediate_size"] = 4096;
  json["max_position_embeddings"] = 512;
  json["rmt"] = {{"num_mem_tokens", 10}, {"segment_size", 499}};
  auto config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();

  json["vocab_size"] = 50257 + 10;
  json["hidden_size"] = 5120;
  json["num_hidden_layers"] = 40;
  json["num_attention_heads"] = 40;
  json["intermediate_size"] = 4 * 5120;
  json["max_position_embeddings"] = 2048;
  config = Parse(json);
  ASSERT_TRUE(config.ok()) << config.status();
}

// Configs built in code go through Validate alone, which must name the key.
TEST(ModelConfigTest, ValidateNamesTheKeyForConfigsBuiltInCode) {
  auto parsed = Parse(ValidConfig());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->Validate(kSource).ok());

  ModelConfig config = *parsed;
  config.intermediate_size = 0;
  absl::Status status = config.Validate(kSource);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kSource), HasSubstr("\"intermediate_size\"")));

  config = *parsed;
  config.rmt.segment_size = -1;
  status = config.Validate(kSource);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("\"rmt.segment_size\""));

  config = *parsed;
  config.num_hidden_layers = 1'000'000;
  status = config.Validate(kSource);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kSource), HasSubstr("\"num_hidden_layers\"")));

  config = *parsed;
  config.labels.clear();
  status = config.Validate(kSource);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("\"id2label\""));
}

TEST(ModelConfigTest, Names) {
  EXPECT_EQ(MemoryAttentionName(MemoryAttention::kFull), "full");
  EXPECT_EQ(MemoryAttentionName(MemoryAttention::kBottleneck), "bottleneck");
  EXPECT_EQ(ActivationName(Activation::kGelu), "gelu");
  EXPECT_EQ(ActivationName(Activation::kGeluTanh), "gelu_new");
  EXPECT_EQ(ActivationName(Activation::kRelu), "relu");
}

}  // namespace
}  // namespace rmt
