#include "model/cuda/streams.h"

#include <ATen/cuda/CUDAEvent.h>

namespace rmt {

void StreamWait(c10::cuda::CUDAStream waiting, c10::cuda::CUDAStream first) {
  at::cuda::CUDAEvent event;
  event.record(first);
  event.block(waiting);
}

SideStream::SideStream(torch::Device device)
    : original_(c10::cuda::getCurrentCUDAStream(device.index())),
      side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false,
                                         original_.device_index())),
      guard_(side_) {
  StreamWait(side_, original_);
}

SideStream::~SideStream() { StreamWait(original_, side_); }

}  // namespace rmt
