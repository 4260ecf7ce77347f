// Tunes glibc's malloc for a process that allocates and frees the same large
// tensors on every forward pass.
//
// By default glibc serves blocks above a (dynamic) threshold with mmap and
// hands freed memory at the top of a heap back to the kernel, so every
// segment step re-faults its activation buffers page by page. Measured with
// rmt-bench on 2 vCPUs (small config): a batch-4 step took 95.8 ms with the
// defaults and 37.6 ms with the thresholds raised; page faults were ~11% of
// all CPU samples before.
//
// Call once at the start of main(), before threads start; it is a no-op on
// other C libraries.
#ifndef RMT_MODEL_HOST_ALLOCATOR_H_
#define RMT_MODEL_HOST_ALLOCATOR_H_

namespace rmt {

// Returns true when the settings were applied.
bool KeepTensorBuffersMapped();

}  // namespace rmt

#endif  // RMT_MODEL_HOST_ALLOCATOR_H_
