// KernelProfiler on CUDA: the torch profiler (Kineto) with only its CUDA
// activity on, so the host side adds no per-operator bookkeeping and CUDA
// graph replays are seen kernel by kernel (CUPTI reports graph kernels).
#include "bench/kernel_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rmt {
namespace {

namespace profiler = ::torch::autograd::profiler;
using ::torch::profiler::impl::ActivityType;
using ::torch::profiler::impl::ProfilerConfig;
using ::torch::profiler::impl::ProfilerState;

const std::set<ActivityType>& Activities() {
  static const std::set<ActivityType> activities = {ActivityType::CUDA};
  return activities;
}

ProfilerConfig Config() { return ProfilerConfig(ProfilerState::KINETO); }

// Total length of the union of [start, end) intervals.
uint64_t UnionNs(std::vector<std::pair<uint64_t, uint64_t>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  uint64_t total = 0, end = 0;
  for (const auto& [s, e] : intervals) {
    const uint64_t from = std::max(s, end);
    if (e > from) total += e - from;
    end = std::max(end, e);
  }
  return total;
}

}  // namespace

KernelProfiler::~KernelProfiler() {
  if (!running_) return;
  try {
    profiler::disableProfiler();
  } catch (const std::exception&) {
    // Nothing to report to from a destructor; the profile is discarded.
  }
}

absl::Status KernelProfiler::Start() {
  if (running_) return absl::FailedPreconditionError("already started");
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError("no CUDA device to profile");
  }
  try {
    profiler::prepareProfiler(Config(), Activities());
    profiler::enableProfiler(Config(), Activities());
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the torch profiler did not start: ", e.what()));
  }
  running_ = true;
  started_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<KernelProfile> KernelProfiler::Stop(torch::Device device) {
  if (!running_) return absl::FailedPreconditionError("not started");
  std::unique_ptr<profiler::ProfilerResult> result;
  KernelProfile profile;
  try {
    torch::cuda::synchronize(device.has_index() ? device.index() : -1);
    profile.wall = absl::Now() - started_;
  } catch (const std::exception& e) {
    // The profiler stays on for the destructor to switch off: a process
    // whose device failed must not keep it running.
    return absl::InternalError(
        absl::StrCat("the device failed while profiled: ", e.what()));
  }
  running_ = false;
  try {
    result = profiler::disableProfiler();
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the torch profiler did not stop: ", e.what()));
  }
  if (result == nullptr) return absl::InternalError("no profile came back");
  std::map<std::string, KernelCost> by_name;
  std::vector<std::pair<uint64_t, uint64_t>> intervals;
  for (const profiler::KinetoEvent& event : result->events()) {
    if (event.deviceType() != c10::DeviceType::CUDA) continue;
    if (event.endNs() <= event.startNs()) continue;  // markers, not work
    KernelCost& cost = by_name[event.name()];
    cost.name = event.name();
    ++cost.calls;
    cost.time += absl::Nanoseconds(event.durationNs());
    profile.summed += absl::Nanoseconds(event.durationNs());
    intervals.emplace_back(event.startNs(), event.endNs());
  }
  if (intervals.empty()) {
    return absl::InternalError(
        "the profile holds no CUDA kernels (is CUPTI available?)");
  }
  profile.busy = absl::Nanoseconds(UnionNs(std::move(intervals)));
  for (auto& [name, cost] : by_name) profile.kernels.push_back(std::move(cost));
  std::sort(
      profile.kernels.begin(), profile.kernels.end(),
      [](const KernelCost& a, const KernelCost& b) { return a.time > b.time; });
  return profile;
}

}  // namespace rmt
