#include "server/metrics_endpoint.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rmt::server {
namespace {

// glibc carves a thread's static TLS out of its stack, and this process's is
// large (see the header), so the serving thread's stack size is set rather
// than left to whatever the environment gives. 8 MiB is glibc's usual
// default; pages are touched lazily, so the size costs address space only.
constexpr size_t kThreadStackBytes = size_t{8} << 20;
// Out of file descriptors: wait this long before accepting again rather
// than spin on a listening socket that stays readable.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr size_t kReadChunk = 4096;

using Clock = std::chrono::steady_clock;

struct HostPort {
  std::string host;
  std::string port;
};

absl::StatusOr<HostPort> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address,
                     "' is not host:port (e.g. 0.0.0.0:9464)"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return HostPort{host, address.substr(colon + 1)};
}

// A non-blocking listening socket on `address`; sets `*port` to its port.
absl::StatusOr<int> Listen(const std::string& address, int* port) {
  auto host_port = SplitAddress(address);
  if (!host_port.ok()) return host_port.status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc =
      getaddrinfo(host_port->host.empty() ? nullptr : host_port->host.c_str(),
                  host_port->port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "': ", gai_strerror(rc)));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", error));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  *port = ntohs(bound.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

std::string Reply(absl::string_view status, absl::string_view content_type,
                  const std::string& body, bool with_body) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", with_body ? body : "");
}

// The reply to `request`: its headers complete, or all the client sent
// before closing its side, or `max_bytes` or more without an end of headers.
std::string Respond(const std::string& request, size_t max_bytes,
                    const std::function<std::string()>& render) {
  if (request.find("\r\n\r\n") == std::string::npos &&
      request.size() >= max_bytes) {
    return Reply("431 Request Header Fields Too Large", "text/plain",
                 "request headers too large\n", true);
  }
  const size_t line_end = request.find("\r\n");
  if (line_end == std::string::npos) {
    return Reply("400 Bad Request", "text/plain", "bad request\n", true);
  }
  const absl::string_view line(request.data(), line_end);
  const bool head = absl::StartsWith(line, "HEAD ");
  if (!head && !absl::StartsWith(line, "GET ")) {
    return Reply("405 Method Not Allowed", "text/plain", "only GET and HEAD\n",
                 true);
  }
  const size_t path_start = line.find(' ') + 1;
  const size_t path_end = line.find_first_of(" ?", path_start);
  const absl::string_view path = line.substr(
      path_start, path_end == absl::string_view::npos ? absl::string_view::npos
                                                      : path_end - path_start);
  if (path != "/metrics") {
    return Reply("404 Not Found", "text/plain", "metrics are at /metrics\n",
                 !head);
  }
  return Reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(),
               !head);
}

// One client's single exchange. Reading ends with the headers, the client's
// end of stream or the size cap; writing ends with the last byte sent. Then
// our side is shut down and the connection drains (reads and discards) until
// the client closes: closing a socket with unread input sends a reset,
// which can destroy the reply before the client has read it.
struct Connection {
  enum class Phase { kReading, kWriting, kDraining };

  Connection(int fd, Clock::time_point deadline) : fd(fd), deadline(deadline) {}

  int fd;
  Clock::time_point deadline;
  Phase phase = Phase::kReading;
  std::string request;
  std::string reply;
  size_t sent = 0;
};

enum class Progress { kOpen, kClosed };

// Reads what the socket holds. kClosed on an error; on the client's end of
// stream while reading, the request is complete with what came.
Progress ReadRequest(Connection& c, size_t max_bytes, bool* complete) {
  char buffer[kReadChunk];
  while (true) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Progress::kOpen;
      return Progress::kClosed;
    }
    if (n == 0) {
      *complete = true;
      return Progress::kOpen;
    }
    // The end of headers may straddle two reads.
    const size_t search_from = c.request.size() < 3 ? 0 : c.request.size() - 3;
    c.request.append(buffer, static_cast<size_t>(n));
    if (c.request.find("\r\n\r\n", search_from) != std::string::npos ||
        c.request.size() >= max_bytes) {
      *complete = true;
      return Progress::kOpen;
    }
  }
}

// Sends what the socket takes; once all is sent, shuts down our side and
// moves to draining.
Progress WriteReply(Connection& c) {
  while (c.sent < c.reply.size()) {
    const ssize_t n = send(c.fd, c.reply.data() + c.sent,
                           c.reply.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Progress::kOpen;
      return Progress::kClosed;  // the scraper went away
    }
    c.sent += static_cast<size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  c.phase = Connection::Phase::kDraining;
  std::string().swap(c.request);
  std::string().swap(c.reply);
  return Progress::kOpen;
}

// Discards input until the client closes (kClosed) or the socket is empty.
Progress Drain(Connection& c) {
  char buffer[kReadChunk];
  while (true) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Progress::kOpen;
    }
    return Progress::kClosed;
  }
}

short PollEvents(const Connection& c) {
  return c.phase == Connection::Phase::kWriting ? POLLOUT : POLLIN;
}

// Milliseconds from `now` to `until`, rounded up so that poll does not wake
// just before a deadline and spin.
int MillisUntil(Clock::time_point now, Clock::time_point until) {
  if (until <= now) return 0;
  const auto ms =
      std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  return static_cast<int>(std::min<int64_t>(ms, 60 * 1000));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, std::function<std::string()> render,
    MetricsEndpointOptions options) {
  if (options.client_deadline <= absl::ZeroDuration() ||
      options.max_connections < 1 || options.max_request_bytes < 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics endpoint options: client_deadline (",
        absl::FormatDuration(options.client_deadline),
        ") must be positive, max_connections (", options.max_connections,
        ") at least 1, max_request_bytes (", options.max_request_bytes,
        ") at least 16"));
  }
  int port = 0;
  auto fd = Listen(address, &port);
  if (!fd.ok()) return fd.status();
  const int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    close(*fd);
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(
      new MetricsEndpoint(*fd, wake, port, std::move(render), options));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int rc = pthread_attr_setstacksize(&attr, kThreadStackBytes);
  if (rc == 0) {
    rc = pthread_create(&endpoint->thread_, &attr, &MetricsEndpoint::ThreadMain,
                        endpoint.get());
  }
  pthread_attr_destroy(&attr);
  endpoint->started_ = rc == 0;
  if (rc != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the metrics thread: ", std::strerror(rc)));
  }
  return endpoint;
}

MetricsEndpoint::MetricsEndpoint(int listen_fd, int wake_fd, int port,
                                 std::function<std::string()> render,
                                 const MetricsEndpointOptions& options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      render_(std::move(render)),
      options_(options) {}

MetricsEndpoint::~MetricsEndpoint() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (started_) pthread_join(thread_, nullptr);
  close(listen_fd_);
  close(wake_fd_);
}

void* MetricsEndpoint::ThreadMain(void* self) {
  static_cast<MetricsEndpoint*>(self)->Serve();
  return nullptr;
}

void MetricsEndpoint::Serve() {
  const auto deadline = absl::ToChronoNanoseconds(options_.client_deadline);
  const size_t max_connections = static_cast<size_t>(options_.max_connections);
  std::vector<Connection> connections;  // oldest first
  std::vector<pollfd> fds;
  Clock::time_point accept_paused_until{};

  auto drop = [&](size_t i) {
    close(connections[i].fd);
    connections.erase(connections.begin() + static_cast<ptrdiff_t>(i));
  };

  while (true) {
    Clock::time_point now = Clock::now();
    for (size_t i = connections.size(); i-- > 0;) {
      if (connections[i].deadline <= now) drop(i);
    }
    const bool accepting = now >= accept_paused_until;
    int timeout_ms = accepting ? -1 : MillisUntil(now, accept_paused_until);
    // fds: [0] the wake eventfd, [1] the listener, then one per connection.
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    for (const Connection& c : connections) {
      fds.push_back({c.fd, PollEvents(c), 0});
      const int until = MillisUntil(now, c.deadline);
      timeout_ms = timeout_ms < 0 ? until : std::min(timeout_ms, until);
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;

    // Connections first, while fds[i + 2] still lines up with connections[i].
    std::vector<bool> closed(connections.size(), false);
    for (size_t i = 0; i < connections.size(); ++i) {
      if (fds[i + 2].revents == 0) continue;
      Connection& c = connections[i];
      Progress progress = Progress::kOpen;
      if (c.phase == Connection::Phase::kReading) {
        bool complete = false;
        progress = ReadRequest(c, options_.max_request_bytes, &complete);
        if (progress == Progress::kOpen && complete) {
          c.reply = Respond(c.request, options_.max_request_bytes, render_);
          c.phase = Connection::Phase::kWriting;
        }
      }
      // A fresh reply usually fits the socket buffer: try at once.
      if (progress == Progress::kOpen &&
          c.phase == Connection::Phase::kWriting) {
        progress = WriteReply(c);
      } else if (progress == Progress::kOpen &&
                 c.phase == Connection::Phase::kDraining) {
        progress = Drain(c);
      }
      closed[i] = progress == Progress::kClosed;
    }
    for (size_t i = connections.size(); i-- > 0;) {
      if (closed[i]) drop(i);
    }

    if ((fds[1].revents & POLLIN) == 0) continue;
    // Bounded, so that a flood of connections cannot keep us from serving.
    now = Clock::now();
    for (size_t accepted = 0; accepted < max_connections; ++accepted) {
      const int fd =
          accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
          accept_paused_until = now + kAcceptPause;
        }
        break;  // EAGAIN: no more waiting
      }
      if (connections.size() >= max_connections) {
        // The oldest one still reading has had the longest to send a
        // request and has not; one already replying is nearly done.
        auto victim = std::find_if(
            connections.begin(), connections.end(), [](const Connection& c) {
              return c.phase == Connection::Phase::kReading;
            });
        drop(victim == connections.end()
                 ? 0
                 : static_cast<size_t>(victim - connections.begin()));
      }
      connections.emplace_back(fd, now + deadline);
    }
  }
  for (const Connection& c : connections) close(c.fd);
}

}  // namespace rmt::server
