// Reading and writing the safetensors format without depending on torch.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//    "__metadata__": {"key": "value"}}
// and the tensor bytes. SafetensorsFile memory-maps the file, so views stay
// valid for the object's lifetime and loading copies nothing twice.
//
//   ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open("model.safetensors"));
//   ASSIGN_OR_RETURN(TensorView w, file->Get("classifier.weight"));
//
// Thread-safety: a SafetensorsFile is immutable after Open; share freely.
#ifndef RMT_MODEL_SAFETENSORS_H_
#define RMT_MODEL_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rmt {

enum class DType { kF32, kF16, kBF16, kI32, kI64 };

size_t DTypeSize(DType dtype);
// The safetensors spelling: "F32", "F16", "BF16", "I32", "I64".
absl::string_view DTypeName(DType dtype);

// A tensor's bytes in row-major (C) order, not owned.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header: its length against the file,
  // JSON syntax, dtypes, shapes, and that every tensor's data_offsets lie
  // inside the data region, match shape x dtype size and do not overlap.
  // Errors are INVALID_ARGUMENT (NOT_FOUND for a missing file) and name the
  // file and the problem.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // All tensors by name (sorted).
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  // NOT_FOUND naming the file and the tensor when absent.
  absl::StatusOr<TensorView> Get(absl::string_view name) const;

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (name, view) and string `metadata` to `path` atomically
// (a temporary file renamed into place). Names must be unique and non-empty.
absl::Status WriteSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, TensorView>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace rmt

#endif  // RMT_MODEL_SAFETENSORS_H_
