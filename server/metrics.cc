#include "server/metrics.h"

#include <grpcpp/support/status.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rmt::server {
namespace {

using prometheus::Histogram;

// Seconds, from 0.5 ms to 30 s.
Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1,      2.5,   5,    10,    30};
}

}  // namespace

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& registry = *registry_;
  active_sessions_ = &prometheus::BuildGauge()
                          .Name("rmt_active_sessions")
                          .Help("Sessions open now.")
                          .Register(registry)
                          .Add({});
  sessions_ =
      &prometheus::BuildCounter()
           .Name("rmt_sessions_total")
           .Help("Sessions ended, by outcome (closed, expired, failed).")
           .Register(registry);
  auto& memory = prometheus::BuildGauge()
                     .Name("rmt_memory_bytes")
                     .Help("Bytes of RMT memories, by location.")
                     .Register(registry);
  device_memory_ = &memory.Add({{"location", "device"}});
  host_memory_ = &memory.Add({{"location", "host"}});
  segments_ = &prometheus::BuildCounter()
                   .Name("rmt_segments_processed_total")
                   .Help("Document segments read into memories.")
                   .Register(registry)
                   .Add({});
  tokens_ = &prometheus::BuildCounter()
                 .Name("rmt_tokens_processed_total")
                 .Help("Content tokens of processed segments and questions.")
                 .Register(registry)
                 .Add({});
  questions_ = &prometheus::BuildCounter()
                    .Name("rmt_questions_total")
                    .Help("Questions answered by the model.")
                    .Register(registry)
                    .Add({});
  failed_batches_ = &prometheus::BuildCounter()
                         .Name("rmt_failed_batches_total")
                         .Help("Forward passes that failed.")
                         .Register(registry)
                         .Add({});
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("rmt_batch_size")
                     .Help("Rows (segments and questions) per forward pass.")
                     .Register(registry)
                     .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32,
                                                          64, 128, 256});
  queue_wait_ = &prometheus::BuildHistogram()
                     .Name("rmt_queue_wait_seconds")
                     .Help("Time work waited in the engine queue.")
                     .Register(registry)
                     .Add({}, LatencyBuckets());
  segment_compute_ =
      &prometheus::BuildHistogram()
           .Name("rmt_segment_compute_seconds")
           .Help("Duration of one forward pass (a batch of segments).")
           .Register(registry)
           .Add({}, LatencyBuckets());
  answer_latency_ = &prometheus::BuildHistogram()
                         .Name("rmt_answer_latency_seconds")
                         .Help("From a question's submission to its answer.")
                         .Register(registry)
                         .Add({}, LatencyBuckets());
  requests_ = &prometheus::BuildCounter()
                   .Name("rmt_requests_total")
                   .Help("Finished RPCs, by method and status code.")
                   .Register(registry);
  max_sessions_ = &prometheus::BuildGauge()
                       .Name("rmt_max_sessions")
                       .Help("Sessions this replica may hold (--max_sessions).")
                       .Register(registry)
                       .Add({});
  draining_ = &prometheus::BuildGauge()
                   .Name("rmt_draining")
                   .Help("1 while the replica drains (SIGTERM), else 0.")
                   .Register(registry)
                   .Add({});
  store_writes_ =
      &prometheus::BuildCounter()
           .Name("rmt_store_writes_total")
           .Help(
               "Session checkpoints written to the session store, by "
               "result (ok, error).")
           .Register(registry);
  store_restores_ =
      &prometheus::BuildCounter()
           .Name("rmt_store_restores_total")
           .Help(
               "Sessions looked up in the session store, by result (ok, "
               "not_found, error).")
           .Register(registry);
  store_deletes_ =
      &prometheus::BuildCounter()
           .Name("rmt_store_deletes_total")
           .Help(
               "Entries of ended sessions deleted from the session store, "
               "by result (ok, error).")
           .Register(registry);
  // Every series from the start, so that rate() and alerts see zeros.
  for (const char* result : {"ok", "error"}) {
    store_writes_->Add({{"result", result}});
    store_deletes_->Add({{"result", result}});
  }
  for (const char* result : {"ok", "not_found", "error"}) {
    store_restores_->Add({{"result", result}});
  }
}

void ServerMetrics::set_max_sessions(int max_sessions) {
  max_sessions_->Set(max_sessions);
}

void ServerMetrics::set_draining(bool draining) {
  draining_->Set(draining ? 1 : 0);
}

ServerMetrics::~ServerMetrics() = default;

absl::Status ServerMetrics::Expose(const std::string& address) {
  auto endpoint = MetricsEndpoint::Start(address, [this] { return Render(); });
  if (!endpoint.ok()) return endpoint.status();
  endpoint_ = std::move(*endpoint);
  return absl::OkStatus();
}

int ServerMetrics::port() const {
  return endpoint_ == nullptr ? 0 : endpoint_->port();
}

void ServerMetrics::OnBatch(const BatchReport& report) {
  batch_size_->Observe(report.rows);
  segment_compute_->Observe(absl::ToDoubleSeconds(report.compute));
  for (absl::Duration wait : report.queue_waits) {
    queue_wait_->Observe(absl::ToDoubleSeconds(wait));
  }
  if (report.failed) {
    failed_batches_->Increment();
    return;
  }
  segments_->Increment(report.segments);
  questions_->Increment(report.questions);
  tokens_->Increment(static_cast<double>(report.tokens));
}

void ServerMetrics::OnAnswer(absl::Duration latency) {
  answer_latency_->Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::OnSessionOpened() {
  active_sessions_->Increment();
  UpdateMemory();
}

void ServerMetrics::OnSessionEnded(SessionOutcome outcome) {
  active_sessions_->Decrement();
  const char* name = outcome == SessionOutcome::kClosed    ? "closed"
                     : outcome == SessionOutcome::kExpired ? "expired"
                                                           : "failed";
  sessions_->Add({{"outcome", name}}).Increment();
  UpdateMemory();
}

void ServerMetrics::OnTick() { UpdateMemory(); }

void ServerMetrics::OnStoreWrite(bool ok) {
  store_writes_->Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void ServerMetrics::OnStoreRestore(StoreRestoreResult result) {
  const char* name = result == StoreRestoreResult::kOk         ? "ok"
                     : result == StoreRestoreResult::kNotFound ? "not_found"
                                                               : "error";
  store_restores_->Add({{"result", name}}).Increment();
}

void ServerMetrics::OnStoreDelete(bool ok) {
  store_deletes_->Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void ServerMetrics::UpdateMemory() {
  if (engine_ == nullptr) return;
  const EngineCounters counters = engine_->Counters();
  device_memory_->Set(
      static_cast<double>(counters.resident_slots * counters.bytes_per_slot));
  host_memory_->Set(static_cast<double>(counters.host_memory_bytes));
}

void ServerMetrics::OnRequest(const std::string& method, int code) {
  requests_
      ->Add({{"method", method},
             {"code",
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}})
      .Increment();
}

std::string ServerMetrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace rmt::server
