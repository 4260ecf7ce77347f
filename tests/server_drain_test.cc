// rmt-server as a process: SIGTERM drains (health NOT_SERVING while the
// listener stays open, a stream in flight finishes with its answer, new
// sessions are refused) and the process exits 0; --help lists the flags;
// bad flags and bad models end with a message, never an abort.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

#include "tests/server_test_util.h"

namespace rmt::server::testing {
namespace {

TEST(ServerDrainTest, SigtermFinishesStreamsInFlightAndExitsZero) {
  const std::string dir = TinyModelDir(/*seed=*/11);
  int err_pipe[2];
  ASSERT_EQ(pipe(err_pipe), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(err_pipe[1], 2);
    close(err_pipe[0]);
    execl(RMT_SERVER_BINARY, RMT_SERVER_BINARY, ("--model=" + dir).c_str(),
          "--listen=127.0.0.1:0", "--metrics_listen=", "--device=cpu",
          "--drain_grace=20s", "--intra_op_threads=1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err_pipe[1]);
  FILE* log = fdopen(err_pipe[0], "r");
  // The port is in the server_started line.
  int port = 0;
  std::string lines;
  char line[4096];
  while (port == 0 && fgets(line, sizeof(line), log) != nullptr) {
    lines += line;
    std::cmatch match;
    if (std::regex_search(
            line, match, std::regex("event=server_started .* port=([0-9]+)"))) {
      port = std::stoi(match[1]);
    }
  }
  ASSERT_GT(port, 0) << lines;
  // Keep draining the log so the server never blocks on a full pipe.
  std::thread drain_log([log] {
    char buffer[4096];
    while (fgets(buffer, sizeof(buffer), log) != nullptr) {
    }
    fclose(log);
  });

  auto stub = StubFor(port);
  grpc::ClientContext context;
  auto stream = stub->Converse(&context);
  ASSERT_TRUE(stream->Write(OpenRequest()));
  v1::ConverseResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_opened());
  const std::string doc = MakeDocument(7, 60);
  ASSERT_TRUE(stream->Write(TextRequest(doc)));

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  // The listener stays open: health checks see NOT_SERVING (never
  // "connection refused"), new sessions are refused, and the stream in
  // flight goes on.
  EXPECT_EQ(AwaitNotServing(port),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  {
    grpc::ClientContext create_context;
    v1::CreateSessionResponse created;
    EXPECT_EQ(stub->CreateSession(&create_context, {}, &created).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }

  ASSERT_TRUE(stream->Write(QuestionRequest("q", "where is mary?")));
  stream->WritesDone();
  int answers = 0;
  while (stream->Read(&response)) answers += response.has_answer() ? 1 : 0;
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answers, 1);

  int wait_status = 0;
  ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
  drain_log.join();
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0);
  std::filesystem::remove_all(dir);
}

// Runs rmt-server with `args`; its exit status and everything it printed.
std::pair<int, std::string> RunServer(const std::string& args) {
  const std::string command =
      std::string(RMT_SERVER_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  size_t read;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, read);
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
          output};
}

TEST(ServerCommandLineTest, HelpListsTheServersFlags) {
  auto [code, output] = RunServer("--help");
  EXPECT_EQ(code, 1);  // abseil's exit status for --help
  EXPECT_EQ(output.find("No flags matched"), std::string::npos) << output;
  for (const char* flag :
       {"--max_pending_segments", "--session_idle_ttl", "--max_top_k",
        "--default_top_k", "--max_chunk_tokens", "--drain_grace"}) {
    EXPECT_NE(output.find(flag), std::string::npos) << flag << "\n" << output;
  }
}

TEST(ServerCommandLineTest, BadFlagValuesAreRefusedNotClamped) {
  for (const char* args :
       {"--max_batch=0", "--max_sessions=4 --device_sessions=8",
        "--max_pending_segments=0", "--default_top_k=200",
        "--session_idle_ttl=0s"}) {
    auto [code, output] =
        RunServer(std::string(args) + " --listen=127.0.0.1:0");
    EXPECT_EQ(code, 2) << args << "\n" << output;
    EXPECT_NE(output.find("invalid"), std::string::npos) << output;
  }
}

// A hardening defect: a config with a huge dimension aborted the process
// (exit 134) while loading.
TEST(ServerCommandLineTest, AHugeModelDimensionIsRefusedWithAMessage) {
  const std::string dir = TinyModelDir(/*seed=*/12);
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  std::string config((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
  const std::regex hidden("\"hidden_size\": *[0-9]+");
  std::ofstream(path) << std::regex_replace(config, hidden,
                                            "\"hidden_size\": 1099511627776");
  auto [code, output] =
      RunServer("--model=" + dir + " --listen=127.0.0.1:0 --metrics_listen=");
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("hidden_size"), std::string::npos) << output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmt::server::testing
