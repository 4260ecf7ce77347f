// rmt-server as a process: SIGTERM drains (a stream in flight finishes with
// its answer, new sessions are refused) and the process exits 0.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include <gtest/gtest.h>

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
    if (std::regex_search(line, match,
                          std::regex("event=server_started .* port=([0-9]+)"))) {
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
  // New sessions are refused while the stream in flight goes on.
  bool refused = false;
  for (int attempt = 0; attempt < 100 && !refused; ++attempt) {
    grpc::ClientContext create_context;
    create_context.set_deadline(std::chrono::system_clock::now() +
                                std::chrono::seconds(2));
    v1::CreateSessionResponse created;
    refused = stub->CreateSession(&create_context, {}, &created).error_code() ==
              grpc::StatusCode::UNAVAILABLE;
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(refused);

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

}  // namespace
}  // namespace rmt::server::testing
