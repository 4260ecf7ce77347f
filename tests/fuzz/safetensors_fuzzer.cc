// Fuzzes SafetensorsFile::Open on arbitrary file contents. Invariants for a
// file it accepts: every view lies inside the mapping and its byte count is
// numel x dtype size; and writing the tensors back with WriteSafetensors and
// reopening gives the same tensors and metadata.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// A directory of this process's own in shared memory: the round trip writes
// files (WriteSafetensors renames a temporary into place) and fsyncs them,
// which costs nothing on tmpfs.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    char pattern[] = "/dev/shm/rmt_safetensors_fuzz_XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    return new std::string(pattern);
  }();
  return *dir;
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  FILE* file = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(file != nullptr);
  FUZZ_CHECK(std::fwrite(data, 1, size, file) == size);
  FUZZ_CHECK(std::fclose(file) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input_path = ScratchDir() + "/input.safetensors";
  const std::string output_path = ScratchDir() + "/output.safetensors";
  WriteFile(input_path, data, size);
  auto file = rmt::SafetensorsFile::Open(input_path);
  if (!file.ok()) return 0;

  std::vector<std::pair<std::string, rmt::TensorView>> views;
  for (const auto& [name, view] : (*file)->tensors()) {
    FUZZ_CHECK(view.nbytes ==
               static_cast<size_t>(view.numel()) * rmt::DTypeSize(view.dtype));
    const auto* mapped = static_cast<const unsigned char*>(view.data);
    FUZZ_CHECK(view.nbytes <= size);
    if (view.nbytes > 0) {
      // Touch the first and last byte: ASan flags a view outside the mapping
      // only if it is read, and a SIGSEGV/SIGBUS is a crash too.
      volatile unsigned char first = mapped[0];
      volatile unsigned char last = mapped[view.nbytes - 1];
      (void)first;
      (void)last;
    }
    views.emplace_back(name, view);
  }

  // WriteSafetensors refuses empty names (the format allows them on read);
  // the round trip covers the files it can write.
  for (const auto& [name, view] : views) {
    if (name.empty()) return 0;
  }
  const absl::Status written =
      rmt::WriteSafetensors(output_path, views, (*file)->metadata());
  if (!written.ok()) {
    // Only names or metadata that are not UTF-8 may be refused: JSON
    // readers accept such bytes, JSON writers cannot produce them.
    FUZZ_CHECK(std::string(written.message()).find("UTF-8") !=
               std::string::npos);
    return 0;
  }
  auto reread = rmt::SafetensorsFile::Open(output_path);
  FUZZ_CHECK(reread.ok());
  FUZZ_CHECK((*reread)->metadata() == (*file)->metadata());
  FUZZ_CHECK((*reread)->tensors().size() == (*file)->tensors().size());
  for (const auto& [name, view] : (*file)->tensors()) {
    auto again = (*reread)->Get(name);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->dtype == view.dtype);
    FUZZ_CHECK(again->shape == view.shape);
    FUZZ_CHECK(again->nbytes == view.nbytes);
    FUZZ_CHECK(view.nbytes == 0 ||
               std::memcmp(again->data, view.data, view.nbytes) == 0);
  }
  return 0;
}
