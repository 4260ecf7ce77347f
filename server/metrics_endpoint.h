// MetricsEndpoint: a minimal HTTP/1.1 server for Prometheus scrapes.
// GET (or HEAD) /metrics answers the text exposition format that `render`
// returns; other paths get 404, other methods 405, a request line that
// cannot be read 400, headers past `max_request_bytes` 431. Each connection
// is closed after its reply: a scraper needs no more.
//
// One thread runs a poll loop over non-blocking sockets, so many scrapes are
// served at once and a slow or silent client cannot hold the others up: each
// connection has one deadline for its whole life (not per read, so a client
// trickling a byte at a time gains nothing), and past `max_connections` the
// oldest still-reading connection is dropped.
//
// There is no authentication: bind it to a private address (loopback or the
// pod IP, e.g. --metrics_listen=127.0.0.1:9464), never to a public one.
//
// Why not prometheus-cpp's Exposer: it runs on civetweb, whose threads are
// created with a fixed 100 KiB stack. This process's static TLS (OpenBLAS
// alone takes 60 KiB, glog 30 KiB) does not fit in it, so civetweb's
// pthread_create fails with EINVAL and the Exposer cannot start.
//
//   auto endpoint = MetricsEndpoint::Start("127.0.0.1:9464",
//                                          [&] { return metrics.Render(); });
//
// Thread-safety: `render` is called from the endpoint's own thread, one call
// at a time. port() may be called from any thread.
#ifndef RMT_SERVER_METRICS_ENDPOINT_H_
#define RMT_SERVER_METRICS_ENDPOINT_H_

#include <pthread.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rmt::server {

struct MetricsEndpointOptions {
  // From accept to close: reading the request, writing the reply and waiting
  // for the client to close. A local scrape takes milliseconds; the rest is
  // headroom for a loaded host, short enough that idle sockets clear fast.
  absl::Duration client_deadline = absl::Seconds(5);
  // Prometheus opens one connection per scrape; 64 covers many scrapers
  // while bounding the file descriptors a flood of clients can pin.
  int max_connections = 64;
  // A scrape request is a few hundred bytes.
  size_t max_request_bytes = 8192;
};

class MetricsEndpoint {
 public:
  // Listens on `address` ("host:port", "[v6]:port" or ":port"; port 0 picks
  // a free one) and serves from a thread of its own. INVALID_ARGUMENT for a
  // malformed address or options, UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, std::function<std::string()> render,
      MetricsEndpointOptions options = {});
  ~MetricsEndpoint();  // stops serving, closes every connection, joins
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint(int listen_fd, int wake_fd, int port,
                  std::function<std::string()> render,
                  const MetricsEndpointOptions& options);
  static void* ThreadMain(void* self);
  void Serve();

  // Constant after construction; the connections themselves live in Serve's
  // frame, touched by the serving thread alone, so nothing needs a lock.
  const int listen_fd_;  // non-blocking
  const int wake_fd_;    // an eventfd: written once to stop Serve
  const int port_;
  const std::function<std::string()> render_;
  const MetricsEndpointOptions options_;
  // Set by Start before the endpoint is handed out; read by the destructor.
  pthread_t thread_{};
  bool started_ = false;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_METRICS_ENDPOINT_H_
