// The same contract run against every SessionStore (memory, dir:, redis://),
// then what only one store has: files on disk, a Redis that goes away.
//
// The redis:// cases start Debian's /usr/bin/redis-server on a free port of
// 127.0.0.1 for each test (no persistence) and skip, saying why, where it is
// not installed (scripts/install_deps.sh installs it).
#include "server/session_store.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/free_port.h"
#include "tests/temp_dir.h"

namespace rmt::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kRedisServer[] = "/usr/bin/redis-server";
constexpr char kId[] = "0123456789abcdef0123456789abcdef";

std::string IdFor(int i) { return absl::StrFormat("%032x", i); }

// Every byte value, NULs included, repeated to `size`.
std::string BinaryBytes(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7 % 256);
  return bytes;
}

class FakeClock {
 public:
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  mutable absl::Mutex mu_;
  // Starts at the real time, since dir: compares it with files' mtimes.
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

using ::rmt::testing::FreePort;
using ::rmt::testing::ScopedTempDir;

using RawReply = std::unique_ptr<redisReply, void (*)(void*)>;

// One command in `db` on a fresh connection of the test's own; null reply
// when Redis cannot be reached. Bypasses the store to see what it wrote.
RawReply RawCommand(int port, const std::vector<std::string>& args,
                    int db = 0) {
  std::unique_ptr<redisContext, void (*)(redisContext*)> ctx(
      redisConnectWithTimeout("127.0.0.1", port, {0, 200'000}), &redisFree);
  if (ctx == nullptr || ctx->err != 0 ||
      redisSetTimeout(ctx.get(), {0, 200'000}) != REDIS_OK) {
    return RawReply(nullptr, &freeReplyObject);
  }
  if (db != 0) {
    RawReply selected(
        static_cast<redisReply*>(redisCommand(ctx.get(), "SELECT %d", db)),
        &freeReplyObject);
    if (selected == nullptr || selected->type != REDIS_REPLY_STATUS) {
      return RawReply(nullptr, &freeReplyObject);
    }
  }
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    argvlen.push_back(arg.size());
  }
  return RawReply(static_cast<redisReply*>(
                      redisCommandArgv(ctx.get(), static_cast<int>(argv.size()),
                                       argv.data(), argvlen.data())),
                  &freeReplyObject);
}

// A redis-server child process on 127.0.0.1:port without persistence.
class RedisServerProcess {
 public:
  explicit RedisServerProcess(int port) : port_(port) {}
  ~RedisServerProcess() { Kill(); }

  // Starts it and waits, at most 10 s, until it answers PING.
  ::testing::AssertionResult Start() {
    const std::string port = absl::StrCat(port_);
    pid_ = ::fork();
    if (pid_ < 0) return ::testing::AssertionFailure() << "fork failed";
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
      ::execl(kRedisServer, "redis-server", "--port", port.c_str(), "--bind",
              "127.0.0.1", "--save", "", "--appendonly", "no",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Redis has no readiness event to wait on; poll PING, bounded.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure()
               << "redis-server exited at start (status " << status << ")";
      }
      RawReply pong = RawCommand(port_, {"PING"});
      if (pong != nullptr && pong->type == REDIS_REPLY_STATUS) {
        return ::testing::AssertionSuccess();
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return ::testing::AssertionFailure()
           << "redis-server on port " << port_ << " did not answer PING";
  }

  // The sudden loss of Redis: SIGKILL, then reap, so the port is free.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // in case it was paused
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // A hung Redis: it keeps its sockets but answers nothing.
  void Pause() { ::kill(pid_, SIGSTOP); }
  void Resume() { ::kill(pid_, SIGCONT); }

  int port() const { return port_; }
  std::string spec() const { return absl::StrCat("redis://127.0.0.1:", port_); }

 private:
  const int port_;
  pid_t pid_ = -1;
};

// --- The contract, for every store -----------------------------------------

enum class Backend { kMemory, kDir, kRedis };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  switch (info.param) {
    case Backend::kMemory:
      return "Memory";
    case Backend::kDir:
      return "Dir";
    case Backend::kRedis:
      return "Redis";
  }
  return "Unknown";
}

class SessionStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    SessionStoreOptions options;
    options.clock = clock_.AsFunction();
    switch (GetParam()) {
      case Backend::kMemory:
        spec_ = "memory";
        break;
      case Backend::kDir:
        temp_dir_.emplace("session_store_");
        dir_ = temp_dir_->path();
        ASSERT_FALSE(dir_.empty());
        spec_ = "dir:" + dir_;
        break;
      case Backend::kRedis:
        if (!fs::exists(kRedisServer)) {
          GTEST_SKIP() << kRedisServer
                       << " is not installed (apt-get install redis-server, "
                          "or scripts/install_deps.sh)";
        }
        redis_ = std::make_unique<RedisServerProcess>(FreePort());
        ASSERT_TRUE(redis_->Start());
        spec_ = redis_->spec();
        break;
    }
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        OpenSessionStore(spec_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void TearDown() override {
    store_.reset();
    redis_.reset();
    temp_dir_.reset();
  }

  FakeClock clock_;
  std::string spec_;
  std::optional<ScopedTempDir> temp_dir_;  // dir: only
  std::string dir_;
  std::unique_ptr<RedisServerProcess> redis_;
  std::unique_ptr<SessionStore> store_;
};

TEST_P(SessionStoreTest, RoundTripsBinaryBytes) {
  const std::string bytes = BinaryBytes(1 << 20);
  ASSERT_EQ(bytes[0], '\0');
  ASSERT_TRUE(store_->Put(kId, bytes, absl::Minutes(10)).ok());
  absl::StatusOr<std::string> got = store_->Get(kId);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), bytes.size());
  EXPECT_TRUE(*got == bytes);  // not EXPECT_EQ: 1 MiB in a failure message
}

TEST_P(SessionStoreTest, RoundTripsEmptyBytes) {
  ASSERT_TRUE(store_->Put(kId, "", absl::Minutes(10)).ok());
  absl::StatusOr<std::string> got = store_->Get(kId);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
}

TEST_P(SessionStoreTest, PutReplaces) {
  ASSERT_TRUE(store_->Put(kId, "first, and longer", absl::Minutes(10)).ok());
  ASSERT_TRUE(store_->Put(kId, "second", absl::Minutes(10)).ok());
  absl::StatusOr<std::string> got = store_->Get(kId);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "second");
}

TEST_P(SessionStoreTest, MissingIsNotFound) {
  ASSERT_TRUE(store_->Put(IdFor(1), "other", absl::Minutes(10)).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()))
      << store_->Get(kId).status();
}

TEST_P(SessionStoreTest, DeleteRemovesOnlyThatEntry) {
  ASSERT_TRUE(store_->Put(kId, "doomed", absl::Minutes(10)).ok());
  ASSERT_TRUE(store_->Put(IdFor(1), "kept", absl::Minutes(10)).ok());
  ASSERT_TRUE(store_->Delete(kId).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()));
  absl::StatusOr<std::string> kept = store_->Get(IdFor(1));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "kept");
}

TEST_P(SessionStoreTest, DeleteMissingIsOk) {
  EXPECT_TRUE(store_->Delete(kId).ok());
}

TEST_P(SessionStoreTest, RefusesMalformedIds) {
  for (const std::string& id :
       {std::string("../../../../../../../../tmp/x0123456789abcdef"),
        std::string("../0123456789abcdef0123456789abc"),  // 32 characters
        std::string("0123456789ABCDEF0123456789ABCDEF"),  // upper case
        std::string("0123456789abcdef0123456789abcde"),   // 31 digits
        std::string("0123456789abcdef0123456789abcdef0"), std::string(""),
        std::string("0123456789abcdef\0"
                    "123456789abcdef",
                    32)}) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(
        absl::IsInvalidArgument(store_->Put(id, "bytes", absl::Minutes(1))));
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Get(id).status()));
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Delete(id)));
  }
  if (!dir_.empty()) {
    EXPECT_TRUE(fs::is_empty(dir_));
  }
}

TEST_P(SessionStoreTest, RefusesTtlThatIsNotPositiveAndFinite) {
  for (absl::Duration ttl :
       {absl::ZeroDuration(), -absl::Seconds(1), absl::InfiniteDuration()}) {
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Put(kId, "bytes", ttl)));
  }
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()));
}

TEST_P(SessionStoreTest, EntriesExpireAfterTheirTtl) {
  ASSERT_TRUE(store_->Put(kId, "short-lived", absl::Seconds(10)).ok());
  ASSERT_TRUE(store_->Put(IdFor(1), "long-lived", absl::Hours(1)).ok());
  if (GetParam() == Backend::kRedis) {
    // Redis keeps the time; check the expiry it was given.
    RawReply pttl =
        RawCommand(redis_->port(), {"PTTL", absl::StrCat("rmt:session:", kId)});
    ASSERT_NE(pttl, nullptr);
    ASSERT_EQ(pttl->type, REDIS_REPLY_INTEGER);
    EXPECT_GT(pttl->integer, 0);
    EXPECT_LE(pttl->integer, 10'000);
    EXPECT_TRUE(store_->Get(kId).ok());
    EXPECT_EQ(store_->RemoveExpired().value_or(-1), 0);
    return;
  }
  clock_.Advance(absl::Seconds(9));
  EXPECT_TRUE(store_->Get(kId).ok());
  EXPECT_EQ(store_->RemoveExpired().value_or(-1), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()))
      << store_->Get(kId).status();
  EXPECT_EQ(store_->RemoveExpired().value_or(-1), 1);
  EXPECT_EQ(store_->RemoveExpired().value_or(-1), 0);
  EXPECT_TRUE(store_->Get(IdFor(1)).ok());
  if (!dir_.empty()) {
    EXPECT_FALSE(fs::exists(fs::path(dir_) / kId));
  }
}

TEST_P(SessionStoreTest, PutRenewsTheTtl) {
  ASSERT_TRUE(store_->Put(kId, "v1", absl::Seconds(10)).ok());
  if (GetParam() == Backend::kRedis) {
    ASSERT_TRUE(store_->Put(kId, "v2", absl::Hours(1)).ok());
    RawReply pttl =
        RawCommand(redis_->port(), {"PTTL", absl::StrCat("rmt:session:", kId)});
    ASSERT_NE(pttl, nullptr);
    ASSERT_EQ(pttl->type, REDIS_REPLY_INTEGER);
    EXPECT_GT(pttl->integer, 10'000);
    return;
  }
  clock_.Advance(absl::Seconds(8));
  ASSERT_TRUE(store_->Put(kId, "v2", absl::Seconds(10)).ok());
  clock_.Advance(absl::Seconds(8));
  absl::StatusOr<std::string> got = store_->Get(kId);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v2");
}

TEST_P(SessionStoreTest, ManyThreadsPutAndGetDistinctAndSharedIds) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  constexpr size_t kSharedSize = 64 << 10;
  const std::string shared_id = IdFor(0xffff);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own_id = IdFor(t);
      for (int round = 0; round < kRounds; ++round) {
        const std::string own = absl::StrCat("thread ", t, " round ", round);
        EXPECT_TRUE(store_->Put(own_id, own, absl::Minutes(1)).ok());
        absl::StatusOr<std::string> got = store_->Get(own_id);
        EXPECT_TRUE(got.ok() && *got == own) << got.status();

        // The shared entry is some thread's whole value, never a mixture.
        EXPECT_TRUE(store_
                        ->Put(shared_id, std::string(kSharedSize, 'A' + t),
                              absl::Minutes(1))
                        .ok());
        absl::StatusOr<std::string> shared = store_->Get(shared_id);
        ASSERT_TRUE(shared.ok()) << shared.status();
        ASSERT_EQ(shared->size(), kSharedSize);
        EXPECT_EQ(shared->find_first_not_of((*shared)[0]), std::string::npos);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    absl::StatusOr<std::string> got = store_->Get(IdFor(t));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, absl::StrCat("thread ", t, " round ", kRounds - 1));
  }
}

TEST_P(SessionStoreTest, DescribesItself) {
  switch (GetParam()) {
    case Backend::kMemory:
      EXPECT_EQ(store_->Describe(), "memory");
      break;
    case Backend::kDir:
      EXPECT_EQ(store_->Describe(), spec_);
      break;
    case Backend::kRedis:
      EXPECT_EQ(store_->Describe(), spec_ + "/0");
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(AllStores, SessionStoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kDir,
                                           Backend::kRedis),
                         BackendName);

// --- The --session_store spec -----------------------------------------------

TEST(SessionStoreSpecTest, ParsesMemory) {
  absl::StatusOr<SessionStoreSpec> spec = ParseSessionStoreSpec("memory");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, SessionStoreSpec::Kind::kMemory);
}

TEST(SessionStoreSpecTest, ParsesDirWithAbsoluteOrRelativePath) {
  for (const char* path : {"/var/lib/rmt", "sessions", "./a/../b"}) {
    absl::StatusOr<SessionStoreSpec> spec =
        ParseSessionStoreSpec(absl::StrCat("dir:", path));
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->kind, SessionStoreSpec::Kind::kDir);
    EXPECT_EQ(spec->path, path);
  }
}

TEST(SessionStoreSpecTest, ParsesRedisWithDefaults) {
  struct Case {
    const char* spec;
    const char* host;
    int port;
    int db;
  };
  for (const Case& c :
       {Case{"redis://redis", "redis", 6379, 0},
        Case{"redis://10.0.0.5:7000", "10.0.0.5", 7000, 0},
        Case{"redis://cache.internal:6380/3", "cache.internal", 6380, 3},
        Case{"redis://my-redis_1/15", "my-redis_1", 6379, 15}}) {
    SCOPED_TRACE(c.spec);
    absl::StatusOr<SessionStoreSpec> spec = ParseSessionStoreSpec(c.spec);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->kind, SessionStoreSpec::Kind::kRedis);
    EXPECT_EQ(spec->host, c.host);
    EXPECT_EQ(spec->port, c.port);
    EXPECT_EQ(spec->db, c.db);
  }
}

TEST(SessionStoreSpecTest, RefusesBadSpecsNamingThemAndTheAcceptedForms) {
  for (const char* bad : {"",
                          "Memory",
                          " memory",
                          "mem",
                          "dir:",
                          "dir",
                          "file:/tmp",
                          "redis://",
                          "redis://:6379",
                          "redis://h:",
                          "redis://h:0",
                          "redis://h:65536",
                          "redis://h:abc",
                          "redis://h:+5",
                          "redis://h:6379/",
                          "redis://h:6379/x",
                          "redis://h:6379/-1",
                          "redis://h/1/2",
                          "redis://user:secret@h:6379",
                          "redis://h o st",
                          "rediss://h:6379"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<SessionStoreSpec> spec = ParseSessionStoreSpec(bad);
    ASSERT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
    EXPECT_THAT(spec.status().message(),
                HasSubstr(absl::StrCat("\"", bad, "\"")));
    EXPECT_THAT(spec.status().message(),
                HasSubstr("memory, dir:PATH or redis://HOST[:PORT][/DB]"));
    EXPECT_TRUE(absl::IsInvalidArgument(OpenSessionStore(bad, {}).status()));
  }
}

// --- dir:
// ---------------------------------------------------------------------

class DirSessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir_.path();
    ASSERT_FALSE(dir_.empty());
    options_.clock = clock_.AsFunction();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { store_.reset(); }

  std::unique_ptr<SessionStore> Open() {
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        OpenSessionStore("dir:" + dir_, options_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  void SetMtime(const fs::path& path, absl::Time time) {
    const timespec times[2] = {absl::ToTimespec(time), absl::ToTimespec(time)};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  FakeClock clock_;
  SessionStoreOptions options_;
  ScopedTempDir temp_dir_{"session_store_"};
  std::string dir_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(DirSessionStoreTest, SurvivesReopeningTheDirectory) {
  const std::string bytes = BinaryBytes(100'000);
  ASSERT_TRUE(store_->Put(kId, bytes, absl::Seconds(10)).ok());
  store_ = Open();  // a restart of the server
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<std::string> got = store_->Get(kId);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == bytes);
  // The expiry survives too.
  clock_.Advance(absl::Seconds(10));
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()));
}

TEST_F(DirSessionStoreTest, StoresOneFileNamedByTheIdAndNothingElse) {
  ASSERT_TRUE(store_->Put(kId, "bytes", absl::Seconds(10)).ok());
  ASSERT_TRUE(store_->Put(kId, "again", absl::Seconds(10)).ok());
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(names, ::testing::ElementsAre(kId));
  EXPECT_EQ(fs::status(fs::path(dir_) / kId).permissions() &
                (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
}

TEST_F(DirSessionStoreTest, IgnoresAndLaterRemovesTempFilesLeftByACrash) {
  const fs::path stale = fs::path(dir_) / absl::StrCat(".", kId, ".99.0.tmp");
  const fs::path fresh = fs::path(dir_) / absl::StrCat(".", kId, ".99.1.tmp");
  std::ofstream(stale) << "half a snapshot";
  std::ofstream(fresh) << "a Put in progress";
  SetMtime(stale, clock_.Now() - absl::Hours(2));
  SetMtime(fresh, clock_.Now());

  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()));
  ASSERT_TRUE(store_->Put(kId, "whole", absl::Hours(10)).ok());
  EXPECT_EQ(store_->Get(kId).value_or(""), "whole");

  EXPECT_EQ(store_->RemoveExpired().value_or(-1), 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_EQ(store_->Get(kId).value_or(""), "whole");
}

TEST_F(DirSessionStoreTest, DamagedFilesAreDataLossAndRemoved) {
  std::ofstream(fs::path(dir_) / kId) << "not written by the store";
  EXPECT_TRUE(absl::IsDataLoss(store_->Get(kId).status()))
      << store_->Get(kId).status();

  // A whole entry cut short (the header says more than there is).
  const std::string truncated = IdFor(1);
  ASSERT_TRUE(
      store_->Put(truncated, std::string(1000, 'x'), absl::Hours(1)).ok());
  fs::resize_file(fs::path(dir_) / truncated, 500);
  EXPECT_TRUE(absl::IsDataLoss(store_->Get(truncated).status()))
      << store_->Get(truncated).status();

  // Another file (an operator's note) is not the store's business.
  std::ofstream(fs::path(dir_) / "README") << "sessions live here";
  EXPECT_EQ(store_->RemoveExpired().value_or(-1), 2);
  EXPECT_TRUE(absl::IsNotFound(store_->Get(kId).status()));
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "README"));
}

TEST_F(DirSessionStoreTest, TraversalIdsTouchNothingOutside) {
  const std::string id = "../x" + std::string(28, '0');
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Put(id, "evil", absl::Hours(1))));
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Delete("../" + std::string(29, 'a'))));
  EXPECT_FALSE(fs::exists(fs::path(dir_).parent_path() / id.substr(3)));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(DirSessionStoreTest, OpensARelativePathAsAbsoluteAndCreatesIt) {
  const fs::path wanted = fs::path(dir_) / "nested" / "sessions";
  const fs::path relative = fs::relative(wanted, fs::current_path());
  ASSERT_TRUE(relative.is_relative()) << relative;
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(absl::StrCat("dir:", relative.string(), "/"), options_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Describe(), absl::StrCat("dir:", wanted.string()));
  EXPECT_TRUE(fs::is_directory(wanted));
  EXPECT_EQ(fs::status(wanted).permissions(), fs::perms::owner_all);
  ASSERT_TRUE((*store)->Put(kId, "bytes", absl::Hours(1)).ok());
  EXPECT_TRUE(fs::exists(wanted / kId));
}

TEST_F(DirSessionStoreTest, AVanishedDirectoryIsUnavailable) {
  fs::remove_all(dir_);
  absl::Status put = store_->Put(kId, "bytes", absl::Hours(1));
  EXPECT_TRUE(absl::IsUnavailable(put)) << put;
  EXPECT_THAT(put.message(), HasSubstr("writable"));
  EXPECT_TRUE(absl::IsUnavailable(store_->RemoveExpired().status()));
}

// --- redis://
// -------------------------------------------------------------------

class RedisSessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kRedisServer)) {
      GTEST_SKIP() << kRedisServer
                   << " is not installed (apt-get install redis-server, or "
                      "scripts/install_deps.sh)";
    }
    redis_ = std::make_unique<RedisServerProcess>(FreePort());
    ASSERT_TRUE(redis_->Start());
    // Short, so that the hung-Redis case costs a fraction of a second.
    options_.redis_connect_timeout = absl::Milliseconds(300);
    options_.redis_command_timeout = absl::Milliseconds(300);
  }

  std::unique_ptr<SessionStore> Open(const std::string& spec) {
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        OpenSessionStore(spec, options_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  SessionStoreOptions options_;
  std::unique_ptr<RedisServerProcess> redis_;
};

TEST_F(RedisSessionStoreTest, UnavailableWhileDownThenWorksAfterRestart) {
  std::unique_ptr<SessionStore> store = Open(redis_->spec());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(kId, "before", absl::Hours(1)).ok());

  redis_->Kill();
  const absl::Time start = absl::Now();
  absl::Status put = store->Put(kId, "during", absl::Hours(1));
  absl::Status get = store->Get(kId).status();
  absl::Status del = store->Delete(kId);
  EXPECT_TRUE(absl::IsUnavailable(put)) << put;
  EXPECT_TRUE(absl::IsUnavailable(get)) << get;
  EXPECT_TRUE(absl::IsUnavailable(del)) << del;
  EXPECT_THAT(put.message(), HasSubstr("check that Redis is running"));
  EXPECT_THAT(get.message(), HasSubstr(store->Describe()));
  // Refused connections fail at once, well within three timeouts.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(900));

  ASSERT_TRUE(redis_->Start());  // same port, empty (no persistence)
  EXPECT_TRUE(absl::IsNotFound(store->Get(kId).status()));
  ASSERT_TRUE(store->Put(kId, "after", absl::Hours(1)).ok());
  EXPECT_EQ(store->Get(kId).value_or(""), "after");
}

TEST_F(RedisSessionStoreTest, AConnectionFromBeforeARestartIsReplacedAtOnce) {
  std::unique_ptr<SessionStore> store = Open(redis_->spec());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(kId, "before", absl::Hours(1)).ok());
  redis_->Kill();
  ASSERT_TRUE(redis_->Start());
  // The store still holds the dead connection; the first call must not fail.
  absl::StatusOr<std::string> got = store->Get(kId);
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
}

TEST_F(RedisSessionStoreTest, AHungRedisTimesOutThenRecovers) {
  std::unique_ptr<SessionStore> store = Open(redis_->spec());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(kId, "before", absl::Hours(1)).ok());

  redis_->Pause();
  const absl::Time start = absl::Now();
  absl::Status get = store->Get(kId).status();
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsUnavailable(get)) << get;
  EXPECT_THAT(get.message(), HasSubstr("no answer within 300ms"));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(2));

  redis_->Resume();
  EXPECT_EQ(store->Get(kId).value_or(""), "before");
}

TEST_F(RedisSessionStoreTest, OpenFailsWhenNothingListens) {
  const int port = FreePort();
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(absl::StrCat("redis://127.0.0.1:", port), options_);
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("redis://127.0.0.1:", port, "/0")));
}

TEST_F(RedisSessionStoreTest, UsesTheDbAndKeyPrefix) {
  std::unique_ptr<SessionStore> store = Open(redis_->spec() + "/3");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Describe(), redis_->spec() + "/3");
  ASSERT_TRUE(store->Put(kId, "in db 3", absl::Hours(1)).ok());
  const std::string key = absl::StrCat("rmt:session:", kId);
  RawReply in_db3 = RawCommand(redis_->port(), {"EXISTS", key}, 3);
  RawReply in_db0 = RawCommand(redis_->port(), {"EXISTS", key}, 0);
  ASSERT_NE(in_db3, nullptr);
  ASSERT_NE(in_db0, nullptr);
  EXPECT_EQ(in_db3->integer, 1);
  EXPECT_EQ(in_db0->integer, 0);
  EXPECT_EQ(store->Get(kId).value_or(""), "in db 3");
}

TEST_F(RedisSessionStoreTest, ADbRedisDoesNotHaveIsRefusedAtOpen) {
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(redis_->spec() + "/999", options_);
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("SELECT"));
}

TEST_F(RedisSessionStoreTest, AKeyOfAnotherTypeIsDataLoss) {
  std::unique_ptr<SessionStore> store = Open(redis_->spec());
  ASSERT_NE(store, nullptr);
  RawReply pushed = RawCommand(
      redis_->port(), {"LPUSH", absl::StrCat("rmt:session:", kId), "x"});
  ASSERT_NE(pushed, nullptr);
  absl::Status get = store->Get(kId).status();
  EXPECT_TRUE(absl::IsDataLoss(get)) << get;
  // Put replaces it (SET ignores the old type).
  EXPECT_TRUE(store->Put(kId, "mine", absl::Hours(1)).ok());
  EXPECT_EQ(store->Get(kId).value_or(""), "mine");
}

}  // namespace
}  // namespace rmt::server
