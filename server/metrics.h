// ServerMetrics: the server's Prometheus metrics (prometheus-cpp), fed by the
// engine (EngineObserver), the sessions (SessionObserver, SessionListener)
// and the service (requests by method and code).
//
//   ServerMetrics metrics;
//   Engine::Create(model, options, &metrics);
//   metrics.Expose("0.0.0.0:9464");   // GET /metrics
//
// Thread-safety: all methods are thread-safe (prometheus-cpp's metrics are).
#ifndef RMT_SERVER_METRICS_H_
#define RMT_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "model/engine.h"
#include "server/metrics_endpoint.h"
#include "server/session.h"
#include "server/session_manager.h"
#include "server/session_persistence.h"

namespace rmt::server {

class ServerMetrics final : public EngineObserver,
                            public SessionObserver,
                            public SessionListener,
                            public SessionStoreObserver {
 public:
  ServerMetrics();
  ~ServerMetrics() override;

  // Serves GET /metrics on `address` ("host:port"; port 0 picks one).
  absl::Status Expose(const std::string& address);
  // The port Expose listens on, 0 before.
  int port() const;

  // The engine whose memory occupancy the memory gauges report; updated on
  // every reaper tick and batch. Must outlive this object or be reset.
  void set_engine(const Engine* engine) { engine_ = engine; }
  // Reported as gauges, for alerts and dashboards.
  void set_max_sessions(int max_sessions);
  void set_draining(bool draining);

  void OnBatch(const BatchReport& report) override;
  void OnAnswer(absl::Duration latency) override;
  void OnSessionOpened() override;
  void OnSessionEnded(SessionOutcome outcome) override;
  void OnTick() override;
  void OnStoreWrite(bool ok) override;
  void OnStoreRestore(StoreRestoreResult result) override;
  void OnStoreDelete(bool ok) override;

  // One finished RPC; `code` is the canonical name ("OK", "NOT_FOUND").
  void OnRequest(const std::string& method, int code);

  // The text exposition format, as GET /metrics returns it.
  std::string Render() const;

 private:
  void UpdateMemory();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  const Engine* engine_ = nullptr;

  prometheus::Gauge* active_sessions_;
  prometheus::Family<prometheus::Counter>* sessions_;
  prometheus::Gauge* device_memory_;
  prometheus::Gauge* host_memory_;
  prometheus::Counter* segments_;
  prometheus::Counter* tokens_;
  prometheus::Counter* questions_;
  prometheus::Counter* failed_batches_;
  prometheus::Histogram* batch_size_;
  prometheus::Histogram* queue_wait_;
  prometheus::Histogram* segment_compute_;
  prometheus::Histogram* answer_latency_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Gauge* max_sessions_;
  prometheus::Gauge* draining_;
  prometheus::Family<prometheus::Counter>* store_writes_;
  prometheus::Family<prometheus::Counter>* store_restores_;
  prometheus::Family<prometheus::Counter>* store_deletes_;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_METRICS_H_
