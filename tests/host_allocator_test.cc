#include "model/host_allocator.h"

#include <gtest/gtest.h>

namespace rmt {
namespace {

// glibc refuses out-of-range values (an mmap threshold above 32 MiB on
// 64-bit, say); the settings must all be accepted to have any effect.
TEST(HostAllocatorTest, GlibcAcceptsTheSettings) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer's allocator replaces glibc's malloc";
#elif defined(__GLIBC__)
  EXPECT_TRUE(KeepTensorBuffersMapped());
#else
  EXPECT_FALSE(KeepTensorBuffersMapped());
#endif
}

}  // namespace
}  // namespace rmt
