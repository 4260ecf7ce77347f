// Loopback tests of rmt-server: every RPC over a real gRPC server on
// 127.0.0.1, answers compared with the engine's direct answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "server/session_manager.h"
#include "tests/server_test_util.h"
#include "tests/temp_dir.h"

namespace rmt::server::testing {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new std::string(TinyModelDir());
    auto server = RmtServer::Start(TestServerOptions(*model_dir_));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(*model_dir_);
    delete model_dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = StubFor(server_->port());
  }

  static Answer Direct(const std::string& doc, const std::string& question,
                       int top_k = 3) {
    return DirectAnswer(server_->model(), doc, question, top_k);
  }

  static std::string* model_dir_;
  static RmtServer* server_;
  std::unique_ptr<v1::MemoryQA::Stub> stub_;
};

std::string* ServerTest::model_dir_ = nullptr;
RmtServer* ServerTest::server_ = nullptr;

TEST_F(ServerTest, GetModelInfo) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.segment_size(), 16);
  EXPECT_EQ(info.num_mem_tokens(), 4);
  EXPECT_EQ(info.labels_size(), 5);
  EXPECT_EQ(info.fingerprint(), server_->model().fingerprint);
  EXPECT_EQ(info.vocab_size(), server_->model().config.content_vocab_size());
}

TEST_F(ServerTest, ConverseAnswersLikeTheEngine) {
  const std::string doc = MakeDocument(1, 120);
  auto requests = DocumentRequests(doc, 7);
  requests.insert(requests.begin(), OpenRequest());
  requests.push_back(QuestionRequest("q1", "where is mary?"));
  requests.push_back(QuestionRequest("q2", "where is john?", 2));
  ConverseResult result = Converse(*stub_, requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.session_id.size(), 32u);
  ASSERT_EQ(result.answers.size(), 2u);
  EXPECT_EQ(result.answers[0].question_id(), "q1");
  ExpectSameAnswer(result.answers[0], Direct(doc, "where is mary?"));
  ExpectSameAnswer(result.answers[1], Direct(doc, "where is john?", 2));
  // Questions never change the memory: both saw the same segments.
  EXPECT_EQ(result.answers[0].segments_seen(),
            result.answers[1].segments_seen());
  ASSERT_FALSE(result.progress.empty());
  const v1::Progress& last = result.progress.back();
  EXPECT_EQ(last.segments_pending(), 0);
  EXPECT_EQ(last.segments_processed(), result.answers[0].segments_seen());
  EXPECT_EQ(last.tokens_received(),
            server_->model().tokenizer->Encode(doc)->size());
  // Without keep_alive the session ends with the stream.
  grpc::ClientContext context;
  v1::GetSessionRequest get;
  get.set_session_id(result.session_id);
  v1::SessionInfo info;
  EXPECT_EQ(stub_->GetSession(&context, get, &info).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, KeepAliveSessionContinuesInAnotherStream) {
  const std::string doc = MakeDocument(2, 80);
  const std::string first = doc.substr(0, 101), second = doc.substr(101);
  auto requests = DocumentRequests(first, 13);
  requests.insert(requests.begin(), OpenRequest(/*keep_alive=*/true));
  ConverseResult one = Converse(*stub_, requests);
  ASSERT_TRUE(one.status.ok()) << one.status.error_message();
  requests = DocumentRequests(second, 5);
  requests.insert(requests.begin(), OpenRequest(false, one.session_id));
  requests.push_back(QuestionRequest("q", "where is sandra?"));
  ConverseResult two = Converse(*stub_, requests);
  ASSERT_TRUE(two.status.ok()) << two.status.error_message();
  EXPECT_EQ(two.session_id, one.session_id);
  ASSERT_EQ(two.answers.size(), 1u);
  ExpectSameAnswer(two.answers[0], Direct(doc, "where is sandra?"));
}

// A client may draw a new session's id (so a load balancer hashing
// x-session-id routes its first stream like its later calls).
TEST_F(ServerTest, ClientChosenSessionIds) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  const auto open_new = [](const std::string& new_id,
                           const std::string& continued = "") {
    v1::ConverseRequest request = OpenRequest(/*keep_alive=*/true, continued);
    request.mutable_open()->set_new_session_id(new_id);
    return request;
  };
  {
    grpc::ClientContext context;
    context.AddMetadata("x-session-id", id);
    const ConverseResult opened = Converse(
        *stub_, {open_new(id), TextRequest("Mary went home.")}, &context);
    ASSERT_TRUE(opened.status.ok()) << opened.status.error_message();
    EXPECT_EQ(opened.session_id, id);
  }
  // Taken now: by a stream and by CreateSession.
  EXPECT_EQ(Converse(*stub_, {open_new(id)}).status.error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  {
    grpc::ClientContext context;
    v1::CreateSessionRequest request;
    request.set_session_id(id);
    v1::CreateSessionResponse response;
    EXPECT_EQ(stub_->CreateSession(&context, request, &response).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  // The kept session continues under its id.
  const ConverseResult continued =
      Converse(*stub_, {OpenRequest(false, id), TextRequest(" And then?")});
  ASSERT_TRUE(continued.status.ok()) << continued.status.error_message();
  EXPECT_EQ(continued.session_id, id);
  ASSERT_FALSE(continued.progress.empty());
  EXPECT_EQ(
      continued.progress.back().bytes_received(),
      static_cast<int64_t>(std::string("Mary went home. And then?").size()));
  // Malformed, both kinds of id at once, and a metadata id that disagrees.
  EXPECT_EQ(Converse(*stub_, {open_new("not-hex")}).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string other = "fedcba9876543210fedcba9876543210";
  EXPECT_EQ(Converse(*stub_, {open_new(other, id)}).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext mismatched;
  mismatched.AddMetadata("x-session-id", id);
  EXPECT_EQ(
      Converse(*stub_, {open_new(other)}, &mismatched).status.error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  // CreateSession under a fresh id.
  grpc::ClientContext context;
  v1::CreateSessionRequest request;
  request.set_session_id(other);
  v1::CreateSessionResponse response;
  ASSERT_TRUE(stub_->CreateSession(&context, request, &response).ok());
  EXPECT_EQ(response.session_id(), other);
}

TEST_F(ServerTest, SixtyFourConcurrentSessions) {
  constexpr int kSessions = 64;
  std::vector<ConverseResult> results(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      auto stub = StubFor(server_->port());
      auto requests = DocumentRequests(MakeDocument(100 + i, 40 + i), 11);
      requests.insert(requests.begin(), OpenRequest());
      requests.push_back(QuestionRequest("q", "where is daniel?"));
      results[i] = Converse(*stub, requests);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_TRUE(results[i].status.ok())
        << i << ": " << results[i].status.error_message();
    ASSERT_EQ(results[i].answers.size(), 1u) << i;
    ExpectSameAnswer(results[i].answers[0],
                     Direct(MakeDocument(100 + i, 40 + i), "where is daniel?"));
  }
  std::set<std::string> ids;
  for (auto& result : results) ids.insert(result.session_id);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kSessions));
}

// CreateSession, Ingest, Ask, GetSession, ExportSession, ImportSession,
// CloseSession, with the session id in messages and in metadata.
TEST_F(ServerTest, UnaryCallsAndSnapshotRoundTrip) {
  const std::string doc = MakeDocument(3, 90);
  // Cut inside "café"'s two-byte character, mid-word.
  const size_t cut =
      doc.find("é") != std::string::npos ? doc.find("é") + 1 : doc.size() / 2;
  const std::string first = doc.substr(0, cut), second = doc.substr(cut);

  grpc::ClientContext create_context;
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub_->CreateSession(&create_context, {}, &created).ok());
  const std::string id = created.session_id();
  ASSERT_EQ(id.size(), 32u);

  auto ingest = [&](const std::string& session, const std::string& text,
                    bool via_metadata) {
    grpc::ClientContext context;
    if (via_metadata) context.AddMetadata("x-session-id", session);
    v1::IngestResponse response;
    auto writer = stub_->Ingest(&context, &response);
    for (size_t i = 0; i < text.size(); i += 9) {
      v1::IngestRequest request;
      if (!via_metadata && i == 0) request.set_session_id(session);
      request.mutable_chunk()->set_text(text.substr(i, 9));
      EXPECT_TRUE(writer->Write(request));
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.progress().segments_pending(), 0);
    return response;
  };
  ingest(id, first, /*via_metadata=*/false);

  grpc::ClientContext export_context;
  v1::ExportSessionRequest export_request;
  export_request.set_session_id(id);
  v1::ExportSessionResponse exported;
  ASSERT_TRUE(
      stub_->ExportSession(&export_context, export_request, &exported).ok());
  ASSERT_FALSE(exported.snapshot().data().empty());

  grpc::ClientContext import_context;
  v1::ImportSessionRequest import_request;
  import_request.set_snapshot(exported.snapshot().data());
  v1::CreateSessionResponse imported;
  ASSERT_TRUE(
      stub_->ImportSession(&import_context, import_request, &imported).ok());
  ASSERT_NE(imported.session_id(), id);
  {
    grpc::ClientContext context;
    v1::GetSessionRequest get;
    get.set_session_id(id);
    v1::SessionInfo original;
    ASSERT_TRUE(stub_->GetSession(&context, get, &original).ok());
    EXPECT_EQ(imported.info().progress().tokens_received(),
              original.progress().tokens_received());
    EXPECT_EQ(imported.info().progress().tokens_buffered(),
              original.progress().tokens_buffered());
    EXPECT_EQ(imported.info().progress().segments_processed(),
              original.progress().segments_processed());
  }

  // Both continue from the same point and end equal to the whole document.
  ingest(id, second, /*via_metadata=*/true);
  ingest(imported.session_id(), second, /*via_metadata=*/false);
  const Answer direct = Direct(doc, "where is mary?");
  for (const std::string& session : {id, imported.session_id()}) {
    grpc::ClientContext context;
    context.AddMetadata("x-session-id", session);
    v1::AskRequest ask;
    ask.mutable_question()->set_text("where is mary?");
    ask.mutable_question()->set_top_k(3);
    v1::AskResponse answer;
    grpc::Status status = stub_->Ask(&context, ask, &answer);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ExpectSameAnswer(answer.answer(), direct);

    grpc::ClientContext get_context;
    v1::GetSessionRequest get;
    get.set_session_id(session);
    v1::SessionInfo info;
    ASSERT_TRUE(stub_->GetSession(&get_context, get, &info).ok());
    EXPECT_EQ(info.questions_answered(), 1);
    EXPECT_EQ(info.progress().tokens_received(),
              server_->model().tokenizer->Encode(doc)->size());

    grpc::ClientContext close_context;
    v1::CloseSessionRequest close;
    close.set_session_id(session);
    v1::CloseSessionResponse closed;
    ASSERT_TRUE(stub_->CloseSession(&close_context, close, &closed).ok());
    grpc::ClientContext again_context;
    EXPECT_EQ(stub_->CloseSession(&again_context, close, &closed).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(ServerTest, ConverseSnapshotsRestoreExactly) {
  const std::string doc = MakeDocument(4, 100);
  const std::string first = doc.substr(0, 150), second = doc.substr(150);
  auto requests = DocumentRequests(first, 10);
  requests.insert(requests.begin(), OpenRequest());
  v1::ConverseRequest snapshot;
  snapshot.mutable_snapshot();
  requests.push_back(snapshot);
  ConverseResult one = Converse(*stub_, requests);
  ASSERT_TRUE(one.status.ok()) << one.status.error_message();
  ASSERT_EQ(one.snapshots.size(), 1u);

  v1::ConverseRequest open;
  open.mutable_open()->set_snapshot(one.snapshots[0]);
  requests = DocumentRequests(second, 10);
  requests.insert(requests.begin(), open);
  requests.push_back(QuestionRequest("q", "where is john?"));
  ConverseResult two = Converse(*stub_, requests);
  ASSERT_TRUE(two.status.ok()) << two.status.error_message();
  ASSERT_EQ(two.answers.size(), 1u);
  ExpectSameAnswer(two.answers[0], Direct(doc, "where is john?"));
}

TEST_F(ServerTest, TamperedSnapshotIsRefused) {
  grpc::ClientContext create_context;
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub_->CreateSession(&create_context, {}, &created).ok());
  grpc::ClientContext export_context;
  v1::ExportSessionRequest export_request;
  export_request.set_session_id(created.session_id());
  v1::ExportSessionResponse exported;
  ASSERT_TRUE(
      stub_->ExportSession(&export_context, export_request, &exported).ok());
  const std::string good = exported.snapshot().data();
  const int before = server_->sessions().size();
  for (size_t i = 0; i < good.size();
       i += std::max<size_t>(1, good.size() / 40)) {
    std::string bad = good;
    bad[i] ^= 0x20;
    grpc::ClientContext context;
    v1::ImportSessionRequest request;
    request.set_snapshot(bad);
    v1::CreateSessionResponse response;
    EXPECT_EQ(stub_->ImportSession(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << "byte " << i;
  }
  EXPECT_EQ(server_->sessions().size(), before);  // no slot leaked
  // Another model with the same key: FAILED_PRECONDITION.
  const std::string other_dir = TinyModelDir(/*seed=*/99);
  auto other = RmtServer::Start(TestServerOptions(other_dir));
  ASSERT_TRUE(other.ok()) << other.status();
  auto other_stub = StubFor((*other)->port());
  grpc::ClientContext context;
  v1::ImportSessionRequest request;
  request.set_snapshot(good);
  v1::CreateSessionResponse response;
  EXPECT_EQ(
      other_stub->ImportSession(&context, request, &response).error_code(),
      grpc::StatusCode::FAILED_PRECONDITION);
  other->reset();
  std::filesystem::remove_all(other_dir);
}

// Each refusal of the issue, and a bystander session that is untouched.
TEST_F(ServerTest, BadInputBattery) {
  const std::string doc = MakeDocument(5, 60);
  auto requests = DocumentRequests(doc, 17);
  requests.insert(requests.begin(), OpenRequest(/*keep_alive=*/true));
  ConverseResult bystander = Converse(*stub_, requests);
  ASSERT_TRUE(bystander.status.ok());

  auto code_of = [&](std::vector<v1::ConverseRequest> requests) {
    return Converse(*stub_, requests).status.error_code();
  };
  using grpc::StatusCode;
  // Questions or chunks before `open`.
  EXPECT_EQ(code_of({QuestionRequest("q", "where?")}),
            StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(code_of({TextRequest("text")}), StatusCode::FAILED_PRECONDITION);
  // A second open.
  EXPECT_EQ(code_of({OpenRequest(), OpenRequest()}),
            StatusCode::FAILED_PRECONDITION);
  // Invalid UTF-8.
  EXPECT_EQ(code_of({OpenRequest(), TextRequest("ok \xff\xfe bad")}),
            StatusCode::INVALID_ARGUMENT);
  // A text flushed inside a character.
  v1::ConverseRequest flush;
  flush.mutable_flush();
  EXPECT_EQ(code_of({OpenRequest(), TextRequest("caf\xc3"), flush}),
            StatusCode::INVALID_ARGUMENT);
  // An oversized chunk.
  EXPECT_EQ(code_of({OpenRequest(), TextRequest(std::string(5000, 'a'))}),
            StatusCode::INVALID_ARGUMENT);
  // Token ids out of range.
  v1::ConverseRequest ids;
  ids.mutable_chunk()->mutable_token_ids()->add_ids(5);
  ids.mutable_chunk()->mutable_token_ids()->add_ids(100000);
  EXPECT_EQ(code_of({OpenRequest(), ids}), StatusCode::INVALID_ARGUMENT);
  ids.mutable_chunk()->mutable_token_ids()->set_ids(1, -1);
  EXPECT_EQ(code_of({OpenRequest(), ids}), StatusCode::INVALID_ARGUMENT);
  // An empty request, an empty chunk, an empty or overlong question.
  EXPECT_EQ(code_of({OpenRequest(), v1::ConverseRequest()}),
            StatusCode::INVALID_ARGUMENT);
  v1::ConverseRequest empty_chunk;
  empty_chunk.mutable_chunk();
  EXPECT_EQ(code_of({OpenRequest(), empty_chunk}),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code_of({OpenRequest(), QuestionRequest("q", "   ")}),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code_of({OpenRequest(),
                     QuestionRequest("q", std::string(40, 'z') + " x y z w")}),
            StatusCode::INVALID_ARGUMENT);
  // Unknown and malformed session ids.
  EXPECT_EQ(code_of({OpenRequest(false, std::string(32, 'a'))}),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(code_of({OpenRequest(false, "not-a-session")}),
            StatusCode::INVALID_ARGUMENT);
  // A session in use by another stream.
  {
    grpc::ClientContext context;
    auto stream = stub_->Converse(&context);
    ASSERT_TRUE(stream->Write(OpenRequest(true, bystander.session_id)));
    v1::ConverseResponse opened;
    ASSERT_TRUE(stream->Read(&opened));
    EXPECT_EQ(code_of({OpenRequest(false, bystander.session_id)}),
              StatusCode::FAILED_PRECONDITION);
    stream->WritesDone();
    while (stream->Read(&opened)) {
    }
    ASSERT_TRUE(stream->Finish().ok());
  }
  // Unary calls.
  {
    grpc::ClientContext context;
    v1::AskRequest ask;
    ask.set_session_id(std::string(32, 'b'));
    ask.mutable_question()->set_text("where?");
    v1::AskResponse response;
    EXPECT_EQ(stub_->Ask(&context, ask, &response).error_code(),
              StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("x-session-id", std::string(32, 'c'));
    v1::GetSessionRequest get;
    get.set_session_id(bystander.session_id);
    v1::SessionInfo info;
    EXPECT_EQ(stub_->GetSession(&context, get, &info).error_code(),
              StatusCode::INVALID_ARGUMENT);  // they disagree
  }
  {
    grpc::ClientContext context;
    v1::ImportSessionRequest request;
    request.set_snapshot("garbage");
    v1::CreateSessionResponse response;
    EXPECT_EQ(stub_->ImportSession(&context, request, &response).error_code(),
              StatusCode::INVALID_ARGUMENT);
  }
  // The bystander still answers as if nothing happened.
  requests = {OpenRequest(false, bystander.session_id),
              QuestionRequest("q", "where is mary?")};
  ConverseResult after = Converse(*stub_, requests);
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  ASSERT_EQ(after.answers.size(), 1u);
  ExpectSameAnswer(after.answers[0], Direct(doc, "where is mary?"));
}

TEST(ServerLimitsTest, TooManySessionsAndOwnership) {
  const std::string dir = TinyModelDir(/*seed=*/5);
  const std::string tokens_file = dir + "/tokens.txt";
  std::ofstream(tokens_file) << "# tokens\nalice-token\nbob-token\n";
  ServerOptions options = TestServerOptions(dir);
  options.sessions.max_sessions = 2;
  options.engine.device_slots = 1;  // the second memory lives in host memory
  options.engine.host_slots = 1;
  options.auth_tokens_file = tokens_file;
  auto server = RmtServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = StubFor((*server)->port());
  auto create = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::CreateSessionResponse response;
    grpc::Status status = stub->CreateSession(&context, {}, &response);
    return std::make_pair(status.error_code(), response.session_id());
  };
  EXPECT_EQ(create("").first, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(create("mallory").first, grpc::StatusCode::UNAUTHENTICATED);
  auto [code, alice_session] = create("alice-token");
  ASSERT_EQ(code, grpc::StatusCode::OK);
  EXPECT_EQ(create("bob-token").first, grpc::StatusCode::OK);
  EXPECT_EQ(create("alice-token").first, grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Bob cannot see, ask or close Alice's session.
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer bob-token");
  v1::CloseSessionRequest close;
  close.set_session_id(alice_session);
  v1::CloseSessionResponse closed;
  EXPECT_EQ(stub->CloseSession(&context, close, &closed).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext alice;
  alice.AddMetadata("authorization", "Bearer alice-token");
  EXPECT_TRUE(stub->CloseSession(&alice, close, &closed).ok());
  EXPECT_EQ(create("alice-token").first, grpc::StatusCode::OK);
  server->reset();
  std::filesystem::remove_all(dir);
}

TEST(ServerLimitsTest, IdleSessionsExpire) {
  const std::string dir = TinyModelDir(/*seed=*/6);
  ServerOptions options = TestServerOptions(dir);
  options.sessions.idle_ttl = absl::Minutes(5);
  auto server = RmtServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = StubFor((*server)->port());
  grpc::ClientContext context;
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub->CreateSession(&context, {}, &created).ok());
  EXPECT_EQ((*server)->sessions().size(), 1);
  (*server)->sessions().Reap(absl::Now() + absl::Minutes(1));
  EXPECT_EQ((*server)->sessions().size(), 1);
  (*server)->sessions().Reap(absl::Now() + absl::Minutes(6));
  EXPECT_EQ((*server)->sessions().size(), 0);
  const std::string metrics = (*server)->metrics().Render();
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           "rmt_sessions_total{outcome=\"expired\"} 1"));
  server->reset();
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, MetricsPassPromtool) {
  // Some traffic first, so histograms and labelled counters have samples.
  auto requests = DocumentRequests(MakeDocument(6, 50), 20);
  requests.insert(requests.begin(), OpenRequest());
  requests.push_back(QuestionRequest("q", "where is mary?"));
  ASSERT_TRUE(Converse(*stub_, requests).status.ok());
  const std::string text = server_->metrics().Render();
  for (const char* name :
       {"rmt_active_sessions", "rmt_sessions_total", "rmt_memory_bytes",
        "rmt_segments_processed_total", "rmt_tokens_processed_total",
        "rmt_questions_total", "rmt_batch_size_bucket",
        "rmt_queue_wait_seconds_bucket", "rmt_segment_compute_seconds_bucket",
        "rmt_answer_latency_seconds_bucket", "rmt_requests_total"}) {
    EXPECT_THAT(text, ::testing::HasSubstr(name));
  }
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "rmt_requests_total{code=\"OK\",method=\"Converse\"}"));
  if (!std::filesystem::exists("/usr/bin/promtool")) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  const ::rmt::testing::ScopedTempDir dir("server_test_");
  const std::string path = dir.File("rmt_metrics.txt");
  std::ofstream(path) << text;
  const std::string command = "/usr/bin/promtool check metrics < " + path;
  EXPECT_EQ(std::system(command.c_str()), 0) << text;
}

}  // namespace
}  // namespace rmt::server::testing
