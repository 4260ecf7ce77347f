// FUZZ_CHECK: an invariant a fuzz target asserts. Unlike assert() it stays on
// in every build type, and it aborts with the failed condition, which
// libFuzzer reports as a crash and saves the input for.
#ifndef RMT_TESTS_FUZZ_FUZZ_CHECK_H_
#define RMT_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                          \
  do {                                                                 \
    if (!(condition)) {                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #condition);                              \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

#endif  // RMT_TESTS_FUZZ_FUZZ_CHECK_H_
