// HostTensor: a tensor's bytes in host memory without torch types, so code
// outside the model (snapshots, the server) can carry memories around
// without including torch.
#ifndef RMT_MODEL_HOST_TENSOR_H_
#define RMT_MODEL_HOST_TENSOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace rmt {

struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;  // row-major

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace rmt

#endif  // RMT_MODEL_HOST_TENSOR_H_
