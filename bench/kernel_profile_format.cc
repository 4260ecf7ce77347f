// FormatKernelProfile: the table, in both builds.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "bench/kernel_profile.h"

namespace rmt {

std::string FormatKernelProfile(const KernelProfile& profile, int top) {
  const double summed = absl::ToDoubleMilliseconds(profile.summed);
  std::string out = absl::StrFormat(
      "device busy %.1f ms of %.1f ms wall (%.0f%%); kernels and copies add "
      "up to %.1f ms\n\n",
      absl::ToDoubleMilliseconds(profile.busy),
      absl::ToDoubleMilliseconds(profile.wall),
      100 * absl::FDivDuration(profile.busy,
                               std::max(profile.wall, absl::Nanoseconds(1))),
      summed);
  absl::StrAppend(&out,
                  "| kernel | calls | ms | share |\n|---|---:|---:|---:|\n");
  const int rows = std::min<int>(top, profile.kernels.size());
  for (int i = 0; i < rows; ++i) {
    const KernelCost& k = profile.kernels[i];
    // Template arguments make names of a thousand characters; the head of
    // the name tells the kernel, and '|' would break the table.
    std::string name = absl::StrReplaceAll(k.name, {{"|", "/"}});
    if (name.size() > 110) name = name.substr(0, 107) + "...";
    const double ms = absl::ToDoubleMilliseconds(k.time);
    absl::StrAppendFormat(&out, "| `%s` | %lld | %.1f | %.1f%% |\n", name,
                          (long long)k.calls, ms,
                          summed > 0 ? 100 * ms / summed : 0.0);
  }
  return out;
}

}  // namespace rmt
