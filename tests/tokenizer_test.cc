#include "model/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/file_util.h"
#include "nlohmann/json.hpp"
#include "tests/temp_dir.h"

namespace rmt {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kGoldenDir = RMT_SOURCE_DIR "/tests/golden/tokenizer";

struct GoldenCase {
  std::string text;
  TokenizerOptions options;
  std::vector<int32_t> ids;
};

void WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Printable form of test text for failure messages.
std::string Escape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte >= 0x20 && byte < 0x7F) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "\\x%02X", byte);
    }
  }
  return out;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto vocab = Vocabulary::Load(kGoldenDir + "/vocab.txt");
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    const auto cases_text = ReadFileToString(kGoldenDir + "/cases.json");
    ASSERT_TRUE(cases_text.ok()) << cases_text.status();
    const nlohmann::json cases =
        nlohmann::json::parse(*cases_text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(cases.is_array()) << kGoldenDir << "/cases.json";
    vocab_ = new std::shared_ptr<const Vocabulary>(*vocab);
    cases_ = new std::vector<GoldenCase>;
    for (const auto& item : cases) {
      GoldenCase golden;
      golden.text = item.at("text").get<std::string>();
      golden.options.do_lower_case = item.at("do_lower_case").get<bool>();
      golden.options.strip_accents =
          item.value("strip_accents", golden.options.do_lower_case);
      golden.ids = item.at("ids").get<std::vector<int32_t>>();
      cases_->push_back(std::move(golden));
    }
  }

  void SetUp() override {
    ASSERT_NE(cases_, nullptr) << "golden fixture failed to load";
  }

  static WordPieceTokenizer Tokenizer(const TokenizerOptions& options) {
    return WordPieceTokenizer(*vocab_, options);
  }

  static std::string Tokens(const WordPieceTokenizer& tokenizer,
                            const std::vector<int32_t>& ids) {
    std::string out;
    for (int32_t id : ids) {
      absl::StrAppend(&out, out.empty() ? "" : " ",
                      id >= 0 && id < tokenizer.vocab().size()
                          ? tokenizer.vocab().Token(id)
                          : absl::StrCat("<", id, ">"));
    }
    return out;
  }

  // Feeds `text` cut at `cuts` (sorted byte offsets) and finishes.
  static std::vector<int32_t> FeedInPieces(const WordPieceTokenizer& tokenizer,
                                           absl::string_view text,
                                           const std::vector<size_t>& cuts) {
    StreamingTokenizer stream(&tokenizer);
    std::vector<int32_t> ids;
    size_t start = 0;
    for (size_t cut : cuts) {
      EXPECT_TRUE(stream.Feed(text.substr(start, cut - start), &ids).ok());
      start = cut;
    }
    EXPECT_TRUE(stream.Feed(text.substr(start), &ids).ok());
    EXPECT_TRUE(stream.Finish(&ids).ok());
    EXPECT_FALSE(stream.has_pending());
    return ids;
  }

  static std::vector<size_t> RandomCuts(size_t size, std::mt19937* rng) {
    if (size == 0) return {};
    std::uniform_int_distribution<size_t> count(0, std::min<size_t>(size, 12));
    std::uniform_int_distribution<size_t> position(0, size);
    std::vector<size_t> cuts(count(*rng));
    for (size_t& cut : cuts) cut = position(*rng);
    std::sort(cuts.begin(), cuts.end());
    return cuts;
  }

  static std::shared_ptr<const Vocabulary>* vocab_;
  static std::vector<GoldenCase>* cases_;
};

std::shared_ptr<const Vocabulary>* TokenizerTest::vocab_ = nullptr;
std::vector<GoldenCase>* TokenizerTest::cases_ = nullptr;

TEST_F(TokenizerTest, MatchesGoldenReference) {
  ASSERT_GE(cases_->size(), 100u);
  for (const GoldenCase& golden : *cases_) {
    WordPieceTokenizer tokenizer = Tokenizer(golden.options);
    auto ids = tokenizer.Encode(golden.text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, golden.ids) << "text \"" << Escape(golden.text)
                                << "\" lower=" << golden.options.do_lower_case
                                << " strip=" << golden.options.strip_accents
                                << "\n got:  " << Tokens(tokenizer, *ids)
                                << "\n want: " << Tokens(tokenizer, golden.ids);
  }
}

TEST_F(TokenizerTest, HandWrittenExpectations) {
  WordPieceTokenizer uncased = Tokenizer(TokenizerOptions{});
  auto tokens = [&](const WordPieceTokenizer& tokenizer,
                    absl::string_view text) {
    auto ids = tokenizer.Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? Tokens(tokenizer, *ids) : "";
  };
  EXPECT_EQ(tokens(uncased, "Unaffable, Playing!"),
            "un ##aff ##able , play ##ing !");
  EXPECT_EQ(tokens(uncased, "Caf\xC3\xA9 na\xC3\xAFve"), "cafe naive");
  EXPECT_EQ(tokens(uncased, "\xE4\xB8\xAD\xE6\x96\x87text"),  // 中文text
            "\xE4\xB8\xAD \xE6\x96\x87 text");
  EXPECT_EQ(tokens(uncased, "hello\xE2\x80\x8Bworld"),  // Zero-width space.
            "hello ##w ##o ##r ##l ##d");
  EXPECT_EQ(tokens(uncased, "aqa \xF0\x9F\x98\x80"), "[UNK] [UNK]");
  EXPECT_EQ(tokens(uncased, " \t\r\n"), "");

  TokenizerOptions cased_options;
  cased_options.do_lower_case = false;
  cased_options.strip_accents = false;
  WordPieceTokenizer cased = Tokenizer(cased_options);
  EXPECT_EQ(tokens(cased, "Hello HELLO"), "Hello [UNK]");
  // NFC composes the decomposed e + U+0301 before the vocabulary lookup.
  EXPECT_EQ(tokens(cased, "cafe\xCC\x81"), "caf\xC3\xA9");

  TokenizerOptions no_cjk = cased_options;
  no_cjk.tokenize_chinese_chars = false;
  EXPECT_EQ(tokens(Tokenizer(no_cjk), "\xE4\xB8\xAD\xE6\x96\x87"), "[UNK]");

  TokenizerOptions short_words;
  short_words.max_input_chars_per_word = 5;
  WordPieceTokenizer short_tokenizer = Tokenizer(short_words);
  EXPECT_EQ(tokens(short_tokenizer, "hello helloo"), "hello [UNK]");
}

TEST_F(TokenizerTest, AppendWordPiecesSplitsGreedily) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  const Vocabulary& vocab = tokenizer.vocab();
  std::vector<int32_t> ids = {7};
  tokenizer.AppendWordPieces(U"tokenizers", &ids);
  EXPECT_THAT(ids, ElementsAre(7, vocab.Find("token"), vocab.Find("##izer"),
                               vocab.Find("##s")));
  ids.clear();
  tokenizer.AppendWordPieces(U"tokenq", &ids);  // No "##q": the word is lost.
  EXPECT_THAT(ids, ElementsAre(vocab.unk_id()));
  ids.clear();
  tokenizer.AppendWordPieces(U"", &ids);
  EXPECT_TRUE(ids.empty());
}

// SplitWords yields the words Encode splits into pieces, whatever the
// vocabulary holds (the vocabulary builder counts them).
TEST_F(TokenizerTest, SplitWordsGivesNormalisedWords) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  auto words = tokenizer.SplitWords("Hello, Café-Zxqv!\tdone");
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_THAT(*words,
              ElementsAre("hello", ",", "cafe", "-", "zxqv", "!", "done"));
  EXPECT_EQ(tokenizer.SplitWords("bad \xff").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenizerTest, DecodeGluesContinuations) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  auto ids = tokenizer.Encode("Unaffable tokenizers, hello!");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(tokenizer.Decode(*ids), "unaffable tokenizers , hello !");
  const Vocabulary& vocab = tokenizer.vocab();
  EXPECT_EQ(tokenizer.Decode({vocab.Find("##ing"), vocab.Find("play")}),
            "##ing play");
  EXPECT_EQ(tokenizer.Decode({vocab.cls_id(), vocab.Find("ok"), -3}),
            "[CLS] ok [UNK]");
  EXPECT_EQ(tokenizer.Decode({}), "");
}

TEST_F(TokenizerTest, StreamingMatchesEncodeAtEverySplit) {
  std::mt19937 rng(1234);
  for (const GoldenCase& golden : *cases_) {
    WordPieceTokenizer tokenizer = Tokenizer(golden.options);
    const std::string& text = golden.text;
    SCOPED_TRACE(Escape(text.substr(0, 80)));
    if (text.size() <= 200) {
      for (size_t cut = 0; cut <= text.size(); ++cut) {
        ASSERT_EQ(FeedInPieces(tokenizer, text, {cut}), golden.ids)
            << "cut at " << cut;
      }
      std::vector<size_t> every_byte(text.size());
      for (size_t i = 0; i < text.size(); ++i) every_byte[i] = i;
      ASSERT_EQ(FeedInPieces(tokenizer, text, every_byte), golden.ids);
    }
    for (int seed = 0; seed < 20; ++seed) {
      ASSERT_EQ(FeedInPieces(tokenizer, text, RandomCuts(text.size(), &rng)),
                golden.ids);
    }
  }
}

TEST_F(TokenizerTest, StreamingMatchesEncodeOnLongRandomText) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<size_t> pick(0, cases_->size() - 1);
  const std::vector<std::string> glue = {" ", "", "\n", "\xE4\xB8\xAD", ","};
  std::uniform_int_distribution<size_t> pick_glue(0, glue.size() - 1);
  std::string text;
  while (text.size() < 64 * 1024) {
    text += (*cases_)[pick(rng)].text;
    text += glue[pick_glue(rng)];
  }
  for (bool lower : {true, false}) {
    TokenizerOptions options;
    options.do_lower_case = options.strip_accents = lower;
    WordPieceTokenizer tokenizer = Tokenizer(options);
    auto expected = tokenizer.Encode(text);
    ASSERT_TRUE(expected.ok()) << expected.status();
    ASSERT_GT(expected->size(), 1000u);
    for (int seed = 0; seed < 8; ++seed) {
      std::mt19937 cut_rng(seed);
      std::uniform_int_distribution<size_t> step(1, seed % 2 ? 7 : 4096);
      std::vector<size_t> cuts;
      for (size_t at = step(cut_rng); at < text.size(); at += step(cut_rng)) {
        cuts.push_back(at);
      }
      ASSERT_EQ(FeedInPieces(tokenizer, text, cuts), *expected)
          << "seed " << seed;
    }
  }
}

TEST_F(TokenizerTest, SaveAndRestoreContinueIdentically) {
  std::mt19937 rng(7);
  for (const GoldenCase& golden : *cases_) {
    WordPieceTokenizer tokenizer = Tokenizer(golden.options);
    const std::string& text = golden.text;
    SCOPED_TRACE(Escape(text.substr(0, 80)));
    for (int trial = 0; trial < 5; ++trial) {
      const size_t cut =
          std::uniform_int_distribution<size_t>(0, text.size())(rng);
      StreamingTokenizer first(&tokenizer);
      std::vector<int32_t> ids;
      ASSERT_TRUE(first.Feed(text.substr(0, cut), &ids).ok());
      const std::string state = first.SaveState();

      StreamingTokenizer restored(&tokenizer);
      ASSERT_TRUE(restored.RestoreState(state).ok());
      EXPECT_EQ(restored.SaveState(), state);
      EXPECT_EQ(restored.has_pending(), first.has_pending());
      StreamingTokenizer copy = first;  // A copy forks the stream too.
      std::vector<int32_t> restored_ids = ids;
      std::vector<int32_t> copy_ids = ids;
      ASSERT_TRUE(restored.Feed(text.substr(cut), &restored_ids).ok());
      ASSERT_TRUE(restored.Finish(&restored_ids).ok());
      ASSERT_TRUE(copy.Feed(text.substr(cut), &copy_ids).ok());
      ASSERT_TRUE(copy.Finish(&copy_ids).ok());
      EXPECT_EQ(restored_ids, golden.ids) << "cut at " << cut;
      EXPECT_EQ(copy_ids, golden.ids) << "cut at " << cut;
      // The original is unaffected by its copy.
      EXPECT_EQ(first.SaveState(), state);
    }
  }
}

TEST_F(TokenizerTest, StreamIsReusableAfterFinish) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  StreamingTokenizer stream(&tokenizer);
  std::vector<int32_t> ids;
  ASSERT_TRUE(stream.Feed("hello wor", &ids).ok());
  EXPECT_TRUE(stream.has_pending());
  ASSERT_TRUE(stream.Finish(&ids).ok());
  EXPECT_FALSE(stream.has_pending());
  ASSERT_TRUE(stream.Feed("ld", &ids).ok());
  ASSERT_TRUE(stream.Finish(&ids).ok());
  auto first = tokenizer.Encode("hello wor");
  auto second = tokenizer.Encode("ld");
  ASSERT_TRUE(first.ok() && second.ok());
  std::vector<int32_t> expected = *first;
  expected.insert(expected.end(), second->begin(), second->end());
  EXPECT_EQ(ids, expected);
}

TEST_F(TokenizerTest, StateStaysBoundedWithoutWhitespace) {
  // Longest varint-coded state: header, offset, partial sequence, segment
  // (4 * 101 + 1 code points) and word (101), at most 3 bytes per code point.
  constexpr size_t kBound = 5 + 10 + 4 + 3 * (405 + 101) + 6;
  const std::vector<std::string> units = {"a",
                                          "a,",
                                          "\xCC\x81",
                                          "e\xCC\x81",
                                          "\xE1\x84\x92\xE1\x85\xA1",
                                          "\xF0\x9F\x98\x80",
                                          "<\xCC\xB8",
                                          "\xE2\x80\x8B"};
  for (bool lower : {true, false}) {
    TokenizerOptions options;
    options.do_lower_case = options.strip_accents = lower;
    WordPieceTokenizer tokenizer = Tokenizer(options);
    for (const std::string& unit : units) {
      SCOPED_TRACE(absl::StrCat(Escape(unit), " lower=", lower));
      std::string chunk;
      while (chunk.size() < 64 * 1024) chunk += unit;
      const std::string twice = chunk + chunk;
      StreamingTokenizer stream(&tokenizer);
      std::vector<int32_t> ids;
      size_t fed = 0;
      size_t max_state = 0;
      while (fed < (1u << 20)) {
        // Odd piece sizes cut inside multi-byte sequences; the stream itself
        // is `unit` repeated.
        const absl::string_view piece =
            absl::string_view(twice).substr(fed % chunk.size(), 4099);
        ASSERT_TRUE(stream.Feed(piece, &ids).ok());
        fed += piece.size();
        max_state = std::max(max_state, stream.SaveState().size());
        if (ids.size() > 4096) ids.clear();
      }
      EXPECT_LE(max_state, kBound);
    }
  }
  // A megabyte-long word is one [UNK].
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  auto ids = tokenizer.Encode(std::string(1 << 20, 'a'));
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(tokenizer.vocab().unk_id()));
}

TEST_F(TokenizerTest, RejectsInvalidUtf8WithOffset) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  const std::vector<std::pair<std::string, int>> cases = {
      {"\x80", 0},                  // Stray continuation byte.
      {"ab\xBF", 2},                // Stray continuation byte.
      {"ab\xC3(", 2},               // Truncated sequence.
      {"\xC0\xAF", 0},              // Overlong "/".
      {"xy\xE0\x80\xAF", 2},        // Overlong 3-byte form.
      {"\xF0\x80\x80\xAF", 0},      // Overlong 4-byte form.
      {"ok \xED\xA0\x80", 3},       // Surrogate U+D800.
      {"\xF4\x90\x80\x80", 0},      // U+110000.
      {"\xF5\x80\x80\x80", 0},      // Invalid lead byte.
      {"\xE2\x82\xAC\xFF", 3},      // "€" then an invalid byte.
      {"caf\xC3\xA9 \xE2\x82", 6},  // Ends inside a sequence.
  };
  for (const auto& [text, offset] : cases) {
    auto ids = tokenizer.Encode(text);
    ASSERT_FALSE(ids.ok()) << Escape(text);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ids.status().message(),
                HasSubstr(absl::StrCat("byte offset ", offset, ":")))
        << Escape(text) << ": " << ids.status();
  }
}

TEST_F(TokenizerTest, StreamingErrorsCountOffsetsAcrossFeeds) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  StreamingTokenizer stream(&tokenizer);
  const std::string saved = stream.SaveState();
  std::vector<int32_t> ids;
  ASSERT_TRUE(stream.Feed("hello wo", &ids).ok());
  ASSERT_TRUE(stream.Feed("rld \xE2", &ids).ok());  // Offset 12: a lead byte.
  const size_t before = ids.size();
  absl::Status status = stream.Feed("\x82x", &ids);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("byte offset 12:"));
  EXPECT_EQ(ids.size(), before);
  // A failed stream stays failed until restored.
  EXPECT_EQ(stream.Feed("ok", &ids).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream.Finish(&ids).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(stream.RestoreState(saved).ok());
  ids.clear();
  ASSERT_TRUE(stream.Feed("ok", &ids).ok());
  ASSERT_TRUE(stream.Finish(&ids).ok());
  EXPECT_THAT(ids, ElementsAre(tokenizer.vocab().Find("ok")));

  // Words completed before the error within the same Feed are withdrawn.
  StreamingTokenizer words_then_error(&tokenizer);
  ids.clear();
  status = words_then_error.Feed("hello ok \xFF", &ids);
  EXPECT_THAT(status.message(), HasSubstr("byte offset 9:"));
  EXPECT_TRUE(ids.empty());

  // Finish inside a sequence.
  StreamingTokenizer truncated(&tokenizer);
  ASSERT_TRUE(truncated.Feed("ok \xF0\x9F\x98", &ids).ok());
  status = truncated.Finish(&ids);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("byte offset 3:"));
}

TEST_F(TokenizerTest, RestoreStateRejectsGarbage) {
  WordPieceTokenizer tokenizer = Tokenizer(TokenizerOptions{});
  StreamingTokenizer stream(&tokenizer);
  std::vector<int32_t> ids;
  ASSERT_TRUE(stream.Feed("hello wor\xE2\x82", &ids).ok());
  const std::string good = stream.SaveState();
  ASSERT_TRUE(stream.RestoreState(good).ok());

  std::vector<std::string> garbage = {
      "",
      "RMT",
      "XMTK\x01",
      "RMTK\x02" + good.substr(5),
      good + "x",
      good.substr(0, good.size() - 1),
      // offset 0, partial "\x80" (not a lead byte).
      std::string("RMTK\x01\x00\x01\x80\x00\x00", 10),
      // offset 3, complete partial "\xC3\xA9" is not incomplete.
      std::string("RMTK\x01\x03\x02\xC3\xA9\x00\x00", 11),
      // A surrogate code point in the word.
      std::string("RMTK\x01\x00\x00\x00\x01\x80\xB0\x03", 12),
      // A varint that never ends.
      std::string("RMTK\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 16),
  };
  // A word longer than max_input_chars_per_word + 1.
  std::string long_word("RMTK\x01\x00\x00\x00", 8);
  long_word += static_cast<char>(102);
  long_word += std::string(102, 'a');
  garbage.push_back(long_word);
  for (const std::string& state : garbage) {
    absl::Status status = stream.RestoreState(state);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << Escape(state);
  }
  // Failed restores leave the stream as it was.
  EXPECT_EQ(stream.SaveState(), good);
  ASSERT_TRUE(stream.Feed("\xAC", &ids).ok());
  ASSERT_TRUE(stream.Finish(&ids).ok());
}

class VocabularyTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const {
    return temp_dir_.File(name);
  }

  rmt::testing::ScopedTempDir temp_dir_{"tokenizer_test_"};
  const fs::path dir_ = temp_dir_.path();
};

TEST_F(VocabularyTest, LoadsTokensByLine) {
  WriteFile(Path("vocab.txt"), "[PAD]\r\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo");
  auto vocab = Vocabulary::Load(Path("vocab.txt"));
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ((*vocab)->size(), 6);
  EXPECT_EQ((*vocab)->pad_id(), 0);
  EXPECT_EQ((*vocab)->unk_id(), 1);
  EXPECT_EQ((*vocab)->cls_id(), 2);
  EXPECT_EQ((*vocab)->sep_id(), 3);
  EXPECT_EQ((*vocab)->Find("##lo"), 5);
  EXPECT_EQ((*vocab)->Find("absent"), -1);
  EXPECT_EQ((*vocab)->Token(4), "hello");

  ASSERT_TRUE((*vocab)->Save(Path("copy.txt")).ok());
  EXPECT_EQ(ReadFileToString(Path("copy.txt")).value_or("(unreadable)"),
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\n");
  auto reloaded = Vocabulary::Load(Path("copy.txt"));
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ((*reloaded)->tokens(), (*vocab)->tokens());
}

TEST_F(VocabularyTest, ReportsErrorsNamingTheFile) {
  auto missing = Vocabulary::Load(Path("missing.txt"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n",
       "duplicate token \"hello\""},
      {"[PAD]\n[UNK]\nhello\n", "[CLS], [SEP]"},
      {"[PAD]\n[CLS]\n[SEP]\n", "[UNK]"},
      {"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xC3(\n", "line 5"},
  };
  for (const auto& [text, expected] : cases) {
    WriteFile(Path("vocab.txt"), text);
    auto vocab = Vocabulary::Load(Path("vocab.txt"));
    ASSERT_FALSE(vocab.ok()) << Escape(text);
    EXPECT_EQ(vocab.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(vocab.status().message(), HasSubstr(Path("vocab.txt")));
    EXPECT_THAT(vocab.status().message(), HasSubstr(expected));
  }
  auto from_tokens = Vocabulary::FromTokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "two\nlines"}, "inline");
  EXPECT_EQ(from_tokens.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(from_tokens.status().message(), HasSubstr("inline"));
}

// FromText is Load without the file (the vocabulary fuzzer's entry point):
// the same tokens, and errors naming the source it was given.
TEST_F(VocabularyTest, FromTextParsesLikeLoad) {
  const std::string text = "[PAD]\r\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo";
  WriteFile(Path("vocab.txt"), text);
  auto loaded = Vocabulary::Load(Path("vocab.txt"));
  auto parsed = Vocabulary::FromText(text, "inline vocab");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)->tokens(), (*loaded)->tokens());

  auto empty = Vocabulary::FromText("", "inline vocab");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("inline vocab"));
}

TEST_F(VocabularyTest, LoadTokenizerReadsOptionalConfig) {
  WriteFile(Path("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nHello\nhello\n");
  auto tokenizer = LoadTokenizer(dir_.string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_TRUE((*tokenizer)->options().do_lower_case);
  auto ids = (*tokenizer)->Encode("Hello");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(5));

  WriteFile(Path("tokenizer_config.json"),
            R"({"do_lower_case": false, "strip_accents": null})");
  tokenizer = LoadTokenizer(dir_.string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_FALSE((*tokenizer)->options().strip_accents);
  ids = (*tokenizer)->Encode("Hello");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(4));

  WriteFile(Path("tokenizer_config.json"), R"({"do_lower_case": "yes"})");
  EXPECT_EQ(LoadTokenizer(dir_.string()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadTokenizer(Path("nowhere")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TokenizerOptionsTest, ParsesHuggingFaceKeys) {
  auto defaults = TokenizerOptions::FromJson("{}", "cfg");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->do_lower_case);
  EXPECT_TRUE(defaults->strip_accents);
  EXPECT_TRUE(defaults->tokenize_chinese_chars);

  auto cased = TokenizerOptions::FromJson(
      R"({"do_lower_case": false, "tokenize_chinese_chars": false,
          "model_max_length": 512})",
      "cfg");
  ASSERT_TRUE(cased.ok());
  EXPECT_FALSE(cased->do_lower_case);
  EXPECT_FALSE(cased->strip_accents);  // Absent follows do_lower_case.
  EXPECT_FALSE(cased->tokenize_chinese_chars);

  auto keep_accents = TokenizerOptions::FromJson(
      R"({"do_lower_case": true, "strip_accents": false})", "cfg");
  ASSERT_TRUE(keep_accents.ok());
  EXPECT_TRUE(keep_accents->do_lower_case);
  EXPECT_FALSE(keep_accents->strip_accents);

  auto null_strip = TokenizerOptions::FromJson(
      R"({"do_lower_case": true, "strip_accents": null})", "cfg");
  ASSERT_TRUE(null_strip.ok());
  EXPECT_TRUE(null_strip->strip_accents);

  for (const char* bad :
       {"[]", "not json", R"({"strip_accents": "no"})",
        R"({"tokenize_chinese_chars": 1})", R"({"do_basic_tokenize": false})",
        R"({"do_split_on_punc": false})"}) {
    auto options = TokenizerOptions::FromJson(bad, "my/tokenizer_config.json");
    ASSERT_FALSE(options.ok()) << bad;
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(options.status().message(),
                HasSubstr("my/tokenizer_config.json"));
  }
}

}  // namespace
}  // namespace rmt
