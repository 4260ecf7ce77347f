// Shared helpers of the server tests: a tiny untrained model directory, a
// loopback RmtServer on a port the OS picks, and the engine's direct answers
// to compare the server's with. Free of torch types.
#ifndef RMT_TESTS_SERVER_TEST_UTIL_H_
#define RMT_TESTS_SERVER_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "model/engine.h"
#include "model/segmenter.h"
#include "model/untrained_model.h"
#include "rmt/v1/memory_qa.grpc.pb.h"
#include "server/server.h"

namespace rmt::server::testing {

// A tiny model (segments of 16 tokens) in a fresh temp directory.
inline std::string TinyModelDir(uint64_t seed = 3) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("rmt-server-test-" + std::to_string(::getpid()) +
                            "-" + std::to_string(seed)))
                              .string();
  UntrainedModelOptions options;
  options.segment_size = 16;
  options.hidden_size = 32;
  options.intermediate_size = 64;
  options.num_labels = 5;
  options.seed = seed;
  options.weight_scale = 10;
  auto created = CreateUntrainedModel(dir, options);
  EXPECT_TRUE(created.ok()) << created.status();
  return dir;
}

inline ServerOptions TestServerOptions(const std::string& model_dir) {
  ServerOptions options;
  options.model.directory = model_dir;
  options.model.device = "cpu";
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.engine.max_batch = 16;
  options.engine.intra_op_threads = 1;
  options.sessions.max_sessions = 256;
  options.snapshot_key = "test-snapshot-key-0123456789";
  options.limits.max_pending_segments = 4;
  options.limits.max_chunk_bytes = 4096;
  return options;
}

inline std::unique_ptr<v1::MemoryQA::Stub> StubFor(int port) {
  return v1::MemoryQA::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

// Asks the server on `port` for its health until it stops answering
// SERVING (a draining server answers NOT_SERVING with its listener still
// open); the last status, or an RPC error as a failure.
inline grpc::health::v1::HealthCheckResponse::ServingStatus AwaitNotServing(
    int port) {
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  auto serving = grpc::health::v1::HealthCheckResponse::SERVING;
  for (int attempt = 0;
       attempt < 5000 &&
       serving == grpc::health::v1::HealthCheckResponse::SERVING;
       ++attempt) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse checked;
    const grpc::Status status = health->Check(&context, {}, &checked);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    serving = checked.status();
  }
  return serving;
}

// The engine's own answer for `doc` and `question`, without the server.
inline Answer DirectAnswer(const ServedModel& model, const std::string& doc,
                           const std::string& question, int top_k) {
  EngineOptions options;
  options.max_batch = 1;
  options.device_slots = 1;
  auto engine = Engine::Create(model.model, options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  auto slot = (*engine)->OpenSlot();
  auto ids = model.tokenizer->Encode(doc);
  EXPECT_TRUE(ids.ok()) << ids.status();
  Segmenter segmenter(model.config.rmt.segment_size);
  auto segments = segmenter.Append(*ids);
  if (auto tail = segmenter.Flush()) segments.push_back(*tail);
  for (auto& segment : segments) {
    EXPECT_TRUE((*engine)->SubmitSegment(*slot, segment).get().ok());
  }
  auto question_ids = model.tokenizer->Encode(question);
  auto answer = (*engine)->SubmitQuestion(*slot, *question_ids, top_k).get();
  EXPECT_TRUE(answer.ok()) << answer.status();
  return *answer;
}

// What one Converse stream returned.
struct ConverseResult {
  grpc::Status status;
  std::string session_id;
  std::vector<v1::Answer> answers;
  std::vector<v1::Progress> progress;
  std::vector<std::string> snapshots;
};

// Sends `requests` on one Converse stream (a reader thread collects the
// responses), half-closes, and returns what came back.
inline ConverseResult Converse(v1::MemoryQA::Stub& stub,
                               const std::vector<v1::ConverseRequest>& requests,
                               grpc::ClientContext* context = nullptr) {
  grpc::ClientContext own_context;
  if (context == nullptr) context = &own_context;
  ConverseResult result;
  auto stream = stub.Converse(context);
  std::thread reader([&] {
    v1::ConverseResponse response;
    while (stream->Read(&response)) {
      if (response.has_opened()) {
        result.session_id = response.opened().session_id();
      } else if (response.has_answer()) {
        result.answers.push_back(response.answer());
      } else if (response.has_progress()) {
        result.progress.push_back(response.progress());
      } else if (response.has_snapshot()) {
        result.snapshots.push_back(response.snapshot().data());
      }
    }
  });
  for (const auto& request : requests) {
    if (!stream->Write(request)) break;
  }
  stream->WritesDone();
  reader.join();
  result.status = stream->Finish();
  return result;
}

inline v1::ConverseRequest OpenRequest(bool keep_alive = false,
                                       const std::string& session_id = "") {
  v1::ConverseRequest request;
  request.mutable_open()->set_keep_alive(keep_alive);
  request.mutable_open()->set_session_id(session_id);
  return request;
}

inline v1::ConverseRequest TextRequest(const std::string& text) {
  v1::ConverseRequest request;
  request.mutable_chunk()->set_text(text);
  return request;
}

inline v1::ConverseRequest QuestionRequest(const std::string& id,
                                           const std::string& text,
                                           int top_k = 3) {
  v1::ConverseRequest request;
  request.mutable_question()->set_id(id);
  request.mutable_question()->set_text(text);
  request.mutable_question()->set_top_k(top_k);
  return request;
}

// Text requests of `doc` cut into pieces of `piece` bytes (cuts fall inside
// words and UTF-8 characters).
inline std::vector<v1::ConverseRequest> DocumentRequests(const std::string& doc,
                                                         size_t piece) {
  std::vector<v1::ConverseRequest> requests;
  for (size_t i = 0; i < doc.size(); i += piece) {
    requests.push_back(TextRequest(doc.substr(i, piece)));
  }
  return requests;
}

// A document of `words` pseudo-random words (ASCII and a few accented
// letters, so multi-byte characters get cut).
inline std::string MakeDocument(int seed, int words) {
  static const char* const kWords[] = {
      "mary",    "went",     "to",     "the",    "kitchen",
      "john",    "moved",    "garden", "café",   "naïve",
      "office",  "bathroom", "took",   "apple",  "dropped",
      "hallway", "bedroom",  "sandra", "daniel", "journeyed"};
  std::string doc;
  uint64_t state = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (int i = 0; i < words; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if (!doc.empty()) doc += (i % 9 == 0) ? ". " : " ";
    doc += kWords[state % 20];
  }
  return doc + ".";
}

inline void ExpectSameAnswer(const v1::Answer& served, const Answer& direct) {
  ASSERT_EQ(served.top_k_size(), static_cast<int>(direct.top_k.size()));
  for (int i = 0; i < served.top_k_size(); ++i) {
    EXPECT_EQ(served.top_k(i).label(), direct.top_k[i].label) << "rank " << i;
    EXPECT_NEAR(served.top_k(i).score(), direct.top_k[i].score, 1e-4)
        << "rank " << i;
  }
  EXPECT_EQ(served.label(), direct.top_k[0].label);
}

}  // namespace rmt::server::testing

#endif  // RMT_TESTS_SERVER_TEST_UTIL_H_
