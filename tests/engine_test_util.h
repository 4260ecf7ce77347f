// Helpers of the engine tests (engine_test on the CPU, cuda_engine_test on a
// GPU): a session's document, its memory when processed alone, and many
// sessions submitted from several threads in random interleavings.
#ifndef RMT_TESTS_ENGINE_TEST_UTIL_H_
#define RMT_TESTS_ENGINE_TEST_UTIL_H_

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "model/engine.h"
#include "model/rmt_model.h"

namespace rmt::testing {

using Document = std::vector<std::vector<int32_t>>;

// The memory after `document`, one segment at a time, no engine: (m, d).
inline torch::Tensor AloneMemory(RmtModel& model, const Document& document) {
  torch::NoGradGuard no_grad;
  torch::Tensor memory = model->InitMemory(1);
  for (const auto& segment : document) {
    memory = model->Step(memory, model->MakeBatch({segment}));
  }
  return memory[0];
}

struct InterleavedResults {
  std::vector<std::vector<std::future<absl::Status>>> segments;  // per session
  std::vector<std::future<absl::StatusOr<Answer>>> answers;      // per session
};

// Four submitter threads each own every fourth session and submit, in a
// random order of their sessions, each session's segments and then its
// question (top_k labels). With `pause` a thread sleeps now and then, so
// batches form from different mixes. Deterministic per `seed` only in what
// each thread submits, not in how the engine batches it.
inline InterleavedResults SubmitInterleaved(
    Engine& engine, const std::vector<SlotId>& slots,
    const std::vector<Document>& documents,
    const std::vector<std::vector<int32_t>>& questions, int top_k,
    uint32_t seed, bool pause) {
  const int sessions = static_cast<int>(slots.size());
  InterleavedResults results;
  results.segments.resize(sessions);
  results.answers.resize(sessions);
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      std::mt19937 local(seed * 100 + t);
      std::vector<size_t> next(sessions, 0);
      std::vector<int> mine;
      for (int s = t; s < sessions; s += 4) mine.push_back(s);
      while (!mine.empty()) {
        const size_t pick = local() % mine.size();
        const int s = mine[pick];
        if (next[s] < documents[s].size()) {
          results.segments[s].push_back(
              engine.SubmitSegment(slots[s], documents[s][next[s]++]));
        } else {
          results.answers[s] =
              engine.SubmitQuestion(slots[s], questions[s], top_k);
          mine.erase(mine.begin() + pick);
        }
        if (pause && local() % 4 == 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(local() % 300));
        }
      }
    });
  }
  for (auto& thread : submitters) thread.join();
  return results;
}

}  // namespace rmt::testing

#endif  // RMT_TESTS_ENGINE_TEST_UTIL_H_
