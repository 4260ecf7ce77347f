#include "model/safetensors.h"

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/file_util.h"
#include "tests/temp_dir.h"

namespace rmt {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh directory per test, so parallel ctest runs never share files.
using ::rmt::testing::ScopedTempDir;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string LengthPrefix(uint64_t length) {
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>(length >> (8 * i));
  return prefix;
}

// A file with `header` as its JSON and `data_size` zero bytes of data.
std::string FileWithHeader(const std::string& header, size_t data_size) {
  return LengthPrefix(header.size()) + header + std::string(data_size, '\0');
}

template <typename T>
TensorView ViewOf(DType dtype, std::vector<int64_t> shape,
                  const std::vector<T>& values) {
  TensorView view;
  view.dtype = dtype;
  view.shape = std::move(shape);
  view.data = values.data();
  view.nbytes = values.size() * sizeof(T);
  return view;
}

std::vector<uint8_t> Bytes(const TensorView& view) {
  const auto* begin = static_cast<const uint8_t*>(view.data);
  return std::vector<uint8_t>(begin, begin + view.nbytes);
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeName(DType::kF32), "F32");
  EXPECT_EQ(DTypeName(DType::kF16), "F16");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(DTypeName(DType::kI32), "I32");
  EXPECT_EQ(DTypeName(DType::kI64), "I64");
}

TEST(TensorViewTest, Numel) {
  TensorView view;
  EXPECT_EQ(view.numel(), 1);  // 0-d: a scalar
  view.shape = {2, 3, 4};
  EXPECT_EQ(view.numel(), 24);
  view.shape = {5, 0, 7};
  EXPECT_EQ(view.numel(), 0);
}

TEST(SafetensorsTest, RoundTripsEveryDTypeAndMetadata) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("round_trip.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff};  // 1, -2, max
  const std::vector<uint16_t> bf16 = {0x3f80, 0x4049};         // 1, ~3.14
  const std::vector<int32_t> i32 = {-7, 0, 2147483647, -2147483647 - 1};
  const std::vector<int64_t> i64 = {int64_t{1} << 40, -3};
  const std::vector<float> scalar = {42.0f};
  const std::vector<int64_t> empty;
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quotes \" and \\ survive"}, {"", "empty"}};

  // Given out of name order: the file must still come back sorted.
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"f32", ViewOf(DType::kF32, {2, 3}, f32)},
                                {"bf16", ViewOf(DType::kBF16, {2}, bf16)},
                                {"f16", ViewOf(DType::kF16, {3, 1}, f16)},
                                {"i32", ViewOf(DType::kI32, {4}, i32)},
                                {"i64", ViewOf(DType::kI64, {1, 2}, i64)},
                                {"scalar", ViewOf(DType::kF32, {}, scalar)},
                                {"empty", ViewOf(DType::kI64, {0, 3}, empty)}},
                               metadata)
                  .ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata(), metadata);
  std::vector<std::string> names;
  for (const auto& [name, view] : (*file)->tensors()) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("bf16", "empty", "f16", "f32", "i32", "i64",
                                 "scalar"));

  struct Expected {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    TensorView original;
  };
  const std::vector<Expected> expected = {
      {"f32", DType::kF32, {2, 3}, ViewOf(DType::kF32, {2, 3}, f32)},
      {"f16", DType::kF16, {3, 1}, ViewOf(DType::kF16, {3, 1}, f16)},
      {"bf16", DType::kBF16, {2}, ViewOf(DType::kBF16, {2}, bf16)},
      {"i32", DType::kI32, {4}, ViewOf(DType::kI32, {4}, i32)},
      {"i64", DType::kI64, {1, 2}, ViewOf(DType::kI64, {1, 2}, i64)},
      {"scalar", DType::kF32, {}, ViewOf(DType::kF32, {}, scalar)},
      {"empty", DType::kI64, {0, 3}, ViewOf(DType::kI64, {0, 3}, empty)},
  };
  for (const Expected& want : expected) {
    SCOPED_TRACE(want.name);
    auto got = (*file)->Get(want.name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->dtype, want.dtype);
    EXPECT_EQ(got->shape, want.shape);
    EXPECT_EQ(got->nbytes, want.original.nbytes);
    EXPECT_EQ(got->numel(), want.original.numel());
    EXPECT_EQ(Bytes(*got), Bytes(want.original));
  }
}

TEST(SafetensorsTest, WriterPadsHeaderAndLaysOutDataInNameOrder) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("layout.safetensors");
  const std::vector<int32_t> a = {1, 2, 3};
  const std::vector<int32_t> b = {4};
  ASSERT_TRUE(WriteSafetensors(path, {{"b", ViewOf(DType::kI32, {1}, b)},
                                      {"a", ViewOf(DType::kI32, {3}, a)}})
                  .ok());

  const absl::StatusOr<std::string> written = ReadFileToString(path);
  ASSERT_TRUE(written.ok()) << written.status();
  const std::string& bytes = *written;
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  }
  // Data starts 8-byte aligned, padded with spaces per the spec.
  EXPECT_EQ((8 + header_size) % 8, 0u);
  const std::string header = bytes.substr(8, header_size);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));
  EXPECT_THAT(header, HasSubstr("\"data_offsets\":[0,12]"));
  EXPECT_THAT(header, HasSubstr("\"data_offsets\":[12,16]"));
  EXPECT_EQ(bytes.size(), 8 + header_size + 16);
  int32_t first = 0;
  std::memcpy(&first, bytes.data() + 8 + header_size, sizeof(first));
  EXPECT_EQ(first, 1);  // "a" comes first
  // The temporary was renamed away, not left behind.
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT((*file)->metadata(), IsEmpty());
  // The mapped data of each tensor is naturally aligned for its dtype.
  for (const auto& [name, view] : (*file)->tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data) % 4, 0u) << name;
  }
}

TEST(SafetensorsTest, WriterReplacesExistingFile) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("replace.safetensors");
  WriteBytes(path, "old contents that are not a safetensors file");
  const std::vector<int64_t> x = {9};
  ASSERT_TRUE(
      WriteSafetensors(path, {{"x", ViewOf(DType::kI64, {1}, x)}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 1u);
}

TEST(SafetensorsTest, GetMissingTensorIsNotFoundNamingFileAndTensor) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("get.safetensors");
  const std::vector<float> x = {1.0f};
  ASSERT_TRUE(
      WriteSafetensors(path, {{"present", ViewOf(DType::kF32, {1}, x)}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->Get("present").ok());
  auto missing = (*file)->Get("absent.weight");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr(path), HasSubstr("absent.weight")));
}

TEST(SafetensorsTest, OpenMissingFileIsNotFound) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("does_not_exist.safetensors");
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

TEST(SafetensorsTest, WriterRefusesBadInput) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("refused.safetensors");
  const std::vector<float> two = {1.0f, 2.0f};
  struct Case {
    std::string label;
    std::vector<std::pair<std::string, TensorView>> tensors;
    std::string issue;
  };
  TensorView short_view = ViewOf(DType::kF32, {3}, two);  // 3 elements, 8 B
  TensorView negative = ViewOf(DType::kF32, {-2}, two);
  const std::vector<Case> cases = {
      {"duplicate",
       {{"x", ViewOf(DType::kF32, {2}, two)},
        {"x", ViewOf(DType::kF32, {2}, two)}},
       "duplicate tensor name \"x\""},
      {"empty name", {{"", ViewOf(DType::kF32, {2}, two)}}, "name is empty"},
      {"reserved name",
       {{"__metadata__", ViewOf(DType::kF32, {2}, two)}},
       "reserved"},
      {"nbytes mismatch", {{"short", short_view}}, "\"short\" has 8 bytes"},
      {"dtype mismatch",
       {{"wide", ViewOf(DType::kI64, {2}, two)}},
       "\"wide\" has 8 bytes"},
      {"negative dim", {{"neg", negative}}, "negative dimension"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    absl::Status status = WriteSafetensors(path, c.tensors);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), AllOf(HasSubstr(path), HasSubstr(c.issue)));
    // Refused before anything touches the disk.
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
  }
}

// Each malformed file must be refused with INVALID_ARGUMENT, and the message
// must name the file and the specific problem.
struct MalformedCase {
  std::string label;
  std::string bytes;
  std::string issue;
};

std::vector<MalformedCase> MalformedCases() {
  const std::string f32_pair =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  return {
      {"empty file", "", "shorter than the 8-byte header length"},
      {"seven bytes", std::string(7, '\x01'),
       "shorter than the 8-byte header length"},
      {"header longer than file", LengthPrefix(1000) + "{}",
       "header length 1000 exceeds"},
      {"header length absurd", LengthPrefix(uint64_t{1} << 40) + "{}",
       "is absurd"},
      {"header just over 100 MB", LengthPrefix((100u << 20) + 1) + "{}",
       "is absurd"},
      {"not json", FileWithHeader("{\"a\": ", 0), "not valid JSON"},
      {"json array", FileWithHeader("[1, 2]", 0), "not a JSON object"},
      {"json trailing garbage", FileWithHeader("{} x", 0), "not valid JSON"},
      {"entry not object", FileWithHeader(R"({"a": 3})", 0),
       "tensor \"a\" is not a JSON object"},
      {"missing dtype",
       FileWithHeader(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4),
       "tensor \"a\" is missing \"dtype\""},
      {"missing shape",
       FileWithHeader(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4),
       "tensor \"a\" is missing \"shape\""},
      {"missing data_offsets",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":[1]}})", 4),
       "tensor \"a\" is missing \"data_offsets\""},
      {"unknown dtype",
       FileWithHeader(
           R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
       "unknown dtype \"F64\""},
      {"dtype not string",
       FileWithHeader(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
                      4),
       "unknown dtype 4"},
      {"negative shape",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0),
       "dimensions must be non-negative integers"},
      {"fractional shape",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
       "dimensions must be non-negative integers"},
      {"shape not array",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})",
                      8),
       "not an array"},
      {"offsets not pair",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8),
       "expected [begin, end]"},
      {"offsets not array",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":4}})",
                      4),
       "expected [begin, end]"},
      {"offsets begin after end",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
       "expected [begin, end]"},
      {"offsets negative",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8),
       "expected [begin, end]"},
      {"offsets beyond data", FileWithHeader(f32_pair, 7),
       "data_offsets end 8 beyond the data region of 7 bytes"},
      {"size mismatch",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
       "spans 4 bytes but shape [2] of F32"},
      {"dtype size mismatch",
       FileWithHeader(
           R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", 8),
       "spans 8 bytes but shape [2] of I64"},
      {"numel overflows",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],)"
                      R"("data_offsets":[0,0]}})",
                      0),
       "spans 0 bytes"},
      {"overlap",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           12),
       "tensors \"a\" and \"b\" overlap"},
      {"overlap contained",
       FileWithHeader(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
           R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
           16),
       "tensors \"b\" and \"a\" overlap"},
      {"metadata not object",
       FileWithHeader(R"({"__metadata__":"format=pt"})", 0),
       "\"__metadata__\" must be an object of strings"},
      {"metadata value not string",
       FileWithHeader(R"({"__metadata__":{"format":"pt","epoch":3}})", 0),
       "\"__metadata__\"[\"epoch\"] must be a string"},
  };
}

// Names the case in failure output instead of dumping its bytes.
void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.label; }

class MalformedFileTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedFileTest, IsInvalidArgumentNamingFileAndIssue) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("malformed.safetensors");
  WriteBytes(path, GetParam().bytes);
  auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument)
      << file.status();
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(path), HasSubstr(GetParam().issue)));
}

INSTANTIATE_TEST_SUITE_P(
    All, MalformedFileTest, ::testing::ValuesIn(MalformedCases()),
    [](const ::testing::TestParamInfo<MalformedCase>& info) {
      std::string name = info.param.label;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

// The checks must not refuse legal files near their boundaries.
TEST(SafetensorsTest, AcceptsAdjacentEmptyAndHoleyLayouts) {
  ScopedTempDir dir("safetensors_test_");
  const std::string path = dir.File("edges.safetensors");
  WriteBytes(path,
             FileWithHeader(
                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                 R"("c":{"dtype":"I64","shape":[0,5],"data_offsets":[4,4]},)"
                 R"("d":{"dtype":"BF16","shape":[],"data_offsets":[20,22]},)"
                 R"("__metadata__":{}})"
                 "   ",  // trailing header padding
                 24));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 4u);
  EXPECT_EQ((*file)->tensors().at("d").numel(), 1);
  EXPECT_EQ((*file)->tensors().at("c").nbytes, 0u);
}

// A valid file cut short anywhere is refused, never read past its end.
TEST(SafetensorsTest, TruncatedFileIsRefusedAtEveryLength) {
  ScopedTempDir dir("safetensors_test_");
  const std::string good = dir.File("good.safetensors");
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(
      WriteSafetensors(good, {{"w", ViewOf(DType::kF32, {2, 3}, values)}})
          .ok());
  const absl::StatusOr<std::string> written = ReadFileToString(good);
  ASSERT_TRUE(written.ok()) << written.status();
  const std::string& bytes = *written;
  const std::string path = dir.File("truncated.safetensors");
  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE(length);
    WriteBytes(path, bytes.substr(0, length));
    auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(file.status().message(), HasSubstr(path));
  }
  const uint64_t header_size = bytes.size() - values.size() * sizeof(float) - 8;
  WriteBytes(path, bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT(SafetensorsFile::Open(path).status().message(),
              HasSubstr("beyond the data region"));
  WriteBytes(path, bytes.substr(0, 8 + header_size / 2));
  EXPECT_THAT(SafetensorsFile::Open(path).status().message(),
              HasSubstr("exceeds"));
}

// The fixture written by tests/golden/make_model_golden.py, which produces
// the format by hand, reads back with the expected BERT layout.
TEST(SafetensorsTest, ReadsPythonGeneratedGoldenModel) {
  const std::string dir = std::string(RMT_SOURCE_DIR) + "/tests/golden/full/";
  auto model = SafetensorsFile::Open(dir + "model/model.safetensors");
  ASSERT_TRUE(model.ok()) << model.status();
  // 5 embedding tensors, 16 per layer for 2 layers, pooler and classifier.
  EXPECT_EQ((*model)->tensors().size(), 5u + 2 * 16 + 4);
  EXPECT_EQ((*model)->metadata().at("format"), "pt");
  for (const auto& [name, view] : (*model)->tensors()) {
    EXPECT_EQ(view.dtype, DType::kF32) << name;
  }
  auto words = (*model)->Get("bert.embeddings.word_embeddings.weight");
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_THAT(words->shape, ElementsAre(64, 32));
  auto query =
      (*model)->Get("bert.encoder.layer.1.attention.self.query.weight");
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_THAT(query->shape, ElementsAre(32, 32));
  auto inter = (*model)->Get("bert.encoder.layer.0.intermediate.dense.weight");
  ASSERT_TRUE(inter.ok()) << inter.status();
  EXPECT_THAT(inter->shape, ElementsAre(64, 32));  // [out, in]
  auto classifier = (*model)->Get("classifier.weight");
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  EXPECT_THAT(classifier->shape, ElementsAre(5, 32));

  auto expected = SafetensorsFile::Open(dir + "expected.safetensors");
  ASSERT_TRUE(expected.ok()) << expected.status();
  auto init = (*expected)->Get("init_memory");
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_THAT(init->shape, ElementsAre(4, 32));
  // Initial memory is the last 4 rows of the word embeddings, bit for bit:
  // both files agree on layout and byte order.
  const auto* word_bytes = static_cast<const uint8_t*>(words->data);
  EXPECT_EQ(Bytes(*init),
            std::vector<uint8_t>(word_bytes + 60 * 32 * sizeof(float),
                                 word_bytes + words->nbytes));
  auto memory = (*expected)->Get("memory.3");
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_THAT(memory->shape, ElementsAre(3, 4, 32));
  auto logits = (*expected)->Get("logits");
  ASSERT_TRUE(logits.ok()) << logits.status();
  EXPECT_THAT(logits->shape, ElementsAre(3, 5));

  bool saw_full = false;
  bool saw_single = false;
  for (int s = 0; s < 4; ++s) {
    for (int b = 0; b < 3; ++b) {
      auto tokens = (*expected)->Get(absl::StrCat("tokens.", s, ".", b));
      ASSERT_TRUE(tokens.ok()) << tokens.status();
      ASSERT_EQ(tokens->dtype, DType::kI64);
      ASSERT_EQ(tokens->shape.size(), 1u);
      saw_full |= tokens->shape[0] == 12;
      saw_single |= tokens->shape[0] == 1;
      std::vector<int64_t> ids(tokens->numel());
      std::memcpy(ids.data(), tokens->data, tokens->nbytes);
      for (int64_t id : ids) {
        EXPECT_GE(id, 5);
        EXPECT_LT(id, 60);
      }
    }
  }
  EXPECT_TRUE(saw_full);
  EXPECT_TRUE(saw_single);
}

}  // namespace
}  // namespace rmt
