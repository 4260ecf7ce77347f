#include "server/auth.h"

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/temp_dir.h"

namespace rmt::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kPeer = "ipv4:10.0.0.7:51234";

// Failures the authenticator logs, on a clock the test steps.
struct FakeLog {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  std::vector<AuthFailure> lines;

  AuthOptions Options() {
    AuthOptions options;
    options.now = [this] { return now; };
    options.log_failure = [this](const AuthFailure& f) { lines.push_back(f); };
    return options;
  }
};

// Each test writes its tokens files into a directory of its own, since ctest
// runs the tests as parallel processes.
class AuthTest : public ::testing::Test {
 protected:
  // A tokens file in the test's temporary directory; returns its path.
  std::string WriteTokens(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  absl::StatusOr<Authenticator> LoadAlphaBeta(FakeLog* log) {
    return Authenticator::Load(
        WriteTokens("alpha_beta",
                    "# ops team\n\n  alpha-token  \nbeta-token\n"),
        log->Options());
  }

  rmt::testing::ScopedTempDir dir_{"auth_test_"};
};

TEST_F(AuthTest, WithoutTokensEveryCallIsAnonymous) {
  FakeLog log;
  auto auth = Authenticator::Load("", log.Options());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE(auth->enabled());
  EXPECT_EQ(*auth->Authenticate(absl::nullopt, kPeer), "");
  EXPECT_EQ(*auth->Authenticate("Bearer anything", kPeer), "");
  EXPECT_TRUE(log.lines.empty());
}

TEST_F(AuthTest, RefusesMissingAndEmptyTokenFiles) {
  EXPECT_EQ(Authenticator::Load(dir_.File("no_such_tokens")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Authenticator::Load(WriteTokens("only_comments", "# none\n\n  \n"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AuthTest, AcceptsConfiguredTokensAsTheirOwner) {
  FakeLog log;
  auto auth = LoadAlphaBeta(&log);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->enabled());
  EXPECT_EQ(*auth->Authenticate("Bearer alpha-token", kPeer), "alpha-token");
  EXPECT_EQ(*auth->Authenticate("Bearer beta-token", kPeer), "beta-token");
  EXPECT_TRUE(log.lines.empty());
}

TEST_F(AuthTest, SchemeIsCaseInsensitiveAndWhitespaceIsNotPartOfTheToken) {
  FakeLog log;
  auto auth = LoadAlphaBeta(&log);
  ASSERT_TRUE(auth.ok()) << auth.status();
  for (absl::string_view value :
       {"bearer alpha-token", "BEARER alpha-token", "BeArEr alpha-token",
        "Bearer   alpha-token", "Bearer\talpha-token",
        "  Bearer alpha-token\t ", "Bearer alpha-token\r\n"}) {
    auto owner = auth->Authenticate(value, kPeer);
    ASSERT_TRUE(owner.ok()) << "'" << value << "': " << owner.status();
    EXPECT_EQ(*owner, "alpha-token") << value;
  }
  EXPECT_TRUE(log.lines.empty());
}

TEST_F(AuthTest, RefusesEverythingElse) {
  FakeLog log;
  auto auth = LoadAlphaBeta(&log);
  ASSERT_TRUE(auth.ok()) << auth.status();
  for (absl::string_view value :
       {"Bearer gamma-token", "Bearer alpha-toke", "Bearer alpha-tokenn",
        "Bearer ALPHA-TOKEN", "Bearer alpha token", "alpha-token",
        "Beareralpha-token", "Bearer", "Bearer   ", "Basic alpha-token", "",
        "Bearer # ops team"}) {
    EXPECT_EQ(auth->Authenticate(value, kPeer).status().code(),
              absl::StatusCode::kUnauthenticated)
        << "'" << value << "'";
    log.now += absl::Seconds(1);  // every refusal gets its own line
  }
  EXPECT_EQ(auth->Authenticate(absl::nullopt, kPeer).status().code(),
            absl::StatusCode::kUnauthenticated);
  ASSERT_EQ(log.lines.size(), 13u);
  EXPECT_EQ(log.lines[0].reason, "unknown bearer token");
  EXPECT_EQ(log.lines[5].reason, "not a bearer credential");
  EXPECT_EQ(log.lines[12].reason, "no authorization metadata");
  for (const AuthFailure& line : log.lines) {
    EXPECT_EQ(line.peer, kPeer);
    EXPECT_EQ(line.suppressed, 0);
  }
}

TEST_F(AuthTest, LogsAtMostOneRefusalPerIntervalAndCountsTheRest) {
  FakeLog log;
  auto auth = LoadAlphaBeta(&log);
  ASSERT_TRUE(auth.ok()) << auth.status();
  auto refuse = [&] {
    EXPECT_FALSE(auth->Authenticate("Bearer guess", kPeer).ok());
  };

  refuse();
  refuse();
  refuse();
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0].suppressed, 0);

  log.now += absl::Milliseconds(999);
  refuse();
  EXPECT_EQ(log.lines.size(), 1u);
  // Successes are neither logged nor counted.
  EXPECT_TRUE(auth->Authenticate("Bearer beta-token", kPeer).ok());

  log.now += absl::Milliseconds(1);
  refuse();
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_EQ(log.lines[1].suppressed, 3);

  log.now += absl::Seconds(5);
  refuse();
  ASSERT_EQ(log.lines.size(), 3u);
  EXPECT_EQ(log.lines[2].suppressed, 0);
}

TEST_F(AuthTest, DefaultLogNamesThePeerAndReasonButNeverTheToken) {
  AuthOptions options;
  options.now = [] { return absl::FromUnixSeconds(1'000'000); };
  auto auth = Authenticator::Load(WriteTokens("one", "alpha-token\n"), options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(auth->Authenticate("Bearer secret-guess", kPeer).ok());
  EXPECT_FALSE(auth->Authenticate("Bearer secret-guess", kPeer).ok());
  const std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(logged, HasSubstr("level=warning event=auth_failed"));
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("peer=", kPeer)));
  EXPECT_THAT(logged, HasSubstr("reason=\"unknown bearer token\""));
  EXPECT_THAT(logged, Not(HasSubstr("secret-guess")));
  EXPECT_THAT(logged, Not(HasSubstr("alpha-token")));
  EXPECT_EQ(std::count(logged.begin(), logged.end(), '\n'), 1);
}

}  // namespace
}  // namespace rmt::server
