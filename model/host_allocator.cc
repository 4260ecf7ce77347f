#include "model/host_allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rmt {

bool KeepTensorBuffersMapped() {
#if defined(__GLIBC__)
  // Largest mmap threshold glibc accepts on 64-bit (32 MiB): blocks below it
  // come from the heap and are reused instead of mapped and unmapped.
  constexpr int kMmapThreshold = 32 << 20;
  // Keep up to 1 GiB of free heap top instead of trimming it after each
  // step, and grow the heap in 64 MiB steps.
  constexpr int kTrimThreshold = 1 << 30;
  constexpr int kTopPad = 64 << 20;
  return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
         mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
         mallopt(M_TOP_PAD, kTopPad) == 1;
#else
  return false;
#endif
}

}  // namespace rmt
