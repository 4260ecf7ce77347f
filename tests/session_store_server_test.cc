// The session store wired into the server: two replicas in one process
// share a dir: store and a snapshot key; a session written by one continues
// on the other exactly, only for its owner, and is deleted when closed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "server/session_store.h"
#include "server/snapshot_codec.h"
#include "tests/free_port.h"
#include "tests/server_test_util.h"

namespace rmt::server::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAlice[] = "alice-token";
constexpr char kBob[] = "bob-token";

using ::rmt::testing::FreePort;

// A store entry is the SHA-256 of its owner, then the signed snapshot.
constexpr size_t kOwnerDigestBytes = 32;

void Authorize(grpc::ClientContext& context, const std::string& token) {
  context.AddMetadata("authorization", "Bearer " + token);
}

class SessionStoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = TinyModelDir(/*seed=*/43);
    store_dir_ = model_dir_ + "/store";
    tokens_file_ = model_dir_ + "/tokens.txt";
    std::ofstream(tokens_file_) << kAlice << "\n" << kBob << "\n";
    auto store = OpenSessionStore("dir:" + store_dir_, {});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(model_dir_);
  }

  ServerOptions Options() const {
    ServerOptions options = TestServerOptions(model_dir_);
    options.session_store = "dir:" + store_dir_;
    options.checkpoint_every_segments = 4;
    options.auth_tokens_file = tokens_file_;
    return options;
  }
  std::unique_ptr<RmtServer> StartServer(const ServerOptions& options) {
    auto server = RmtServer::Start(options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  // The store's entry for `id` once it holds one (bounded: 20 s).
  absl::StatusOr<std::string> AwaitEntry(const std::string& id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    absl::StatusOr<std::string> entry = store_->Get(id);
    while (!entry.ok() && absl::Now() < deadline) {
      std::this_thread::yield();
      entry = store_->Get(id);
    }
    return entry;
  }
  // The store's entry for `id` once it holds the session after `bytes`
  // bytes of text (streams also write checkpoints on the way; bounded:
  // 20 s).
  absl::StatusOr<std::string> AwaitEntryAt(const std::string& id,
                                           int64_t bytes) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    auto key = SnapshotKey::FromBytes(Options().snapshot_key);
    if (!key.ok()) return key.status();
    while (true) {
      absl::StatusOr<std::string> entry = store_->Get(id);
      if (entry.ok() && entry->size() > kOwnerDigestBytes) {
        auto state = DecodeSnapshot(entry->substr(kOwnerDigestBytes), *key);
        if (state.ok() && state->bytes_received == bytes) return entry;
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError("no entry at that offset");
      }
      std::this_thread::yield();
    }
  }
  // True once the store holds no entry for `id` (bounded: 20 s).
  bool AwaitNoEntry(const std::string& id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (absl::IsNotFound(store_->Get(id).status())) return true;
      std::this_thread::yield();
    }
    return false;
  }

  // A keep-alive Converse stream of alice that sends `text` and ends.
  ConverseResult KeepAliveStream(RmtServer& server, const std::string& text) {
    auto stub = StubFor(server.port());
    std::vector<v1::ConverseRequest> requests = {OpenRequest(true)};
    for (auto& request : DocumentRequests(text, 37)) {
      requests.push_back(std::move(request));
    }
    grpc::ClientContext context;
    Authorize(context, kAlice);
    return Converse(*stub, requests, &context);
  }

  // What a client does after losing the replica of session `id`: opens it
  // on `server` (restored from the store), reads where it stands
  // (`resumed`), sends the rest of `doc` and `question`, and checks the
  // answer equals an uninterrupted run of the whole document.
  void ResumeAndExpectDirectAnswer(RmtServer& server, const std::string& id,
                                   const std::string& doc,
                                   const std::string& question,
                                   v1::Progress* resumed) {
    auto stub = StubFor(server.port());
    grpc::ClientContext context;
    Authorize(context, kAlice);
    // A server that never answers fails the test instead of hanging it.
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto stream = stub->Converse(&context);
    ASSERT_TRUE(stream->Write(OpenRequest(/*keep_alive=*/false, id)));
    v1::ConverseResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(response.has_opened());
    EXPECT_TRUE(response.opened().resumed());
    EXPECT_EQ(response.opened().session_id(), id);
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(response.has_progress());
    *resumed = response.progress();
    const int64_t offset = resumed->bytes_received();
    ASSERT_LE(offset, static_cast<int64_t>(doc.size()));
    for (auto& request : DocumentRequests(doc.substr(offset), 29)) {
      ASSERT_TRUE(stream->Write(request));
    }
    ASSERT_TRUE(stream->Write(QuestionRequest("q", question, 3)));
    stream->WritesDone();
    std::vector<v1::Answer> answers;
    while (stream->Read(&response)) {
      if (response.has_answer()) answers.push_back(response.answer());
    }
    const grpc::Status status = stream->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(answers.size(), 1u);
    const Answer direct = DirectAnswer(server.model(), doc, question, 3);
    ASSERT_EQ(answers[0].top_k_size(), static_cast<int>(direct.top_k.size()));
    for (int i = 0; i < answers[0].top_k_size(); ++i) {
      EXPECT_EQ(answers[0].top_k(i).label(), direct.top_k[i].label) << i;
      EXPECT_NEAR(answers[0].top_k(i).score(), direct.top_k[i].score, 1e-6)
          << i;
    }
  }

  grpc::Status GetSession(RmtServer& server, const std::string& token,
                          const std::string& id, v1::SessionInfo* info) {
    auto stub = StubFor(server.port());
    grpc::ClientContext context;
    Authorize(context, token);
    v1::GetSessionRequest request;
    request.set_session_id(id);
    return stub->GetSession(&context, request, info);
  }

  std::string model_dir_;
  std::string store_dir_;
  std::string tokens_file_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(SessionStoreServerTest, AnotherReplicaContinuesFromTheStoredOffset) {
  const std::string doc = MakeDocument(/*seed=*/7, /*words=*/240);
  const std::string question = "where is mary?";
  const size_t half = doc.size() / 2 + 1;  // inside a word, maybe a character

  std::unique_ptr<RmtServer> a = StartServer(Options());
  ASSERT_NE(a, nullptr);
  const ConverseResult first = KeepAliveStream(*a, doc.substr(0, half));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_FALSE(first.progress.empty());
  const v1::Progress at_end = first.progress.back();
  ASSERT_EQ(at_end.bytes_received(), static_cast<int64_t>(half));
  const std::string id = first.session_id;
  // Written when the keep-alive stream ended.
  absl::StatusOr<std::string> entry = AwaitEntryAt(id, half);
  ASSERT_TRUE(entry.ok()) << entry.status();
  // Replica A is lost: put the store back as that checkpoint left it (its
  // shutdown wrote the session again).
  a.reset();
  ASSERT_TRUE(store_->Put(id, *entry, absl::Minutes(10)).ok());

  std::unique_ptr<RmtServer> b = StartServer(Options());
  ASSERT_NE(b, nullptr);
  v1::Progress resumed;
  ResumeAndExpectDirectAnswer(*b, id, doc, question, &resumed);
  EXPECT_EQ(resumed.bytes_received(), static_cast<int64_t>(half));
  EXPECT_EQ(resumed.tokens_received(), at_end.tokens_received());
  // The stream was not keep-alive: it closed the session, and the entry.
  EXPECT_TRUE(AwaitNoEntry(id));
  EXPECT_THAT(b->metrics().Render(),
              HasSubstr("rmt_store_restores_total{result=\"ok\"} 1"));
}

// A replica lost in the middle of a document: the stream had written a
// checkpoint every 4 segments while it read, so another replica continues
// from the last one, and the client resends only what came after it.
TEST_F(SessionStoreServerTest, AStreamCheckpointsWhileTheDocumentArrives) {
  const std::string doc = MakeDocument(/*seed=*/11, /*words=*/400);
  const std::string question = "where is mary?";
  const size_t sent = doc.size() * 2 / 3;

  std::unique_ptr<RmtServer> a = StartServer(Options());
  ASSERT_NE(a, nullptr);
  std::string id;
  std::string entry;
  int64_t tokens_sent = 0;
  {
    auto stub = StubFor(a->port());
    grpc::ClientContext context;
    Authorize(context, kAlice);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto stream = stub->Converse(&context);
    // Not keep-alive: nothing but the stream's own checkpoints writes the
    // session while the stream holds it.
    ASSERT_TRUE(stream->Write(OpenRequest(/*keep_alive=*/false)));
    for (auto& request : DocumentRequests(doc.substr(0, sent), 41)) {
      ASSERT_TRUE(stream->Write(request));
    }
    v1::ConverseResponse response;
    while (stream->Read(&response)) {
      if (response.has_opened()) id = response.opened().session_id();
      if (response.has_progress()) {
        tokens_sent = response.progress().tokens_received();
        if (response.progress().segments_processed() >= 8) break;
      }
    }
    ASSERT_FALSE(id.empty());
    absl::StatusOr<std::string> stored = AwaitEntry(id);
    ASSERT_TRUE(stored.ok()) << stored.status();
    entry = *stored;
    // The replica is lost with the stream open (its shutdown closes the
    // session; put the store back as the checkpoint left it).
    context.TryCancel();
    stream->Finish().IgnoreError();
  }
  a.reset();
  ASSERT_TRUE(store_->Put(id, entry, absl::Minutes(10)).ok());

  std::unique_ptr<RmtServer> b = StartServer(Options());
  ASSERT_NE(b, nullptr);
  v1::Progress resumed;
  ResumeAndExpectDirectAnswer(*b, id, doc, question, &resumed);
  // A checkpoint at a multiple of 4 segments, inside what was sent.
  EXPECT_GE(resumed.segments_processed(), 4);
  EXPECT_EQ(resumed.segments_processed() % 4, 0);
  EXPECT_GT(resumed.bytes_received(), 0);
  EXPECT_LE(resumed.bytes_received(), static_cast<int64_t>(sent));
  EXPECT_LE(resumed.tokens_received(), tokens_sent + 41);
}

// An id whose session lives in the store (on another replica, say) is
// taken: a new session under it would shadow that one.
TEST_F(SessionStoreServerTest, AnIdInTheStoreIsTaken) {
  const std::string id = "00112233445566778899aabbccddeeff";
  ASSERT_TRUE(store_->Put(id, "an entry", absl::Minutes(10)).ok());
  std::unique_ptr<RmtServer> a = StartServer(Options());
  ASSERT_NE(a, nullptr);
  auto stub = StubFor(a->port());
  grpc::ClientContext context;
  Authorize(context, kAlice);
  v1::CreateSessionRequest request;
  request.set_session_id(id);
  v1::CreateSessionResponse response;
  const grpc::Status status = stub->CreateSession(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << status.error_message();
  EXPECT_EQ(a->sessions().size(), 0);
}

TEST_F(SessionStoreServerTest, AnotherOwnerCannotRestore) {
  std::unique_ptr<RmtServer> a = StartServer(Options());
  ASSERT_NE(a, nullptr);
  const std::string text = MakeDocument(/*seed=*/8, /*words=*/60);
  const ConverseResult first = KeepAliveStream(*a, text);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_TRUE(AwaitEntryAt(first.session_id, text.size()).ok());

  std::unique_ptr<RmtServer> b = StartServer(Options());
  ASSERT_NE(b, nullptr);
  v1::SessionInfo info;
  const grpc::Status bob = GetSession(*b, kBob, first.session_id, &info);
  EXPECT_EQ(bob.error_code(), grpc::StatusCode::NOT_FOUND)
      << bob.error_message();
  EXPECT_EQ(b->sessions().size(), 0);
  // The owner can, and finds what the first replica had received.
  const grpc::Status alice = GetSession(*b, kAlice, first.session_id, &info);
  ASSERT_TRUE(alice.ok()) << alice.error_message();
  EXPECT_EQ(info.progress().bytes_received(),
            static_cast<int64_t>(text.size()));
  const std::string metrics = b->metrics().Render();
  EXPECT_THAT(metrics,
              HasSubstr("rmt_store_restores_total{result=\"not_found\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("rmt_store_restores_total{result=\"ok\"} 1"));
}

TEST_F(SessionStoreServerTest, CloseSessionDeletesTheEntry) {
  std::unique_ptr<RmtServer> a = StartServer(Options());
  ASSERT_NE(a, nullptr);
  const ConverseResult first =
      KeepAliveStream(*a, MakeDocument(/*seed=*/9, /*words=*/40));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_TRUE(AwaitEntry(first.session_id).ok());

  auto stub = StubFor(a->port());
  grpc::ClientContext context;
  Authorize(context, kAlice);
  v1::CloseSessionRequest close;
  close.set_session_id(first.session_id);
  v1::CloseSessionResponse closed;
  ASSERT_TRUE(stub->CloseSession(&context, close, &closed).ok());
  EXPECT_TRUE(AwaitNoEntry(first.session_id));
  // Closed everywhere: no replica brings it back.
  std::unique_ptr<RmtServer> b = StartServer(Options());
  ASSERT_NE(b, nullptr);
  v1::SessionInfo info;
  EXPECT_EQ(GetSession(*b, kAlice, first.session_id, &info).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionStoreServerTest, DrainWritesEveryLiveSession) {
  ServerOptions options = Options();
  options.sessions.reap_interval = absl::Hours(1);  // no reaper writes
  std::unique_ptr<RmtServer> a = StartServer(options);
  ASSERT_NE(a, nullptr);
  auto stub = StubFor(a->port());
  grpc::ClientContext context;
  Authorize(context, kAlice);
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub->CreateSession(&context, {}, &created).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(created.session_id()).status()));
  a->Drain(absl::ZeroDuration());
  EXPECT_TRUE(store_->Get(created.session_id()).ok());
}

TEST_F(SessionStoreServerTest, UnreachableRedisFailsStartup) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  ServerOptions options = Options();
  options.session_store = "redis://127.0.0.1:" + std::to_string(port);
  auto server = RmtServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(), HasSubstr("--session_store=redis://"));
}

TEST_F(SessionStoreServerTest, SharedStoreNeedsASharedKey) {
  if (const char* env = ::getenv("RMT_SNAPSHOT_KEY"); env != nullptr && *env) {
    GTEST_SKIP() << "RMT_SNAPSHOT_KEY is set";
  }
  ServerOptions options = Options();
  options.snapshot_key.clear();
  auto server = RmtServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("snapshot key"));
}

}  // namespace
}  // namespace rmt::server::testing
