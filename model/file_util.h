// Whole-file reads and writes, the one way the project reads a small file
// into memory (configs, vocabularies, keys, certificates, token lists,
// documents) or writes one out (a model directory's JSON files).
//
//   ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
//   RETURN_IF_ERROR(WriteStringToFile(path, text));
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

// Replaces the file with `text`. INTERNAL (naming the path) on failure.
absl::Status WriteStringToFile(const std::string& path,
                               const std::string& text);

}  // namespace rmt

#endif  // RMT_MODEL_FILE_UTIL_H_
