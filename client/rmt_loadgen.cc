// rmt-loadgen: S concurrent sessions, each streaming a document of N random
// token ids through its own Converse stream and asking one question at the
// end. Prints tokens/s, segment and answer latency percentiles and errors.
//
//   rmt-loadgen --server localhost:50051 --sessions 16 --tokens 4096 [--json]
//
// Segment latency: from the write that completes a segment to the progress
// message that reports it processed (progress messages are coalesced, so
// this is an upper bound per segment).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/client_common.h"
#include "model/guarded_main.h"
#include "rmt/v1/memory_qa.grpc.pb.h"
#include "tools/program_flags.h"

ABSL_FLAG(std::string, server, "localhost:50051", "rmt-server address.");
ABSL_FLAG(std::string, tls_ca, "", "PEM root certificates; empty: plaintext.");
ABSL_FLAG(std::string, token, "", "Bearer token.");
ABSL_FLAG(int, sessions, 16, "Concurrent sessions (S).");
ABSL_FLAG(int, tokens, 4096, "Tokens per document (N).");
ABSL_FLAG(int, rounds, 1, "Documents per session, one after another.");
ABSL_FLAG(bool, json, false, "Print JSON on stdout.");

namespace rmt::client {
namespace {

using Clock = std::chrono::steady_clock;

struct Results {
  absl::Mutex mu;
  std::vector<double> segment_ms ABSL_GUARDED_BY(mu);
  std::vector<double> answer_ms ABSL_GUARDED_BY(mu);
  int64_t tokens ABSL_GUARDED_BY(mu) = 0;
  int errors ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> error_messages ABSL_GUARDED_BY(mu);
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

void RunSession(const ChannelOptions& channel_options, int seed,
                const v1::ModelInfo& info, Results* results) {
  auto stub = v1::MemoryQA::NewStub(MakeChannel(channel_options));
  std::mt19937 rng(seed);
  // Ids above the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]).
  std::uniform_int_distribution<int32_t> id(5, info.vocab_size() - 1);
  const int segment = info.segment_size();
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    grpc::ClientContext context;
    Authorize(channel_options, &context);
    auto stream = stub->Converse(&context);
    const int n = absl::GetFlag(FLAGS_tokens);
    const int segments = (n + segment - 1) / segment;
    std::vector<Clock::time_point> sent(segments + 1);
    Clock::time_point asked;
    absl::Mutex sent_mu;
    std::vector<double> segment_ms, answer_ms;
    std::thread reader([&] {
      v1::ConverseResponse response;
      int64_t seen = 0;
      while (stream->Read(&response)) {
        const auto now = Clock::now();
        if (response.has_progress()) {
          absl::MutexLock lock(&sent_mu);
          for (int64_t k = seen;
               k < response.progress().segments_processed() && k < segments;
               ++k) {
            segment_ms.push_back(
                std::chrono::duration<double, std::milli>(now - sent[k])
                    .count());
          }
          seen = std::max(seen, response.progress().segments_processed());
        } else if (response.has_answer()) {
          absl::MutexLock lock(&sent_mu);
          answer_ms.push_back(
              std::chrono::duration<double, std::milli>(now - asked).count());
        }
      }
    });
    v1::ConverseRequest request;
    request.mutable_open();
    bool ok = stream->Write(request);
    for (int s = 0; ok && s < segments; ++s) {
      request.Clear();
      auto* ids = request.mutable_chunk()->mutable_token_ids();
      for (int t = 0; t < std::min(segment, n - s * segment); ++t) {
        ids->add_ids(id(rng));
      }
      {
        absl::MutexLock lock(&sent_mu);
        sent[s] = Clock::now();
      }
      ok = stream->Write(request);
    }
    request.Clear();
    request.mutable_question()->set_id("q");
    for (int t = 0; t < std::min(8, segment); ++t) {
      request.mutable_question()->mutable_token_ids()->add_ids(id(rng));
    }
    {
      absl::MutexLock lock(&sent_mu);
      asked = Clock::now();
      // The tail segment is flushed by the question.
      if (n % segment != 0) sent[segments - 1] = asked;
    }
    if (ok) ok = stream->Write(request);
    stream->WritesDone();
    reader.join();
    grpc::Status status = stream->Finish();
    absl::MutexLock lock(&results->mu);
    if (!status.ok() || answer_ms.size() != 1) {
      ++results->errors;
      results->error_messages.push_back(status.ok() ? "no answer"
                                                    : status.error_message());
      continue;
    }
    results->tokens += n;
    results->segment_ms.insert(results->segment_ms.end(), segment_ms.begin(),
                               segment_ms.end());
    results->answer_ms.insert(results->answer_ms.end(), answer_ms.begin(),
                              answer_ms.end());
  }
}

int Main() {
  ChannelOptions channel;
  channel.server = absl::GetFlag(FLAGS_server);
  if (absl::Status tls = LoadTlsRoots(absl::GetFlag(FLAGS_tls_ca), &channel);
      !tls.ok()) {
    std::cerr << "rmt-loadgen: " << tls << "\n";
    return 1;
  }
  channel.token = absl::GetFlag(FLAGS_token);
  auto stub = v1::MemoryQA::NewStub(MakeChannel(channel));
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    Authorize(channel, &context);
    grpc::Status status = stub->GetModelInfo(&context, {}, &info);
    if (!status.ok()) {
      std::cerr << "rmt-loadgen: GetModelInfo: " << status.error_message()
                << "\n";
      return 1;
    }
  }
  const int sessions = std::max(1, absl::GetFlag(FLAGS_sessions));
  Results results;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < sessions; ++s) {
    threads.emplace_back(RunSession, channel, s + 1, info, &results);
  }
  for (auto& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  absl::MutexLock lock(&results.mu);
  const double tokens_per_second = results.tokens / seconds;
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = {{"sessions", sessions},
                          {"tokens_per_document", absl::GetFlag(FLAGS_tokens)},
                          {"seconds", seconds},
                          {"tokens", results.tokens},
                          {"tokens_per_second", tokens_per_second},
                          {"segment_latency_ms",
                           {{"p50", Percentile(results.segment_ms, 0.5)},
                            {"p90", Percentile(results.segment_ms, 0.9)},
                            {"p99", Percentile(results.segment_ms, 0.99)}}},
                          {"answer_latency_ms",
                           {{"p50", Percentile(results.answer_ms, 0.5)},
                            {"p90", Percentile(results.answer_ms, 0.9)},
                            {"p99", Percentile(results.answer_ms, 0.99)}}},
                          {"errors", results.errors},
                          {"error_messages", results.error_messages}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "sessions %d  tokens/doc %d  model %s (segment %d)\n"
        "tokens/s %.0f  (%d tokens in %.2f s)\n"
        "segment latency ms  p50 %.1f  p90 %.1f  p99 %.1f\n"
        "answer latency ms   p50 %.1f  p90 %.1f  p99 %.1f\n"
        "errors %d\n",
        sessions, absl::GetFlag(FLAGS_tokens), info.name(), info.segment_size(),
        tokens_per_second, results.tokens, seconds,
        Percentile(results.segment_ms, 0.5),
        Percentile(results.segment_ms, 0.9),
        Percentile(results.segment_ms, 0.99),
        Percentile(results.answer_ms, 0.5), Percentile(results.answer_ms, 0.9),
        Percentile(results.answer_ms, 0.99), results.errors);
    for (const auto& message : results.error_messages) {
      std::cout << "  error: " << message << "\n";
    }
  }
  return results.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rmt::client

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-loadgen", [&] {
    rmt::ParseProgramFlags(
        argc, argv,
        "rmt-loadgen --server HOST:PORT --sessions S --tokens N [--json]");
    return rmt::client::Main();
  });
}
