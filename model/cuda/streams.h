// CUDA stream helpers (RMT_CUDA builds only).
//
// SideStream moves a scope's CUDA work onto a stream from PyTorch's pool,
// ordered after everything the current stream queued before the scope and
// before everything it queues after. CUDA graphs must be captured on a
// stream other than the default one; this is that stream.
//
//   {
//     SideStream side(model_device);
//     graph.capture_begin(); ...; graph.capture_end();
//   }  // the caller's stream waits for the capture's stream here
//
// Thread-safety: a SideStream belongs to the thread that made it (the
// current stream is per thread).
#ifndef RMT_MODEL_CUDA_STREAMS_H_
#define RMT_MODEL_CUDA_STREAMS_H_

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

namespace rmt {

class SideStream {
 public:
  explicit SideStream(torch::Device device);
  ~SideStream();
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;

  c10::cuda::CUDAStream stream() const { return side_; }

 private:
  c10::cuda::CUDAStream original_;
  c10::cuda::CUDAStream side_;
  c10::cuda::CUDAStreamGuard guard_;  // makes side_ current until destroyed
};

// `waiting` runs nothing queued after this call until `first` has finished
// what it queued before it. Neither the host nor other streams wait.
void StreamWait(c10::cuda::CUDAStream waiting, c10::cuda::CUDAStream first);

}  // namespace rmt

#endif  // RMT_MODEL_CUDA_STREAMS_H_
