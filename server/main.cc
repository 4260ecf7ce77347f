// rmt-server: the MemoryQA gRPC service (see proto/rmt/v1/memory_qa.proto).
//
//   rmt-server --model=models/rmt-babi --listen=0.0.0.0:50051
//              --metrics_listen=127.0.0.1:9464
//
// SIGTERM or SIGINT drains: health goes NOT_SERVING while the listener stays
// open, new sessions get UNAVAILABLE, streams in flight get --drain_grace to
// finish; exit 0. A bad flag value exits 2, a failed start 1.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <new>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/host_allocator.h"
#include "model/status_macros.h"
#include "server/log.h"
#include "server/server.h"
#include "server/session_store.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::string, model, "",
          "Model directory. Empty: models/rmt-babi if it exists, else an "
          "UNTRAINED random model created in --untrained_dir.");
ABSL_FLAG(std::string, untrained_dir, "build/untrained-model",
          "Where to create the untrained model when no model is found.");
ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC address (host:port).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics address; empty: none. It has no "
          "authentication: keep it on a private address (loopback, the pod "
          "IP).");
ABSL_FLAG(std::string, device, "auto", "cpu, cuda, cuda:N or auto.");
ABSL_FLAG(std::string, dtype, "float32",
          "Compute precision: float32, bfloat16 or float16 (weights are "
          "converted at load; memories keep the config's memory_dtype).");
ABSL_FLAG(int, max_batch, 32, "Most rows (segments, questions) per forward.");
ABSL_FLAG(bool, cuda_graphs, true,
          "On a CUDA device, replay each batch's step from CUDA graphs "
          "captured at start, one per batch size 1, 2, 4, ... max_batch "
          "(batches padded up to one); ignored on the CPU. Needs a build "
          "with -DRMT_CUDA=ON (make build-torch2).");
ABSL_FLAG(absl::Duration, max_queue_delay, absl::Milliseconds(2),
          "Longest wait for a fuller batch.");
ABSL_FLAG(int, max_sessions, 1024, "Most live sessions.");
ABSL_FLAG(int, device_sessions, 1024,
          "Memories kept on the device; further ones (up to max_sessions) "
          "are parked in host memory.");
ABSL_FLAG(absl::Duration, session_idle_ttl, absl::Minutes(10),
          "Idle sessions are closed after this long.");
ABSL_FLAG(absl::Duration, session_offload_after, absl::Seconds(30),
          "Idle sessions' memories move to host memory after this long.");
ABSL_FLAG(int, max_pending_segments, 8,
          "A stream stops reading while its session has more segments than "
          "this pending, and at most this many of a session's segments wait "
          "in the engine (gRPC flow control then slows the client). A "
          "stream holds at most max_pending_segments x segment_size + "
          "max_chunk_tokens token ids and one chunk of text.");
ABSL_FLAG(int64_t, max_chunk_bytes, 1 << 20, "Largest text chunk accepted.");
ABSL_FLAG(int64_t, max_chunk_tokens, 1 << 18,
          "Largest chunk of token ids accepted.");
ABSL_FLAG(int, default_top_k, 1,
          "Labels per answer when neither the question nor `open` sets top_k.");
ABSL_FLAG(int, max_top_k, 100, "Most labels a question may ask for.");
ABSL_FLAG(std::string, snapshot_key_file, "",
          "HMAC key for snapshots; else $RMT_SNAPSHOT_KEY; else a random "
          "per-process key.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain (TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key (TLS).");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "Bearer tokens, one per line; empty: no authentication.");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(30),
          "How long streams in flight may take to finish on SIGTERM.");
ABSL_FLAG(std::string, session_store, "memory",
          "Where sessions are checkpointed so that another replica can "
          "continue them: memory (nowhere: this process only), dir:PATH or "
          "redis://HOST[:PORT][/DB]. A shared store needs the same "
          "--snapshot_key_file (or $RMT_SNAPSHOT_KEY) on every replica. A "
          "session is written every --checkpoint_every_segments segments "
          "while a stream feeds it, when a keep-alive stream or Ingest on it "
          "ends, when it is idle after that many more segments, and at "
          "drain; it is deleted when closed or expired.");
ABSL_FLAG(int64_t, checkpoint_every_segments, 64,
          "A stream writes its session to --session_store every this many "
          "segments (a lost replica costs at most that many, computed "
          "again), and an idle session is written again once it has "
          "processed this many since its last write.");
ABSL_FLAG(int, intra_op_threads, 0,
          "Threads of each forward pass; 0: every core.");

namespace {

// A bad flag value is refused with a message naming it, never clamped.
absl::Status CheckFlags() {
  const auto at_least = [](const char* name, int64_t value,
                           int64_t minimum) -> absl::Status {
    if (value >= minimum) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, "=", value, " is invalid: it must be at least ", minimum));
  };
  const auto positive = [](const char* name,
                           absl::Duration value) -> absl::Status {
    if (value > absl::ZeroDuration()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", absl::FormatDuration(value),
                     " is invalid: it must be positive"));
  };
  const int max_sessions = absl::GetFlag(FLAGS_max_sessions);
  const int device_sessions = absl::GetFlag(FLAGS_device_sessions);
  RETURN_IF_ERROR(at_least("max_batch", absl::GetFlag(FLAGS_max_batch), 1));
  RETURN_IF_ERROR(at_least("max_sessions", max_sessions, 1));
  RETURN_IF_ERROR(at_least("device_sessions", device_sessions, 1));
  if (device_sessions > max_sessions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device_sessions=", device_sessions,
        " is invalid: it is more than --max_sessions=", max_sessions,
        " (device memories are part of the sessions)"));
  }
  RETURN_IF_ERROR(at_least("max_pending_segments",
                           absl::GetFlag(FLAGS_max_pending_segments), 1));
  RETURN_IF_ERROR(
      at_least("max_chunk_bytes", absl::GetFlag(FLAGS_max_chunk_bytes), 1));
  RETURN_IF_ERROR(
      at_least("max_chunk_tokens", absl::GetFlag(FLAGS_max_chunk_tokens), 1));
  RETURN_IF_ERROR(at_least("max_top_k", absl::GetFlag(FLAGS_max_top_k), 1));
  RETURN_IF_ERROR(
      at_least("default_top_k", absl::GetFlag(FLAGS_default_top_k), 1));
  if (absl::GetFlag(FLAGS_default_top_k) > absl::GetFlag(FLAGS_max_top_k)) {
    return absl::InvalidArgumentError(
        "--default_top_k is invalid: it is more than --max_top_k");
  }
  // The largest message gRPC must accept holds one chunk.
  if (absl::GetFlag(FLAGS_max_chunk_bytes) > (1 << 30) ||
      absl::GetFlag(FLAGS_max_chunk_tokens) > (1 << 27)) {
    return absl::InvalidArgumentError(
        "--max_chunk_bytes or --max_chunk_tokens is invalid: at most 1 GiB "
        "and 2^27");
  }
  RETURN_IF_ERROR(at_least("checkpoint_every_segments",
                           absl::GetFlag(FLAGS_checkpoint_every_segments), 1));
  if (absl::Status store =
          rmt::server::ParseSessionStoreSpec(absl::GetFlag(FLAGS_session_store))
              .status();
      !store.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--session_store=", absl::GetFlag(FLAGS_session_store),
                     " is invalid: ", store.message()));
  }
  RETURN_IF_ERROR(
      at_least("intra_op_threads", absl::GetFlag(FLAGS_intra_op_threads), 0));
  RETURN_IF_ERROR(
      positive("session_idle_ttl", absl::GetFlag(FLAGS_session_idle_ttl)));
  RETURN_IF_ERROR(positive("session_offload_after",
                           absl::GetFlag(FLAGS_session_offload_after)));
  if (absl::GetFlag(FLAGS_max_queue_delay) < absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_drain_grace) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--max_queue_delay or --drain_grace is invalid: negative");
  }
  return absl::OkStatus();
}

int Serve() {
  if (absl::Status flags = CheckFlags(); !flags.ok()) {
    rmt::server::LogEvent("startup_failed", {{"error", flags.ToString()}},
                          "error");
    return 2;
  }
  rmt::KeepTensorBuffersMapped();

  // Block the stop signals in every thread; this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  rmt::server::ServerOptions options;
  options.model.directory = absl::GetFlag(FLAGS_model);
  options.model.untrained_dir = absl::GetFlag(FLAGS_untrained_dir);
  options.model.device = absl::GetFlag(FLAGS_device);
  options.model.dtype = absl::GetFlag(FLAGS_dtype);
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.engine.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.engine.max_queue_delay = absl::GetFlag(FLAGS_max_queue_delay);
  options.engine.cuda_graphs = absl::GetFlag(FLAGS_cuda_graphs);
  const int max_sessions = absl::GetFlag(FLAGS_max_sessions);
  const int device_sessions = absl::GetFlag(FLAGS_device_sessions);
  options.engine.device_slots = device_sessions;
  options.engine.host_slots = max_sessions - device_sessions;
  int threads = absl::GetFlag(FLAGS_intra_op_threads);
  if (threads == 0) {
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  options.engine.intra_op_threads = threads;
  options.sessions.max_sessions = max_sessions;
  options.sessions.idle_ttl = absl::GetFlag(FLAGS_session_idle_ttl);
  options.sessions.offload_after = absl::GetFlag(FLAGS_session_offload_after);
  options.limits.max_pending_segments =
      absl::GetFlag(FLAGS_max_pending_segments);
  options.limits.max_chunk_bytes = absl::GetFlag(FLAGS_max_chunk_bytes);
  options.limits.max_chunk_tokens = absl::GetFlag(FLAGS_max_chunk_tokens);
  options.limits.default_top_k = absl::GetFlag(FLAGS_default_top_k);
  options.limits.max_top_k = absl::GetFlag(FLAGS_max_top_k);
  options.snapshot_key_file = absl::GetFlag(FLAGS_snapshot_key_file);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.session_store = absl::GetFlag(FLAGS_session_store);
  options.checkpoint_every_segments =
      absl::GetFlag(FLAGS_checkpoint_every_segments);

  auto server = rmt::server::RmtServer::Start(options);
  if (!server.ok()) {
    rmt::server::LogEvent("startup_failed",
                          {{"error", server.status().ToString()}}, "error");
    return 1;
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  rmt::server::LogEvent(
      "signal", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*server)->Drain(absl::GetFlag(FLAGS_drain_grace));
  server->reset();
  rmt::server::LogEvent("exit", {{"code", "0"}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing may escape as an abort: a model the loader did not foresee, or
  // memory running out at start, ends with a message and exit status 1.
  try {
    rmt::ParseProgramFlags(argc, argv,
                           "Serves the rmt.v1.MemoryQA gRPC API.\n"
                           "  rmt-server --model DIR [--listen 0.0.0.0:50051]");
    return Serve();
  } catch (const std::bad_alloc&) {
    rmt::server::LogEvent("fatal", {{"error", "out of memory"}}, "error");
  } catch (const std::exception& e) {
    // c10::Error's what() appends a multi-line C++ backtrace.
    const std::string message = e.what();
    rmt::server::LogEvent(
        "fatal", {{"error", message.substr(0, message.find('\n'))}}, "error");
  } catch (...) {
    rmt::server::LogEvent("fatal", {{"error", "unknown exception"}}, "error");
  }
  return 1;
}
