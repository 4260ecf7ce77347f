// Loading and saving model directories, and refusing every malformed one
// with a message that names the file and the problem.
#include "model/model_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/checkpoint_layout.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"
#include "nlohmann/json.hpp"
#include "tests/tiny_model.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using ::rmt::testing::RelativeError;
using ::testing::AllOf;
using ::testing::HasSubstr;

const std::string kGoldenModel =
    std::string(RMT_SOURCE_DIR) + "/tests/golden/full/model";

// The memory after one short segment: what two copies of a model must agree
// on.
torch::Tensor FirstMemory(RmtModel& model) {
  torch::NoGradGuard no_grad;
  return model->Step(model->InitMemory(1), model->MakeBatch({{5, 6, 7}}));
}

class ModelDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Parameterised tests are named "Test/param"; one directory level only.
    std::string test_name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test_name.begin(), test_name.end(), '/', '_');
    dir_ = fs::temp_directory_path() /
           absl::StrCat("rmt_model_dir_test_", ::getpid(), "_", test_name);
    fs::remove_all(dir_);
    fs::copy(kGoldenModel, dir_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return (dir_ / name).string();
  }

  // Rewrites model.safetensors after `edit` changed its tensors.
  void RewriteWeights(
      const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
    std::map<std::string, torch::Tensor> tensors;
    {
      auto file = SafetensorsFile::Open(Path("model.safetensors"));
      ASSERT_TRUE(file.ok()) << file.status();
      for (const auto& [name, view] : (*file)->tensors()) {
        tensors[name] = *TensorFromView(view);
      }
    }
    edit(tensors);
    std::vector<std::pair<std::string, TensorView>> views;
    for (auto& [name, tensor] : tensors) {
      tensor = tensor.contiguous();
      views.emplace_back(name, *ViewOfTensor(tensor));
    }
    ASSERT_TRUE(WriteSafetensors(Path("model.safetensors"), views).ok());
  }

  absl::Status LoadStatus() const {
    return LoadModelDirectory(dir_.string()).status();
  }

  fs::path dir_;
};

TEST_F(ModelDirectoryTest, LoadsAndNamesTheModel) {
  auto bundle = LoadModelDirectory(dir_.string() + "/");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->name, dir_.filename().string());
  EXPECT_EQ((*bundle)->fingerprint.size(), 16u);
  EXPECT_FALSE((*bundle)->model->is_training());
}

TEST_F(ModelDirectoryTest, FingerprintChangesWithTheWeights) {
  auto before = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(before.ok());
  RewriteWeights([](auto& tensors) { tensors["classifier.bias"] += 1e-3; });
  auto after = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(after.ok());
  EXPECT_NE((*before)->fingerprint, (*after)->fingerprint);
}

TEST_F(ModelDirectoryTest, SaveThenLoadGivesTheSameModel) {
  auto original = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(original.ok());
  const fs::path copy = dir_.string() + "_copy";
  ASSERT_TRUE(SaveModelDirectory(copy.string(), *(*original)->model,
                                 (*original)->tokenizer->vocab())
                  .ok());
  auto loaded = LoadModelDirectory(copy.string());
  fs::remove_all(copy);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(RelativeError(FirstMemory((*original)->model),
                          FirstMemory((*loaded)->model)),
            0.0);
}

// Weights stored as bfloat16 or float16 load back (as float32) and step as
// the float32 model does, within the stored precision.
TEST_F(ModelDirectoryTest, SavesWeightsInASmallerDtype) {
  auto original = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(original.ok());
  struct Case {
    torch::ScalarType dtype;
    std::string name;
    double tolerance;  // 8 and 11 significant bits
  };
  for (const Case& c : {Case{torch::kBFloat16, "BF16", 3e-2},
                        Case{torch::kHalf, "F16", 3e-3}}) {
    const fs::path copy = dir_.string() + "_" + c.name;
    ASSERT_TRUE(SaveModelDirectory(copy.string(), *(*original)->model,
                                   (*original)->tokenizer->vocab(), {}, c.dtype)
                    .ok());
    {
      auto file = SafetensorsFile::Open((copy / "model.safetensors").string());
      ASSERT_TRUE(file.ok()) << file.status();
      for (const auto& [name, view] : (*file)->tensors()) {
        EXPECT_EQ(DTypeName(view.dtype), c.name) << name;
      }
    }
    auto loaded = LoadModelDirectory(copy.string());
    fs::remove_all(copy);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->model->classifier->weight.scalar_type(),
              torch::kFloat);
    const double error = testing::NormRelativeError(
        FirstMemory((*loaded)->model), FirstMemory((*original)->model));
    EXPECT_GT(error, 0.0) << c.name;  // the weights were rounded
    EXPECT_LT(error, c.tolerance) << c.name;
  }
  // The model saved from keeps its own dtype.
  EXPECT_EQ((*original)->model->classifier->weight.scalar_type(),
            torch::kFloat);
}

TEST_F(ModelDirectoryTest, RefusesToStoreWeightsAsIntegers) {
  auto original = LoadModelDirectory(dir_.string());
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(SaveModelDirectory(dir_.string() + "_int", *(*original)->model,
                               (*original)->tokenizer->vocab(), {}, torch::kInt)
                .code(),
            absl::StatusCode::kInvalidArgument);
  fs::remove_all(dir_.string() + "_int");
}

TEST_F(ModelDirectoryTest, RandomModelIsDeterministicInItsSeed) {
  const ModelConfig config = testing::TinyConfig();
  RmtModel a = CreateRandomModel(config, SpecialTokens{}, 11);
  RmtModel b = CreateRandomModel(config, SpecialTokens{}, 11);
  RmtModel c = CreateRandomModel(config, SpecialTokens{}, 12);
  const auto& wa = a->classifier->weight;
  EXPECT_TRUE(torch::equal(wa, b->classifier->weight));
  EXPECT_FALSE(torch::equal(wa, c->classifier->weight));
}

// The default is BERT's 0.02 everywhere; RandomInit sets the matrices and
// the embeddings apart, and biases and LayerNorms stay as they were.
TEST_F(ModelDirectoryTest, RandomModelTakesItsDeviationsFromRandomInit) {
  ModelConfig config = testing::TinyConfig();
  config.hidden_size = 64;
  config.intermediate_size = 256;
  auto std_of = [](const torch::Tensor& t) { return t.std().item<double>(); };
  RmtModel bert = CreateRandomModel(config, SpecialTokens{}, 11);
  const auto defaults = bert->named_parameters();
  EXPECT_NEAR(
      std_of(defaults["bert.encoder.layer.0.intermediate.dense.weight"]), 0.02,
      0.002);
  EXPECT_NEAR(std_of(defaults["bert.embeddings.word_embeddings.weight"]), 0.02,
              0.002);

  RandomInit init;
  init.weight_std = 0.05;
  init.embedding_std = 1.0;
  RmtModel wide = CreateRandomModel(config, SpecialTokens{}, 11, init);
  for (const auto& item : wide->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& param = item.value();
    SCOPED_TRACE(name);
    if (absl::StrContains(name, "LayerNorm")) {
      EXPECT_TRUE(torch::equal(param, defaults[name]));
    } else if (absl::EndsWith(name, ".bias")) {
      EXPECT_EQ(param.abs().max().item<double>(), 0.0);
    } else if (absl::StrContains(name, "embeddings.")) {
      EXPECT_NEAR(std_of(param), 1.0, 0.25);  // 128 values in token types
    } else {
      EXPECT_NEAR(std_of(param), 0.05, 0.0125);
    }
  }
}

// PyTorch's form: each linear layer uniform within 1/sqrt(fan_in), biases
// too, embeddings N(0, 1), whatever the deviations say.
TEST_F(ModelDirectoryTest, RandomModelInPyTorchsFormIsUniformByFanIn) {
  ModelConfig config = testing::TinyConfig();
  config.hidden_size = 64;
  config.intermediate_size = 256;
  RandomInit init;
  init.form = InitForm::kTorch;
  init.weight_std = 0.5;  // unused in this form
  RmtModel torch_form = CreateRandomModel(config, SpecialTokens{}, 11, init);
  RmtModel again = CreateRandomModel(config, SpecialTokens{}, 11, init);
  const auto params = torch_form->named_parameters();
  int uniform_layers = 0;
  for (const auto& item : params) {
    const std::string& name = item.key();
    const torch::Tensor& param = item.value();
    SCOPED_TRACE(name);
    EXPECT_TRUE(torch::equal(param, again->named_parameters()[name]));
    if (absl::StrContains(name, "LayerNorm")) continue;
    if (absl::StrContains(name, "embeddings.")) {
      EXPECT_NEAR(param.std().item<double>(), 1.0, 0.25);
      continue;
    }
    const std::string weight =
        absl::EndsWith(name, ".bias")
            ? absl::StrCat(name.substr(0, name.size() - 4), "weight")
            : name;
    const double bound = 1.0 / std::sqrt(params[weight].size(1));
    EXPECT_LE(param.abs().max().item<double>(), bound);
    if (param.numel() >= 64) {
      EXPECT_GT(param.abs().max().item<double>(), 0.8 * bound);
    }
    if (param.dim() == 2) {
      // Uniform, not normal: the deviation of U(-b, b) is b / sqrt(3).
      EXPECT_NEAR(param.std().item<double>(), bound / std::sqrt(3.0),
                  0.1 * bound);
      ++uniform_layers;
    }
  }
  EXPECT_GE(uniform_layers, 8);
  EXPECT_NEAR(params["bert.encoder.layer.0.output.dense.weight"]
                  .abs()
                  .max()
                  .item<double>(),
              1.0 / 16, 0.01);  // fan-in 256
}

TEST_F(ModelDirectoryTest, RefusesMissingDirectory) {
  EXPECT_EQ(LoadModelDirectory(Path("nope")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ModelDirectoryTest, RefusesMissingTensor) {
  RewriteWeights(
      [](auto& tensors) { tensors.erase("bert.pooler.dense.bias"); });
  EXPECT_THAT(LoadStatus().message(),
              AllOf(HasSubstr("model.safetensors"),
                    HasSubstr("missing tensor \"bert.pooler.dense.bias\"")));
}

TEST_F(ModelDirectoryTest, RefusesWrongShape) {
  RewriteWeights([](auto& tensors) {
    tensors["classifier.weight"] = torch::zeros({3, 32});
  });
  absl::Status status = LoadStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("classifier.weight"), HasSubstr("shape")));
}

TEST_F(ModelDirectoryTest, RefusesIntegerWeights) {
  RewriteWeights([](auto& tensors) {
    tensors["classifier.bias"] = torch::zeros({5}, torch::kLong);
  });
  EXPECT_THAT(LoadStatus().message(),
              AllOf(HasSubstr("classifier.bias"), HasSubstr("I64")));
}

TEST_F(ModelDirectoryTest, AcceptsHalfPrecisionWeights) {
  RewriteWeights([](auto& tensors) {
    for (auto& [name, tensor] : tensors) tensor = tensor.to(torch::kBFloat16);
  });
  EXPECT_TRUE(LoadStatus().ok()) << LoadStatus();
}

TEST_F(ModelDirectoryTest, RefusesUnexpectedTensorButIgnoresPositionIds) {
  RewriteWeights([](auto& tensors) {
    tensors["bert.embeddings.position_ids"] = torch::arange(64).unsqueeze(0);
  });
  EXPECT_TRUE(LoadStatus().ok()) << LoadStatus();
  RewriteWeights(
      [](auto& tensors) { tensors["extra.weight"] = torch::zeros({2}); });
  EXPECT_THAT(LoadStatus().message(),
              HasSubstr("unexpected tensor \"extra.weight\""));
}

TEST_F(ModelDirectoryTest, RefusesTruncatedWeights) {
  const auto size = fs::file_size(Path("model.safetensors"));
  fs::resize_file(Path("model.safetensors"), size - 100);
  absl::Status status = LoadStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model.safetensors"));
}

TEST_F(ModelDirectoryTest, RefusesVocabularyOfTheWrongSize) {
  std::ofstream(Path("vocab.txt"), std::ios::app) << "extraword\n";
  EXPECT_THAT(LoadStatus().message(),
              AllOf(HasSubstr("vocab.txt"), HasSubstr("vocab_size")));
}

TEST_F(ModelDirectoryTest, RefusesUnknownActivation) {
  std::ifstream in(Path("config.json"));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto at = text.find("\"gelu\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 6, "\"swishy\"");
  std::ofstream(Path("config.json"), std::ios::trunc) << text;
  EXPECT_THAT(LoadStatus().message(),
              AllOf(HasSubstr("config.json"), HasSubstr("swishy")));
}

// Rewrites one key of config.json (`path`: "hidden_size" or "rmt",
// "segment_size") and loads the directory.
absl::Status LoadWithConfigValue(const fs::path& dir,
                                 const std::vector<std::string>& path,
                                 const nlohmann::json& value) {
  const std::string config_path = (dir / "config.json").string();
  std::ifstream in(config_path);
  nlohmann::json config = nlohmann::json::parse(in);
  nlohmann::json* slot = &config;
  for (const std::string& key : path) slot = &(*slot)[key];
  *slot = value;
  std::ofstream(config_path, std::ios::trunc) << config.dump(2);
  return LoadModelDirectory(dir.string()).status();
}

struct HugeDimension {
  std::vector<std::string> path;
  int64_t value;
  std::string key;  // as the error names it
};

class HugeDimensionTest : public ModelDirectoryTest,
                          public ::testing::WithParamInterface<HugeDimension> {
};

// Each of these once reached torch, which threw std::bad_alloc or c10::Error
// out of LoadModelDirectory and aborted the server (exit 134).
TEST_P(HugeDimensionTest, IsRefusedNamingTheFileAndKey) {
  const HugeDimension& c = GetParam();
  const absl::Status status = LoadWithConfigValue(dir_, c.path, c.value);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("config.json"), HasSubstr(c.key)));
}

INSTANTIATE_TEST_SUITE_P(
    AllKeys, HugeDimensionTest,
    ::testing::Values(
        HugeDimension{{"hidden_size"}, int64_t{1} << 31, "\"hidden_size\""},
        HugeDimension{{"hidden_size"}, int64_t{1} << 40, "\"hidden_size\""},
        HugeDimension{
            {"intermediate_size"}, int64_t{1} << 40, "\"intermediate_size\""},
        HugeDimension{{"max_position_embeddings"},
                      int64_t{1} << 40,
                      "\"max_position_embeddings\""},
        HugeDimension{
            {"type_vocab_size"}, int64_t{1} << 40, "\"type_vocab_size\""},
        HugeDimension{
            {"num_hidden_layers"}, 1'000'000, "\"num_hidden_layers\""},
        HugeDimension{{"vocab_size"}, int64_t{1} << 40, "\"vocab_size\""},
        HugeDimension{{"num_attention_heads"},
                      int64_t{1} << 40,
                      "\"num_attention_heads\""},
        HugeDimension{{"rmt", "num_mem_tokens"},
                      int64_t{1} << 40,
                      "\"rmt.num_mem_tokens\""},
        HugeDimension{
            {"rmt", "segment_size"}, int64_t{1} << 40, "\"rmt.segment_size\""}),
    [](const ::testing::TestParamInfo<HugeDimension>& info) {
      return absl::StrCat(info.param.path.back(), "_", info.index);
    });

// A config that is valid on its own but disagrees with the weights is
// refused by comparing the file's header with the shapes the config implies,
// before the model is allocated (the message is the pre-allocation check's).
TEST_F(ModelDirectoryTest, RefusesConfigThatDisagreesWithTheWeights) {
  const absl::Status status =
      LoadWithConfigValue(dir_, {"intermediate_size"}, 128);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model.safetensors"),
                    HasSubstr("bert.encoder.layer.0.intermediate.dense.weight"),
                    HasSubstr("has shape [64, 32] but config.json implies "
                              "[128, 32]")));
}

// Torch throws when the model cannot be built where it was asked for (here:
// a GPU on a machine without one); loading must return that as a status.
TEST_F(ModelDirectoryTest, TorchFailureIsAStatusNotAnException) {
  if (torch::cuda::is_available())
    GTEST_SKIP() << "needs a machine without CUDA";
  LoadOptions options;
  options.device = torch::Device(torch::kCUDA, 0);
  absl::StatusOr<std::shared_ptr<ModelBundle>> bundle;
  ASSERT_NO_THROW(bundle = LoadModelDirectory(dir_.string(), options));
  EXPECT_FALSE(bundle.ok());
  EXPECT_THAT(bundle.status().message(),
              AllOf(HasSubstr("model.safetensors"),
                    HasSubstr("building the model failed")));
}

// CheckpointLayout is what the loader checks files against before building
// the model, so it must list exactly the model's parameters.
TEST_F(ModelDirectoryTest, CheckpointLayoutListsTheModelsParameters) {
  for (MemoryAttention attention :
       {MemoryAttention::kFull, MemoryAttention::kBottleneck}) {
    const ModelConfig config = testing::TinyConfig(attention);
    RmtModel model(config, SpecialTokens{});
    const std::vector<TensorSpec> layout = CheckpointLayout(config);
    const auto parameters = model->named_parameters();
    ASSERT_EQ(layout.size(), parameters.size());
    for (size_t i = 0; i < layout.size(); ++i) {
      EXPECT_EQ(layout[i].name, parameters[i].key());
      EXPECT_EQ(layout[i].shape, parameters[i].value().sizes().vec())
          << layout[i].name;
    }
  }
}

TEST_F(ModelDirectoryTest, RefusesMissingFiles) {
  fs::remove(Path("vocab.txt"));
  EXPECT_THAT(LoadStatus().message(), HasSubstr("vocab.txt"));
  SetUp();
  fs::remove(Path("model.safetensors"));
  EXPECT_THAT(LoadStatus().message(), HasSubstr("model.safetensors"));
}

}  // namespace
}  // namespace rmt
