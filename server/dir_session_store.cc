#include "server/dir_session_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/status_macros.h"
#include "server/session_manager.h"

namespace rmt::server {
namespace {

// File layout: kMagic, expiry (Unix microseconds, int64 little endian), the
// length of the bytes (uint64 little endian), the bytes. The length lets a
// reader tell a whole file from a truncated one.
constexpr char kMagic[8] = {'R', 'M', 'T', 'S', 'T', 'O', 'R', '1'};
constexpr size_t kHeaderSize = sizeof(kMagic) + 8 + 8;
constexpr absl::string_view kTempSuffix = ".tmp";

absl::Status IoError(absl::string_view what, absl::string_view path, int err) {
  return absl::UnavailableError(absl::StrCat(
      "session store: cannot ", what, " ", path, ": ", std::strerror(err),
      "; check that the --session_store directory exists, is writable by "
      "the server and that its disk is not full"));
}

void EncodeFixed64(uint64_t value, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

uint64_t DecodeFixed64(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  return value;
}

// 0 or the errno of the failing write.
int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Reads up to `size` bytes (fewer only at end of file) into `data`; 0 or
// the errno of the failing read.
int ReadAll(int fd, char* data, size_t size, size_t* got) {
  *got = 0;
  while (*got < size) {
    ssize_t n = ::read(fd, data + *got, size - *got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    *got += static_cast<size_t>(n);
  }
  return 0;
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  // Closes now, so that the caller sees close's error (NFS reports write
  // errors there). 0 or errno.
  int Close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

struct Header {
  absl::Time expires;
  uint64_t length = 0;
};

// An open entry file: its header, and the descriptor positioned after it.
struct OpenedEntry {
  std::unique_ptr<UniqueFd> fd;
  Header header;
};

class DirSessionStore final : public SessionStore {
 public:
  DirSessionStore(std::string path, int dir_fd,
                  const SessionStoreOptions& options)
      : path_(std::move(path)), dir_fd_(dir_fd), options_(options) {}
  ~DirSessionStore() override { ::close(dir_fd_); }

  absl::Status Put(const std::string& id, absl::string_view bytes,
                   absl::Duration ttl) override ABSL_LOCKS_EXCLUDED(mu_) {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    RETURN_IF_ERROR(CheckSessionStoreTtl(ttl));
    char header[kHeaderSize];
    std::memcpy(header, kMagic, sizeof(kMagic));
    EncodeFixed64(
        static_cast<uint64_t>(absl::ToUnixMicros(options_.clock() + ttl)),
        header + sizeof(kMagic));
    EncodeFixed64(bytes.size(), header + sizeof(kMagic) + 8);

    // Unique per process and call, hidden, and never a well-formed id.
    const std::string temp = absl::StrCat(
        ".", id, ".", ::getpid(), ".", temp_counter_.fetch_add(1), kTempSuffix);
    UniqueFd fd(::openat(dir_fd_, temp.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return IoError("create a file in", path_, errno);
    int err = WriteAll(fd.get(), header, kHeaderSize);
    if (err == 0) err = WriteAll(fd.get(), bytes.data(), bytes.size());
    if (err == 0 && ::fsync(fd.get()) != 0) err = errno;
    if (err == 0) err = fd.Close();
    if (err == 0) {
      absl::MutexLock lock(&mu_);
      if (::renameat(dir_fd_, temp.c_str(), dir_fd_, id.c_str()) != 0) {
        err = errno;
      }
    }
    if (err != 0) {
      ::unlinkat(dir_fd_, temp.c_str(), 0);
      return IoError("write a snapshot to", path_, err);
    }
    // The rename is durable only once the directory is.
    if (::fsync(dir_fd_) != 0) return IoError("sync", path_, errno);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& id) override {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    ASSIGN_OR_RETURN(OpenedEntry entry, Open(id));
    if (options_.clock() >= entry.header.expires) return Absent(id);
    std::string bytes(entry.header.length, '\0');
    size_t got = 0;
    if (int err = ReadAll(entry.fd->get(), bytes.data(), bytes.size(), &got);
        err != 0) {
      return IoError("read", FileName(id), err);
    }
    if (got != bytes.size()) return Damaged(id, "shorter than its header says");
    return bytes;
  }

  absl::Status Delete(const std::string& id) override ABSL_LOCKS_EXCLUDED(mu_) {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    absl::MutexLock lock(&mu_);
    if (::unlinkat(dir_fd_, id.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("delete", FileName(id), errno);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> RemoveExpired() override ABSL_LOCKS_EXCLUDED(mu_) {
    const absl::Time now = options_.clock();
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(path_, ec), end;
         !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return IoError("list", path_, ec.value());

    int removed = 0;
    for (const std::string& name : names) {
      if (IsWellFormedSessionId(name)) {
        absl::MutexLock lock(&mu_);
        absl::StatusOr<OpenedEntry> entry = Open(name);
        // Absent: deleted since the listing. Unreachable: try next time.
        if (absl::IsNotFound(entry.status()) ||
            absl::IsUnavailable(entry.status())) {
          continue;
        }
        // What is left is expired or damaged (DATA_LOSS: never readable).
        if (entry.ok() && now < entry->header.expires) continue;
        if (::unlinkat(dir_fd_, name.c_str(), 0) == 0) ++removed;
      } else if (absl::StartsWith(name, ".") &&
                 absl::EndsWith(name, kTempSuffix)) {
        struct stat st;
        if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - absl::TimeFromTimespec(st.st_mtim) >=
                options_.dir_stale_temp_age &&
            ::unlinkat(dir_fd_, name.c_str(), 0) == 0) {
          ++removed;
        }
      }
    }
    return removed;
  }

  std::string Describe() const override { return absl::StrCat("dir:", path_); }

 private:
  std::string FileName(const std::string& id) const {
    return absl::StrCat(path_, "/", id);
  }

  absl::Status Absent(const std::string& id) const {
    return absl::NotFoundError(
        absl::StrCat("session store: no snapshot of session ", id));
  }

  absl::Status Damaged(const std::string& id, absl::string_view why) const {
    return absl::DataLossError(
        absl::StrCat("session store: ", FileName(id), " is damaged (", why,
                     "); the session cannot be restored"));
  }

  // Opens the entry and reads its header. NOT_FOUND when there is no file,
  // DATA_LOSS when its header does not parse; does not look at expiry.
  absl::StatusOr<OpenedEntry> Open(const std::string& id) const {
    auto fd = std::make_unique<UniqueFd>(
        ::openat(dir_fd_, id.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd->get() < 0) {
      if (errno == ENOENT) return Absent(id);
      return IoError("open", FileName(id), errno);
    }
    struct stat st;
    if (::fstat(fd->get(), &st) != 0)
      return IoError("stat", FileName(id), errno);
    if (!S_ISREG(st.st_mode)) return Damaged(id, "not a regular file");
    char header[kHeaderSize];
    size_t got = 0;
    if (int err = ReadAll(fd->get(), header, kHeaderSize, &got); err != 0) {
      return IoError("read", FileName(id), err);
    }
    if (got != kHeaderSize ||
        std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
      return Damaged(id, "not written by this store");
    }
    OpenedEntry entry;
    entry.header.expires = absl::FromUnixMicros(
        static_cast<int64_t>(DecodeFixed64(header + sizeof(kMagic))));
    entry.header.length = DecodeFixed64(header + sizeof(kMagic) + 8);
    if (entry.header.length !=
        static_cast<uint64_t>(st.st_size) - kHeaderSize) {
      return Damaged(id, "its length does not match its header");
    }
    entry.fd = std::move(fd);
    return entry;
  }

  // Constant after construction.
  const std::string path_;  // absolute
  const int dir_fd_;        // the directory, for the *at calls and fsync
  const SessionStoreOptions options_;

  std::atomic<uint64_t> temp_counter_{0};
  // Serialises renames and unlinks (see the header comment).
  absl::Mutex mu_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> OpenDirSessionStore(
    const std::string& path, const SessionStoreOptions& options) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return IoError("resolve", path, ec.value());
  absolute = absolute.lexically_normal();
  if (absolute.has_filename() == false && absolute.has_parent_path() &&
      absolute != absolute.root_path()) {
    absolute = absolute.parent_path();  // "a/b/" -> "a/b"
  }
  if (std::filesystem::create_directories(absolute, ec)) {
    // Snapshots hold what the documents said: keep them from other users.
    std::filesystem::permissions(absolute, std::filesystem::perms::owner_all,
                                 ec);
  }
  if (ec) return IoError("create", absolute.string(), ec.value());
  int dir_fd = ::open(absolute.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return IoError("open", absolute.string(), errno);
  return std::make_unique<DirSessionStore>(absolute.string(), dir_fd, options);
}

}  // namespace rmt::server
