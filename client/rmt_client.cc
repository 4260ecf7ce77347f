// rmt-client: command-line client of rmt-server.
//
//   rmt-client ask --doc story.txt --question "Where is Mary?" [--question ..]
//   rmt-client health | info | close SESSION
//   rmt-client export SESSION > snap.bin ; rmt-client import < snap.bin
//
// `ask` streams the file in chunks through one Converse stream, shows a
// progress bar on stderr (tokens, segments, tokens/s) and prints the answers
// (--json for machine-readable output).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "client/client_common.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "model/file_util.h"
#include "model/guarded_main.h"
#include "rmt/v1/memory_qa.grpc.pb.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::string, server, "localhost:50051", "rmt-server address.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM root certificates (TLS); empty: plaintext.");
ABSL_FLAG(std::string, token, "", "Bearer token (or $RMT_TOKEN).");
ABSL_FLAG(std::string, doc, "", "ask: the document (UTF-8 text file).");
ABSL_FLAG(int, top_k, 3, "ask: labels per answer.");
ABSL_FLAG(int, chunk_bytes, 16 * 1024, "ask: bytes per chunk.");
ABSL_FLAG(bool, json, false, "Print JSON on stdout.");
ABSL_FLAG(bool, progress, true, "ask: progress bar on stderr (when a tty).");
ABSL_FLAG(bool, keep_alive, false, "ask: keep the session after the stream.");

namespace rmt::client {
namespace {

using nlohmann::json;

int Fail(const std::string& what, const grpc::Status& status) {
  std::cerr << "rmt-client: " << what << ": "
            << static_cast<int>(status.error_code()) << " "
            << status.error_message() << "\n";
  return 1;
}

int Ask(v1::MemoryQA::Stub& stub, const ChannelOptions& channel,
        const std::vector<std::string>& questions) {
  const std::string path = absl::GetFlag(FLAGS_doc);
  if (path.empty() || questions.empty()) {
    std::cerr << "rmt-client ask: needs --doc FILE and at least one "
                 "--question\n";
    return 2;
  }
  // Read whole (documents are text, small beside the tokens they become)
  // and sent in --chunk_bytes pieces.
  const absl::StatusOr<std::string> doc = ReadFileToString(path);
  if (!doc.ok()) {
    std::cerr << "rmt-client ask: " << doc.status() << "\n";
    return 2;
  }
  const double total_bytes = static_cast<double>(doc->size());
  grpc::ClientContext context;
  Authorize(channel, &context);
  auto stream = stub.Converse(&context);
  const bool bar = absl::GetFlag(FLAGS_progress) && isatty(2);
  const auto start = std::chrono::steady_clock::now();
  std::vector<v1::Answer> answers;
  v1::Progress last;
  std::string session_id;
  double sent_bytes = 0;
  std::thread reader([&] {
    v1::ConverseResponse response;
    while (stream->Read(&response)) {
      if (response.has_opened()) {
        session_id = response.opened().session_id();
      } else if (response.has_answer()) {
        answers.push_back(response.answer());
      } else if (response.has_progress()) {
        last = response.progress();
        if (bar) {
          const double seconds = std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - start)
                                     .count();
          const double done = total_bytes > 0 ? sent_bytes / total_bytes : 1;
          const int width = 30;
          const int filled = static_cast<int>(done * width);
          std::fprintf(stderr,
                       "\r[%s%s] %3.0f%%  %lld tokens  %lld segments  %.0f "
                       "tokens/s ",
                       std::string(filled, '#').c_str(),
                       std::string(width - filled, '.').c_str(), done * 100,
                       static_cast<long long>(last.tokens_received()),
                       static_cast<long long>(last.segments_processed()),
                       seconds > 0 ? last.tokens_received() / seconds : 0.0);
        }
      }
    }
  });
  v1::ConverseRequest request;
  request.mutable_open()->set_keep_alive(absl::GetFlag(FLAGS_keep_alive));
  request.mutable_open()->set_top_k(absl::GetFlag(FLAGS_top_k));
  bool ok = stream->Write(request);
  const size_t chunk_bytes = std::max(1, absl::GetFlag(FLAGS_chunk_bytes));
  for (size_t offset = 0; ok && offset < doc->size(); offset += chunk_bytes) {
    const size_t length = std::min(chunk_bytes, doc->size() - offset);
    request.Clear();
    request.mutable_chunk()->set_text(doc->data() + offset, length);
    ok = stream->Write(request);
    sent_bytes += static_cast<double>(length);
  }
  for (size_t i = 0; ok && i < questions.size(); ++i) {
    request.Clear();
    request.mutable_question()->set_id(std::to_string(i));
    request.mutable_question()->set_text(questions[i]);
    ok = stream->Write(request);
  }
  stream->WritesDone();
  reader.join();
  const grpc::Status status = stream->Finish();
  if (bar) std::fprintf(stderr, "\n");
  if (!status.ok()) return Fail("ask", status);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (absl::GetFlag(FLAGS_json)) {
    json out = {{"session_id", session_id},
                {"tokens", last.tokens_received()},
                {"segments", last.segments_processed()},
                {"seconds", seconds},
                {"answers", json::array()}};
    for (const auto& answer : answers) {
      json top = json::array();
      for (const auto& scored : answer.top_k()) {
        top.push_back({{"label", scored.label()}, {"score", scored.score()}});
      }
      out["answers"].push_back(
          {{"question", questions[std::stoul(answer.question_id())]},
           {"label", answer.label()},
           {"score", answer.score()},
           {"segments_seen", answer.segments_seen()},
           {"top_k", top}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cerr << absl::StrFormat("%d tokens, %d segments in %.2f s\n",
                               last.tokens_received(),
                               last.segments_processed(), seconds);
  for (const auto& answer : answers) {
    std::cout << "Q: " << questions[std::stoul(answer.question_id())] << "\n"
              << "A: " << answer.label() << "\n";
    for (const auto& scored : answer.top_k()) {
      std::cout << absl::StrFormat("   %-20s %.4f\n", scored.label(),
                                   scored.score());
    }
  }
  return 0;
}

int Run(const std::string& command, const std::vector<std::string>& args,
        const std::vector<std::string>& questions) {
  ChannelOptions channel;
  channel.server = absl::GetFlag(FLAGS_server);
  if (absl::Status tls = LoadTlsRoots(absl::GetFlag(FLAGS_tls_ca), &channel);
      !tls.ok()) {
    std::cerr << "rmt-client: " << tls << "\n";
    return 2;
  }
  channel.token = absl::GetFlag(FLAGS_token);
  if (channel.token.empty() && std::getenv("RMT_TOKEN") != nullptr) {
    channel.token = std::getenv("RMT_TOKEN");
  }
  auto grpc_channel = MakeChannel(channel);
  auto stub = v1::MemoryQA::NewStub(grpc_channel);
  const bool as_json = absl::GetFlag(FLAGS_json);
  if (command == "ask") return Ask(*stub, channel, questions);
  grpc::ClientContext context;
  Authorize(channel, &context);
  if (command == "health") {
    auto health = grpc::health::v1::Health::NewStub(grpc_channel);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, {}, &response);
    if (!status.ok()) return Fail("health", status);
    const std::string name =
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
            response.status());
    std::cout << (as_json ? json({{"status", name}}).dump() : name) << "\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
               ? 0
               : 1;
  }
  if (command == "info") {
    v1::ModelInfo info;
    grpc::Status status = stub->GetModelInfo(&context, {}, &info);
    if (!status.ok()) return Fail("info", status);
    std::cout << (as_json ? json({{"name", info.name()},
                                  {"fingerprint", info.fingerprint()},
                                  {"segment_size", info.segment_size()},
                                  {"num_mem_tokens", info.num_mem_tokens()},
                                  {"untrained", info.untrained()},
                                  {"device", info.device()},
                                  {"labels", std::vector<std::string>(
                                                 info.labels().begin(),
                                                 info.labels().end())}})
                                .dump(2)
                          : info.DebugString())
              << "\n";
    return 0;
  }
  if (command == "export" && args.size() == 1) {
    v1::ExportSessionRequest request;
    request.set_session_id(args[0]);
    v1::ExportSessionResponse response;
    grpc::Status status = stub->ExportSession(&context, request, &response);
    if (!status.ok()) return Fail("export", status);
    std::cout << response.snapshot().data();
    return 0;
  }
  if (command == "import") {
    v1::ImportSessionRequest request;
    request.set_snapshot(std::string(std::istreambuf_iterator<char>(std::cin),
                                     std::istreambuf_iterator<char>()));
    v1::CreateSessionResponse response;
    grpc::Status status = stub->ImportSession(&context, request, &response);
    if (!status.ok()) return Fail("import", status);
    std::cout << response.session_id() << "\n";
    return 0;
  }
  if (command == "close" && args.size() == 1) {
    v1::CloseSessionRequest request;
    request.set_session_id(args[0]);
    v1::CloseSessionResponse response;
    grpc::Status status = stub->CloseSession(&context, request, &response);
    if (!status.ok()) return Fail("close", status);
    return 0;
  }
  std::cerr << "usage: rmt-client ask|health|info|export SESSION|import|"
               "close SESSION [flags]\n";
  return 2;
}

}  // namespace
}  // namespace rmt::client

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-client", [&] {
    // --question may repeat; absl flags keep only the last, so take them here.
    std::vector<std::string> questions;
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--question" && i + 1 < argc) {
        questions.push_back(argv[++i]);
      } else if (arg.rfind("--question=", 0) == 0) {
        questions.push_back(arg.substr(11));
      } else {
        rest.push_back(argv[i]);
      }
    }
    std::vector<char*> positional = rmt::ParseProgramFlags(
        static_cast<int>(rest.size()), rest.data(),
        "rmt-client ask --doc FILE --question \"...\" [--question ...]\n"
        "rmt-client health | info | export SESSION | import | close SESSION");
    if (positional.size() < 2) {
      std::cerr << "usage: rmt-client ask|health|info|export|import|close\n";
      return 2;
    }
    std::vector<std::string> args(positional.begin() + 2, positional.end());
    return rmt::client::Run(positional[1], args, questions);
  });
}
