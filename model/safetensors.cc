#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace rmt {
namespace {

using Json = nlohmann::json;

// A real header is a few hundred bytes per tensor; anything near this limit
// is a corrupt length field, and refusing it early avoids parsing (and
// allocating for) garbage.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr absl::string_view kMetadataKey = "__metadata__";
// The spec recommends padding the header so the data region starts 8-byte
// aligned; readers can then use the mapped bytes of any dtype in place.
constexpr size_t kDataAlignment = 8;

// Debian's abseil is built with its own absl::string_view
// (ABSL_OPTION_USE_STD_STRING_VIEW 0), which absl::StrCat cannot take from a
// absl::string_view; this bridges the two.
absl::string_view Absl(absl::string_view text) {
  return absl::string_view(text.data(), text.size());
}

absl::Status FileError(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(Absl(path), ": ", Absl(message)));
}

absl::Status ErrnoError(int error_number, absl::string_view path,
                        absl::string_view action) {
  return absl::ErrnoToStatus(error_number,
                             absl::StrCat(Absl(path), ": ", Absl(action)));
}

bool ParseDType(const std::string& name, DType* dtype) {
  for (DType candidate :
       {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    if (name == DTypeName(candidate)) {
      *dtype = candidate;
      return true;
    }
  }
  return false;
}

// Reads a non-negative JSON integer that fits in int64 (shapes and offsets
// are int64 on every consumer, torch included).
bool NonNegativeInt(const Json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
  } else if (value.is_number_integer()) {
    const int64_t signed_value = value.get<int64_t>();
    if (signed_value < 0) return false;
    *out = static_cast<uint64_t>(signed_value);
  } else {
    return false;
  }
  return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

struct Extent {
  uint64_t begin;
  uint64_t end;
  const std::string* name;
};

// Validates one header entry; fills `view` (all but its data pointer, which
// the caller sets from the mapping) and `extent` (its byte range within the
// data region).
absl::Status ParseEntry(absl::string_view path, const std::string& name,
                        const Json& entry, uint64_t data_size, TensorView* view,
                        Extent* extent) {
  const std::string where = absl::StrCat("tensor \"", name, "\"");
  if (!entry.is_object()) {
    return FileError(path, absl::StrCat(where, " is not a JSON object"));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) {
      return FileError(path, absl::StrCat(where, " is missing \"", key, "\""));
    }
  }

  const Json& dtype = entry["dtype"];
  if (!dtype.is_string() ||
      !ParseDType(dtype.get<std::string>(), &view->dtype)) {
    return FileError(path,
                     absl::StrCat(where, " has unknown dtype ", dtype.dump(),
                                  " (supported: F32, F16, BF16, I32, "
                                  "I64)"));
  }

  const Json& shape = entry["shape"];
  if (!shape.is_array()) {
    return FileError(path, absl::StrCat(where, " has shape ", shape.dump(),
                                        ", not an array"));
  }
  // numel is bounded by the data region, so any overflow past it is simply
  // "too large"; tracking that avoids undefined multiplication overflow.
  uint64_t numel = 1;
  bool numel_overflow = false;
  bool has_zero_dim = false;
  view->shape.clear();
  for (const Json& dim : shape) {
    uint64_t size = 0;
    if (!NonNegativeInt(dim, &size)) {
      return FileError(path, absl::StrCat(where, " has shape ", shape.dump(),
                                          "; dimensions must be non-negative "
                                          "integers"));
    }
    view->shape.push_back(static_cast<int64_t>(size));
    if (size == 0) {
      has_zero_dim = true;
    } else if (numel > std::numeric_limits<uint64_t>::max() / size) {
      numel_overflow = true;
    }
    numel *= size;
  }
  // A zero dimension makes the tensor empty whatever the other dimensions.
  // (Not `numel == 0`: an overflowing product can wrap to exactly zero.)
  if (has_zero_dim) {
    numel = 0;
    numel_overflow = false;
  }

  const Json& offsets = entry["data_offsets"];
  uint64_t begin = 0;
  uint64_t end = 0;
  if (!offsets.is_array() || offsets.size() != 2 ||
      !NonNegativeInt(offsets[0], &begin) ||
      !NonNegativeInt(offsets[1], &end) || begin > end) {
    return FileError(path,
                     absl::StrCat(where, " has data_offsets ", offsets.dump(),
                                  "; expected [begin, end] with "
                                  "0 <= begin <= end"));
  }
  if (end > data_size) {
    return FileError(
        path, absl::StrCat(where, " has data_offsets end ", end,
                           " beyond the data region of ", data_size, " bytes"));
  }
  const uint64_t element_size = DTypeSize(view->dtype);
  if (numel_overflow ||
      numel > std::numeric_limits<uint64_t>::max() / element_size ||
      end - begin != numel * element_size) {
    return FileError(
        path, absl::StrCat(where, " spans ", end - begin, " bytes but shape ",
                           shape.dump(), " of ", Absl(DTypeName(view->dtype)),
                           " needs numel x ", element_size, " bytes"));
  }
  view->nbytes = static_cast<size_t>(end - begin);
  *extent = Extent{begin, end, &name};
  return absl::OkStatus();
}

absl::Status ParseMetadata(absl::string_view path, const Json& value,
                           std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) {
    return FileError(path, "\"__metadata__\" must be an object of strings");
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return FileError(path,
                       absl::StrCat("\"__metadata__\"[\"", key,
                                    "\"] must be a string, got ", item.dump()));
    }
    (*metadata)[key] = item.get<std::string>();
  }
  return absl::OkStatus();
}

// Sorted by begin, so one pass with the furthest end seen so far finds any
// overlap. Empty tensors own no bytes and cannot overlap.
absl::Status CheckNoOverlap(absl::string_view path,
                            std::vector<Extent> extents) {
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  const Extent* furthest = nullptr;
  for (const Extent& extent : extents) {
    if (extent.begin == extent.end) continue;
    if (furthest != nullptr && extent.begin < furthest->end) {
      return FileError(
          path, absl::StrCat("tensors \"", *furthest->name, "\" and \"",
                             *extent.name, "\" overlap in the data region"));
    }
    if (furthest == nullptr || extent.end > furthest->end) furthest = &extent;
  }
  return absl::OkStatus();
}

// Writes all of `bytes`, retrying short writes and EINTR.
absl::Status WriteAll(int fd, const void* bytes, size_t size,
                      absl::string_view path) {
  const char* cursor = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t written = ::write(fd, cursor, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, "write failed");
    }
    cursor += written;
    size -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& header,
                                 const std::vector<TensorView>& ordered) {
  const std::string tmp_path = path + ".tmp";
  const int fd =
      ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, tmp_path, "cannot create");

  const uint64_t header_size = header.size();
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = (header_size >> (8 * i)) & 0xff;
  absl::Status status = WriteAll(fd, length, sizeof(length), tmp_path);
  if (status.ok())
    status = WriteAll(fd, header.data(), header.size(), tmp_path);
  for (const TensorView& view : ordered) {
    if (!status.ok()) break;
    status = WriteAll(fd, view.data, view.nbytes, tmp_path);
  }
  // fsync before rename: otherwise a crash can leave the new name pointing
  // at a file whose data never reached the disk.
  if (status.ok() && ::fsync(fd) != 0) {
    status = ErrnoError(errno, tmp_path, "fsync failed");
  }
  if (::close(fd) != 0 && status.ok()) {
    status = ErrnoError(errno, tmp_path, "close failed");
  }
  if (status.ok() && std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, path, "rename from .tmp failed");
  }
  if (!status.ok()) ::unlink(tmp_path.c_str());
  return status;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kI64:
      return 8;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
  }
  return "?";
}

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, path, "cannot open");
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoError(error, path, "cannot stat");
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return FileError(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    return FileError(path, absl::StrCat("file is ", file_size,
                                        " bytes, shorter than the 8-byte "
                                        "header length"));
  }

  // Constructed before mmap so that every later error path unmaps through
  // the destructor.
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* mapping =
      ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, /*offset=*/0);
  const int mmap_error = errno;
  // The mapping keeps the file alive; the descriptor is no longer needed.
  ::close(fd);
  if (mapping == MAP_FAILED) return ErrnoError(mmap_error, path, "mmap failed");
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;
  const auto* bytes = static_cast<const unsigned char*>(mapping);

  // Little-endian by the spec, assembled byte by byte so the host's
  // endianness does not matter.
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes) {
    return FileError(
        path, absl::StrCat("header length ", header_size, " is absurd (limit ",
                           kMaxHeaderBytes, " bytes); the file is corrupt"));
  }
  if (header_size > file_size - 8) {
    return FileError(path, absl::StrCat("header length ", header_size,
                                        " exceeds the ", file_size - 8,
                                        " bytes after the length field; the "
                                        "file is truncated or corrupt"));
  }

  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  Json header = Json::parse(header_begin, header_begin + header_size,
                            /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return FileError(path, "header is not valid JSON");
  }
  if (!header.is_object()) {
    return FileError(path, "header is not a JSON object");
  }

  const unsigned char* data = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;
  std::vector<Extent> extents;
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      RETURN_IF_ERROR(ParseMetadata(path, entry, &file->metadata_));
      continue;
    }
    // The key lives in `file->tensors_`, so Extent's name pointer stays valid.
    auto it = file->tensors_.emplace(name, TensorView()).first;
    Extent extent;
    RETURN_IF_ERROR(
        ParseEntry(path, it->first, entry, data_size, &it->second, &extent));
    it->second.data = data + extent.begin;
    extents.push_back(extent);
  }
  RETURN_IF_ERROR(CheckNoOverlap(path, std::move(extents)));
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

absl::StatusOr<TensorView> SafetensorsFile::Get(absl::string_view name) const {
  auto it = tensors_.find(std::string(name));
  if (it == tensors_.end()) {
    return absl::NotFoundError(
        absl::StrCat(path_, ": no tensor named \"", Absl(name), "\""));
  }
  return it->second;
}

absl::Status WriteSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, TensorView>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  // Sorted by name, so the same tensors always produce the same bytes.
  std::map<std::string, const TensorView*> by_name;
  for (const auto& [name, view] : tensors) {
    if (name.empty()) return FileError(path, "tensor name is empty");
    if (name == kMetadataKey) {
      return FileError(path, "\"__metadata__\" is reserved, not a tensor name");
    }
    for (int64_t dim : view.shape) {
      if (dim < 0) {
        return FileError(path, absl::StrCat("tensor \"", name,
                                            "\" has a negative dimension"));
      }
    }
    if (view.nbytes !=
        static_cast<size_t>(view.numel()) * DTypeSize(view.dtype)) {
      return FileError(path,
                       absl::StrCat("tensor \"", name, "\" has ", view.nbytes,
                                    " bytes but numel ", view.numel(), " x ",
                                    DTypeSize(view.dtype)));
    }
    if (view.nbytes > 0 && view.data == nullptr) {
      return FileError(path, absl::StrCat("tensor \"", name, "\" has no data"));
    }
    if (!by_name.emplace(name, &view).second) {
      return FileError(path,
                       absl::StrCat("duplicate tensor name \"", name, "\""));
    }
  }

  Json header = Json::object();
  std::vector<TensorView> ordered;
  uint64_t offset = 0;
  for (const auto& [name, view] : by_name) {
    header[name] = {{"dtype", std::string(DTypeName(view->dtype))},
                    {"shape", view->shape},
                    {"data_offsets", {offset, offset + view->nbytes}}};
    offset += view->nbytes;
    ordered.push_back(*view);
  }
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const Json::type_error&) {
    // dump() throws only for strings that are not UTF-8, which JSON forbids.
    return FileError(path, "a tensor name or metadata string is not UTF-8");
  }
  header_text.append(
      (kDataAlignment - header_text.size() % kDataAlignment) % kDataAlignment,
      ' ');
  return WriteFileAtomically(path, header_text, ordered);
}

}  // namespace rmt
