// KernelProfiler: which GPU kernels a stretch of work spent its device time
// in, summed by kernel name, through the torch profiler (Kineto and CUPTI,
// which also see the kernels inside CUDA-graph replays and on any thread).
// rmt-bench --profile_sessions prints it beside the tables, so a number that
// disappoints comes with its top costs from the same run.
//
//   KernelProfiler profiler;
//   RETURN_IF_ERROR(profiler.Start());
//   ... work on the GPU ...
//   ASSIGN_OR_RETURN(KernelProfile profile, profiler.Stop(device));
//
// Built only with RMT_CUDA (the CUDA LibTorch 2.x); elsewhere Start is
// UNIMPLEMENTED. One profiler per process at a time (the torch profiler is
// a process-wide switch); not thread-safe.
#ifndef RMT_BENCH_KERNEL_PROFILE_H_
#define RMT_BENCH_KERNEL_PROFILE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rmt {

struct KernelCost {
  std::string name;  // as CUPTI reports it (demangled), copies included
  int64_t calls = 0;
  absl::Duration time;  // summed over its calls
};

struct KernelProfile {
  absl::Duration wall;    // Start to Stop, device synchronised
  absl::Duration busy;    // the union of all kernels' and copies' intervals
  absl::Duration summed;  // every kernel's time added up
  std::vector<KernelCost> kernels;  // most time first
};

class KernelProfiler {
 public:
  KernelProfiler() = default;
  KernelProfiler(const KernelProfiler&) = delete;
  KernelProfiler& operator=(const KernelProfiler&) = delete;
  ~KernelProfiler();  // stops a profile still running, discarding it

  absl::Status Start();
  // Waits for the device's queued work, then collects what ran since Start.
  absl::StatusOr<KernelProfile> Stop(torch::Device device);

 private:
  bool running_ = false;
  absl::Time started_;
};

// A markdown table of the `top` costliest kernels, their share of the summed
// kernel time, and a line on how busy the device was.
std::string FormatKernelProfile(const KernelProfile& profile, int top);

}  // namespace rmt

#endif  // RMT_BENCH_KERNEL_PROFILE_H_
