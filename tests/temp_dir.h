// A fresh directory per test for the files it writes. ctest -j runs every
// test as its own process at once, all sharing ::testing::TempDir() (/tmp/):
// a fixed file name there lets one test truncate what another is reading.
#ifndef RMT_TESTS_TEMP_DIR_H_
#define RMT_TESTS_TEMP_DIR_H_

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"

namespace rmt::testing {

// Makes <TempDir()>/<prefix>XXXXXX with mkdtemp and removes it, with all it
// holds, when it goes out of scope. If mkdtemp fails, the constructor adds a
// test failure naming the errno, and path() and File() are empty (so nothing
// gets written outside the directory).
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix = "rmt_test_") {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / (prefix + "XXXXXX"))
            .string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      const int error = errno;
      ADD_FAILURE() << "mkdtemp(" << pattern
                    << ") failed: " << std::strerror(error);
      return;
    }
    path_ = pattern;
  }
  ~ScopedTempDir() {
    if (path_.empty()) return;
    std::error_code ignored;  // best effort; a leftover temp dir is harmless
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

  // `name` inside the directory: path() + "/" + name.
  std::string File(const std::string& name) const {
    return path_.empty() ? std::string() : path_ + "/" + name;
  }

 private:
  std::string path_;
};

}  // namespace rmt::testing

#endif  // RMT_TESTS_TEMP_DIR_H_
