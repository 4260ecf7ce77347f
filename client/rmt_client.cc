// rmt-client: command-line client of rmt-server.
//
//   rmt-client ask --doc story.txt --question "Where is Mary?" [--question ..]
//   rmt-client health | info | session SESSION | close SESSION
//   rmt-client export SESSION > snap.bin ; rmt-client import < snap.bin
//
// `ask` streams the file in chunks through a Converse stream, shows a
// progress bar on stderr (tokens, segments, tokens/s) and prints the answers
// (--json for machine-readable output). When the stream breaks because its
// replica is lost, it reconnects with the session id and resends the
// document from where the restored session stands (client/resumable_ask.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/client_common.h"
#include "client/resumable_ask.h"
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
ABSL_FLAG(bool, progress, true,
          "ask: progress on stderr: a bar on a terminal, and a line for the "
          "session and for every broken stream and resume.");
ABSL_FLAG(std::string, session, "",
          "ask: continue this session (kept with --keep_alive) instead of "
          "opening a new one; --doc is then what follows what it holds, and "
          "may be left out to only ask.");
ABSL_FLAG(bool, keep_alive, false,
          "ask: keep the session open at the end (it is closed otherwise).");
ABSL_FLAG(int, max_resumes, 8,
          "ask: tries to reconnect after a broken stream (UNAVAILABLE: the "
          "replica was lost or is draining) before giving up.");

namespace rmt::client {
namespace {

using nlohmann::json;

int Fail(const std::string& what, const grpc::Status& status) {
  std::cerr << "rmt-client: " << what << ": "
            << static_cast<int>(status.error_code()) << " "
            << status.error_message() << "\n";
  return 1;
}

// Draws the progress bar (on a terminal) and reports breaks and resumes.
class ProgressPrinter final : public AskObserver {
 public:
  ProgressPrinter(double total_bytes, bool bar, bool events)
      : total_bytes_(total_bytes), bar_(bar), events_(events) {}

  void OnOpened(const std::string& session_id) override {
    if (session_id_ == session_id) return;
    session_id_ = session_id;
    Line(absl::StrFormat("session %s", session_id));
  }
  void OnProgress(const v1::Progress& progress) override {
    if (!bar_) return;
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    const double done =
        total_bytes_ > 0 ? progress.bytes_received() / total_bytes_ : 1;
    const int width = 30;
    const int filled = std::clamp(static_cast<int>(done * width), 0, width);
    std::fprintf(stderr,
                 "\r[%s%s] %3.0f%%  %lld tokens  %lld segments  %.0f "
                 "tokens/s ",
                 std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done * 100,
                 static_cast<long long>(progress.tokens_received()),
                 static_cast<long long>(progress.segments_processed()),
                 seconds > 0 ? progress.tokens_received() / seconds : 0.0);
    drawn_ = true;
  }
  void OnBroken(const grpc::Status& status, absl::Duration backoff) override {
    Line(absl::StrFormat("stream broke (%s: %s); reconnecting in %s",
                         CodeName(status.error_code()), status.error_message(),
                         absl::FormatDuration(backoff)));
  }
  void OnResumed(const ResumeEvent& event) override {
    const double seconds =
        absl::ToDoubleSeconds(event.resumed_at - event.broken_at);
    if (event.started_over) {
      Line(absl::StrFormat(
          "the session was lost before its first checkpoint: started over "
          "with a new one %.2f s after the break",
          seconds));
      return;
    }
    Line(absl::StrFormat(
        "resumed %.2f s after the break: the session holds %lld bytes "
        "(%lld tokens, %lld segments); resending %lld bytes",
        seconds, static_cast<long long>(event.restored.bytes_received()),
        static_cast<long long>(event.restored.tokens_received()),
        static_cast<long long>(event.restored.segments_processed()),
        static_cast<long long>(total_bytes_ - event.resent_from)));
  }
  void Finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }
  void Line(const std::string& text) {
    if (!events_) return;
    Finish();
    std::fprintf(stderr, "rmt-client: %s\n", text.c_str());
  }

  const double total_bytes_;
  const bool bar_;
  const bool events_;
  const absl::Time start_ = absl::Now();
  std::string session_id_;
  bool drawn_ = false;
};

json ResumesJson(const std::vector<ResumeEvent>& resumes) {
  json out = json::array();
  for (const ResumeEvent& event : resumes) {
    out.push_back(
        {{"code", static_cast<int>(event.broken.error_code())},
         {"message", event.broken.error_message()},
         {"broken_at_unix", absl::ToUnixMicros(event.broken_at) / 1e6},
         {"resumed_at_unix", absl::ToUnixMicros(event.resumed_at) / 1e6},
         {"bytes_sent", event.bytes_sent},
         {"tokens_reported", event.tokens_reported},
         {"segments_reported", event.segments_reported},
         {"started_over", event.started_over},
         {"resent_from", event.resent_from},
         {"restored_bytes", event.restored.bytes_received()},
         {"restored_tokens", event.restored.tokens_received()},
         {"restored_segments", event.restored.segments_processed()}});
  }
  return out;
}

int Ask(v1::MemoryQA::Stub& stub, const ChannelOptions& channel,
        const std::vector<std::string>& questions) {
  const std::string path = absl::GetFlag(FLAGS_doc);
  const std::string session = absl::GetFlag(FLAGS_session);
  if ((path.empty() && session.empty()) || questions.empty()) {
    std::cerr << "rmt-client ask: needs --doc FILE (or --session ID) and at "
                 "least one --question\n";
    return 2;
  }
  // Read whole (documents are text, small beside the tokens they become)
  // and sent in --chunk_bytes pieces.
  const absl::StatusOr<std::string> doc =
      path.empty() ? std::string() : ReadFileToString(path);
  if (!doc.ok()) {
    std::cerr << "rmt-client ask: " << doc.status() << "\n";
    return 2;
  }
  AskOptions options;
  options.session_id = session;
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.chunk_bytes =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_chunk_bytes)));
  options.keep_session = absl::GetFlag(FLAGS_keep_alive);
  options.max_resumes = std::max(0, absl::GetFlag(FLAGS_max_resumes));
  const bool progress = absl::GetFlag(FLAGS_progress);
  ProgressPrinter printer(static_cast<double>(doc->size()),
                          progress && isatty(2), progress);
  const absl::Time start = absl::Now();
  const AskResult result =
      ResumableAsk(stub, channel, *doc, questions, options, &printer);
  printer.Finish();
  if (!result.status.ok()) return Fail("ask", result.status);
  if (!result.close_status.ok()) {
    std::cerr << "rmt-client: warning: could not close session "
              << result.session_id << ": "
              << result.close_status.error_message() << "\n";
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (absl::GetFlag(FLAGS_json)) {
    json out = {{"session_id", result.session_id},
                {"tokens", result.progress.tokens_received()},
                {"segments", result.progress.segments_processed()},
                {"seconds", seconds},
                {"resumes", ResumesJson(result.resumes)},
                {"answers", json::array()}};
    for (size_t i = 0; i < result.answers.size(); ++i) {
      const v1::Answer& answer = result.answers[i];
      json top = json::array();
      for (const auto& scored : answer.top_k()) {
        top.push_back({{"label", scored.label()}, {"score", scored.score()}});
      }
      out["answers"].push_back({{"question", questions[i]},
                                {"label", answer.label()},
                                {"score", answer.score()},
                                {"segments_seen", answer.segments_seen()},
                                {"top_k", top}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cerr << absl::StrFormat("%d tokens, %d segments in %.2f s\n",
                               result.progress.tokens_received(),
                               result.progress.segments_processed(), seconds);
  for (size_t i = 0; i < result.answers.size(); ++i) {
    const v1::Answer& answer = result.answers[i];
    std::cout << "Q: " << questions[i] << "\n"
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
  // Calls that name a session also say so in x-session-id, for a load
  // balancer that routes on it.
  if (args.size() == 1) context.AddMetadata("x-session-id", args[0]);
  if (command == "session" && args.size() == 1) {
    v1::GetSessionRequest request;
    request.set_session_id(args[0]);
    v1::SessionInfo info;
    grpc::Status status = stub->GetSession(&context, request, &info);
    if (!status.ok()) return Fail("session", status);
    const v1::Progress& progress = info.progress();
    std::cout << (as_json
                      ? json({{"session_id", info.session_id()},
                              {"tokens", progress.tokens_received()},
                              {"bytes", progress.bytes_received()},
                              {"segments", progress.segments_processed()},
                              {"segments_pending", progress.segments_pending()},
                              {"failure", info.failure()}})
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
  std::cerr << "usage: rmt-client ask|health|info|session SESSION|"
               "export SESSION|import|close SESSION [flags]\n";
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
        "rmt-client health | info | session SESSION | export SESSION | "
        "import | close SESSION");
    if (positional.size() < 2) {
      std::cerr << "usage: rmt-client "
                   "ask|health|info|session|export|import|close\n";
      return 2;
    }
    std::vector<std::string> args(positional.begin() + 2, positional.end());
    return rmt::client::Run(positional[1], args, questions);
  });
}
