#include "server/memory_session_store.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/status_macros.h"

namespace rmt::server {
namespace {

class MemorySessionStore final : public SessionStore {
 public:
  explicit MemorySessionStore(const SessionStoreOptions& options)
      : clock_(options.clock) {}

  absl::Status Put(const std::string& id, absl::string_view bytes,
                   absl::Duration ttl) override ABSL_LOCKS_EXCLUDED(mu_) {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    RETURN_IF_ERROR(CheckSessionStoreTtl(ttl));
    // Copy before locking: a snapshot is megabytes.
    Entry entry{std::make_shared<const std::string>(bytes), clock_() + ttl};
    absl::MutexLock lock(&mu_);
    entries_[id] = std::move(entry);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& id) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    const absl::Time now = clock_();
    std::shared_ptr<const std::string> bytes;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(id);
      if (it != entries_.end() && now < it->second.expires) {
        bytes = it->second.bytes;
      }
    }
    if (bytes == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("session store: no snapshot of session ", id));
    }
    return *bytes;
  }

  absl::Status Delete(const std::string& id) override ABSL_LOCKS_EXCLUDED(mu_) {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    absl::MutexLock lock(&mu_);
    entries_.erase(id);
    return absl::OkStatus();
  }

  absl::StatusOr<int> RemoveExpired() override ABSL_LOCKS_EXCLUDED(mu_) {
    const absl::Time now = clock_();
    int removed = 0;
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now >= it->second.expires) {
        entries_.erase(it++);
        ++removed;
      } else {
        ++it;
      }
    }
    return removed;
  }

  std::string Describe() const override { return "memory"; }

 private:
  struct Entry {
    std::shared_ptr<const std::string> bytes;
    absl::Time expires;
  };

  // Constant after construction.
  const std::function<absl::Time()> clock_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<SessionStore> NewMemorySessionStore(
    const SessionStoreOptions& options) {
  return std::make_unique<MemorySessionStore>(options);
}

}  // namespace rmt::server
