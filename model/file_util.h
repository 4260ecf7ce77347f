// Whole-file reads, the one way the project reads a small file into memory
// (configs, vocabularies, keys, certificates, token lists, documents).
//
//   ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
//
// Thread-safety: stateless.
#ifndef RMT_MODEL_FILE_UTIL_H_
#define RMT_MODEL_FILE_UTIL_H_

#include <string>

#include "absl/status/statusor.h"

namespace rmt {

// The file's bytes. NOT_FOUND (naming the path) when it cannot be opened,
// DATA_LOSS when reading fails part-way.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace rmt

#endif  // RMT_MODEL_FILE_UTIL_H_
