#include "server/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rmt::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A bound on every blocking call below, so that a broken endpoint fails the
// test instead of hanging it. Passing tests never come near it.
constexpr int kGuardSeconds = 10;

const char kScrape[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

// A socket connected to 127.0.0.1:port whose reads give up after the guard.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  timeval guard{kGuardSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  return fd;
}

void Send(int fd, const std::string& data) {
  EXPECT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(data.size()));
}

// Everything the server sends until it closes; "<timed out>" appended if
// the guard ran out first.
std::string ReadToEnd(int fd) {
  std::string reply;
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      reply.append(buffer, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        reply += "<timed out>";
      }
      return reply;
    }
  }
}

// Sends `request` on a fresh connection and returns the whole reply. With
// `half_close` our side is shut down after the request, so the server sees
// its end at once instead of waiting for more.
std::string Exchange(int port, const std::string& request,
                     bool half_close = false) {
  const int fd = Connect(port);
  Send(fd, request);
  if (half_close) shutdown(fd, SHUT_WR);
  std::string reply = ReadToEnd(fd);
  close(fd);
  return reply;
}

TEST(MetricsEndpointTest, ServesMetricsAndRefusesEverythingElse) {
  std::atomic<int> renders{0};
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", [&] {
    ++renders;
    return std::string("# TYPE up gauge\nup 1\n");
  });
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  ASSERT_GT(port, 0);

  const std::string ok = Exchange(port, kScrape);
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(ok, HasSubstr("Content-Length: 21\r\n"));
  EXPECT_THAT(ok, HasSubstr("\r\n\r\n# TYPE up gauge\nup 1\n"));
  EXPECT_EQ(renders.load(), 1);

  const std::string head = Exchange(port, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");  // no body

  EXPECT_THAT(Exchange(port, "GET / HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Exchange(port, "POST /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Exchange(port, "garbage", /*half_close=*/true),
              StartsWith("HTTP/1.1 400"));
  // A request line cut short by the client's end of stream still counts.
  EXPECT_THAT(Exchange(port, "GET /metrics HTTP/1.1\r\n", /*half_close=*/true),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(renders.load(), 3);
}

TEST(MetricsEndpointTest, RefusesOversizedHeaders) {
  MetricsEndpointOptions options;
  options.max_request_bytes = 1024;
  auto endpoint = MetricsEndpoint::Start(
      "127.0.0.1:0", [] { return std::string("up 1\n"); }, options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const std::string request =
      "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(2000, 'a');
  EXPECT_THAT(Exchange((*endpoint)->port(), request),
              StartsWith("HTTP/1.1 431"));
}

TEST(MetricsEndpointTest, RefusesBadAddressesOptionsAndBusyPorts) {
  auto render = [] { return std::string(); };
  EXPECT_EQ(MetricsEndpoint::Start("no-port", render).status().code(),
            absl::StatusCode::kInvalidArgument);
  MetricsEndpointOptions no_deadline;
  no_deadline.client_deadline = absl::ZeroDuration();
  EXPECT_EQ(MetricsEndpoint::Start("127.0.0.1:0", render, no_deadline)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto first = MetricsEndpoint::Start("127.0.0.1:0", render);
  ASSERT_TRUE(first.ok());
  auto second = MetricsEndpoint::Start(
      "127.0.0.1:" + std::to_string((*first)->port()), render);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

// The deadline is far beyond the guard: only serving connections side by
// side lets the scrape through.
MetricsEndpointOptions PatientOptions() {
  MetricsEndpointOptions options;
  options.client_deadline = absl::Hours(1);
  return options;
}

TEST(MetricsEndpointTest, SilentConnectionsDoNotDelayAScrape) {
  auto endpoint = MetricsEndpoint::Start(
      "127.0.0.1:0", [] { return std::string("up 1\n"); }, PatientOptions());
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  std::vector<int> silent;
  for (int i = 0; i < 6; ++i) silent.push_back(Connect(port));

  EXPECT_THAT(Exchange(port, kScrape), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(Exchange(port, kScrape), StartsWith("HTTP/1.1 200 OK\r\n"));
  for (int fd : silent) close(fd);
}

TEST(MetricsEndpointTest, SlowClientDoesNotBlockScrapes) {
  auto endpoint = MetricsEndpoint::Start(
      "127.0.0.1:0", [] { return std::string("up 1\n"); }, PatientOptions());
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  // The slow client sends its request a byte at a time, a whole scrape
  // served between any two of its bytes; then it gets its own reply.
  const int slow = Connect(port);
  const std::string request = kScrape;
  for (char byte : request) {
    Send(slow, std::string(1, byte));
    ASSERT_THAT(Exchange(port, kScrape), StartsWith("HTTP/1.1 200 OK\r\n"));
  }
  EXPECT_THAT(ReadToEnd(slow), StartsWith("HTTP/1.1 200 OK\r\n"));
  close(slow);
}

// Waits for the server to close `fd`; true if it did within the guard.
bool WaitForClose(int fd) {
  const std::string rest = ReadToEnd(fd);
  return rest.find("<timed out>") == std::string::npos;
}

TEST(MetricsEndpointTest, DeadlineCoversTheWholeRequest) {
  MetricsEndpointOptions options;
  options.client_deadline = absl::Milliseconds(200);
  auto endpoint = MetricsEndpoint::Start(
      "127.0.0.1:0", [] { return std::string("up 1\n"); }, options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();

  const int silent = Connect(port);
  EXPECT_TRUE(WaitForClose(silent));
  close(silent);

  // A byte every 20 ms would keep a per-read timeout of 200 ms from ever
  // firing; the deadline on the whole exchange still closes the socket. The
  // request is far longer than the deadline allows at this pace.
  const int trickle = Connect(port);
  bool closed = false;
  for (int i = 0; i < kGuardSeconds * 50 && !closed; ++i) {
    if (send(trickle, "x", 1, MSG_NOSIGNAL) != 1) {
      closed = true;  // reset: the server closed on unread bytes
      break;
    }
    pollfd event{trickle, POLLIN, 0};
    if (poll(&event, 1, /*timeout_ms=*/20) > 0) {
      char byte;
      const ssize_t n = recv(trickle, &byte, 1, 0);
      closed = n == 0 || (n < 0 && errno == ECONNRESET);
    }
  }
  EXPECT_TRUE(closed);
  close(trickle);

  EXPECT_THAT(Exchange(port, kScrape), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(MetricsEndpointTest, DropsTheOldestIdleConnectionPastTheCap) {
  MetricsEndpointOptions options = PatientOptions();
  options.max_connections = 4;
  auto endpoint = MetricsEndpoint::Start(
      "127.0.0.1:0", [] { return std::string("up 1\n"); }, options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  std::vector<int> silent;
  for (int i = 0; i < 4; ++i) silent.push_back(Connect(port));
  // Accepting the scrape's connection makes five: the first silent one goes.
  EXPECT_THAT(Exchange(port, kScrape), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(WaitForClose(silent[0]));
  // The others remain: a request on the last one is still answered.
  Send(silent[3], kScrape);
  EXPECT_THAT(ReadToEnd(silent[3]), StartsWith("HTTP/1.1 200 OK\r\n"));
  for (int fd : silent) close(fd);
}

}  // namespace
}  // namespace rmt::server
