// MetricsEndpoint: a minimal HTTP/1.1 server for Prometheus scrapes.
// GET (or HEAD) /metrics answers the text exposition format that `render`
// returns; other paths get 404, other methods 405. One connection at a
// time, each closed after its reply: a scraper needs no more.
//
// Why not prometheus-cpp's Exposer: it runs on civetweb, whose threads are
// created with a fixed 100 KiB stack. This process's static TLS (OpenBLAS
// alone takes 60 KiB, glog 30 KiB) does not fit in it, so civetweb's
// pthread_create fails with EINVAL and the Exposer cannot start.
//
//   auto endpoint = MetricsEndpoint::Start("0.0.0.0:9464",
//                                          [&] { return metrics.Render(); });
//
// Thread-safety: `render` is called from the endpoint's own thread.
#ifndef RMT_SERVER_METRICS_ENDPOINT_H_
#define RMT_SERVER_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace rmt::server {

class MetricsEndpoint {
 public:
  // Listens on `address` ("host:port", "[v6]:port" or ":port"; port 0 picks
  // a free one) and serves from a thread of its own.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsEndpoint();  // stops serving; waits for the thread
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint(int listen_fd, int wake_fd, int port,
                  std::function<std::string()> render);
  void Serve();
  void HandleConnection(int fd);

  const int listen_fd_;
  const int wake_fd_;  // an eventfd: written once to stop Serve
  const int port_;
  const std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_METRICS_ENDPOINT_H_
