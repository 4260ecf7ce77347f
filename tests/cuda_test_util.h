// Shared by the GPU tests (built with RMT_CUDA): skip without a GPU.
#ifndef RMT_TESTS_CUDA_TEST_UTIL_H_
#define RMT_TESTS_CUDA_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

// Skips the calling test (or fixture SetUp) when no CUDA device is visible,
// saying so. With one, turns TF32 off, so fp32 matrix products are fp32:
// Ampere and later otherwise run them with TF32's 10-bit mantissa (about
// 1e-3 relative), far from the 1e-5 the parity tests hold.
#define RMT_REQUIRE_CUDA()                                                   \
  do {                                                                       \
    if (!torch::cuda::is_available()) {                                      \
      GTEST_SKIP() << "no CUDA device visible (torch::cuda::is_available() " \
                      "is false): this GPU test runs only on a machine "     \
                      "with one (scripts/gpu.sh)";                           \
    }                                                                        \
    at::globalContext().setAllowTF32CuBLAS(false);                           \
    at::globalContext().setAllowTF32CuDNN(false);                            \
  } while (0)

#endif  // RMT_TESTS_CUDA_TEST_UTIL_H_
