#include "server/session_persistence.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "model/status_macros.h"
#include "server/log.h"

namespace rmt::server {
namespace {

constexpr size_t kDigestSize = SHA256_DIGEST_LENGTH;

std::string OwnerDigest(const std::string& owner) {
  std::string digest(kDigestSize, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(owner.data()), owner.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

absl::Status UnknownSession(const std::string& id) {
  return absl::NotFoundError(absl::StrCat(
      "no session ", id,
      " (it was closed, expired, or never existed); create a new one"));
}

}  // namespace

std::string StoreEntry(const std::string& owner, absl::string_view snapshot) {
  return absl::StrCat(OwnerDigest(owner), snapshot);
}

absl::StatusOr<std::string> SnapshotOfEntry(const std::string& owner,
                                            absl::string_view entry) {
  if (entry.size() < kDigestSize) {
    return absl::DataLossError("the stored entry is too short to be one");
  }
  const std::string digest = OwnerDigest(owner);
  if (CRYPTO_memcmp(digest.data(), entry.data(), kDigestSize) != 0) {
    return absl::NotFoundError("the stored session has another owner");
  }
  return std::string(entry.substr(kDigestSize));
}

SessionPersistence::SessionPersistence(std::unique_ptr<SessionStore> store,
                                       const SnapshotKey* key,
                                       SessionStoreObserver* observer,
                                       const SessionPersistenceOptions& options)
    : store_(std::move(store)),
      key_(key),
      observer_(observer),
      options_(options) {}

SessionPersistence::~SessionPersistence() = default;

absl::StatusOr<SessionState> SessionPersistence::Load(
    const std::string& id, const std::string& owner) {
  const auto done = [&](StoreRestoreResult result) {
    if (observer_ != nullptr) observer_->OnStoreRestore(result);
  };
  {
    absl::MutexLock lock(&mu_);
    if (deleting_.contains(id)) {
      done(StoreRestoreResult::kNotFound);
      return UnknownSession(id);
    }
  }
  absl::StatusOr<std::string> entry = store_->Get(id);
  absl::StatusOr<std::string> snapshot =
      entry.ok() ? SnapshotOfEntry(owner, *entry) : entry.status();
  if (!snapshot.ok()) {
    switch (snapshot.status().code()) {
      case absl::StatusCode::kNotFound:
        done(StoreRestoreResult::kNotFound);
        return UnknownSession(id);
      case absl::StatusCode::kUnavailable:
        done(StoreRestoreResult::kError);
        LogEvent("session_restore_failed",
                 {{"session", id}, {"error", snapshot.status().ToString()}},
                 "warning");
        return absl::UnavailableError(absl::StrCat(
            "session ", id,
            " is not on this replica and the session store is "
            "unavailable (",
            snapshot.status().message(), "); retry in a few seconds"));
      default:
        break;  // DATA_LOSS and the like: below
    }
  }
  absl::StatusOr<SessionState> state =
      snapshot.ok() ? DecodeSnapshot(*snapshot, *key_) : snapshot.status();
  if (!state.ok()) {
    done(StoreRestoreResult::kError);
    LogEvent("session_restore_failed",
             {{"session", id}, {"error", state.status().ToString()}}, "error");
    return absl::DataLossError(
        absl::StrCat("session ", id, " is stored but cannot be restored (",
                     state.status().message(),
                     "); create a new session and send the document again"));
  }
  done(StoreRestoreResult::kOk);
  return state;
}

absl::StatusOr<bool> SessionPersistence::Contains(const std::string& id) {
  absl::StatusOr<std::string> entry = store_->Get(id);
  if (entry.ok()) return true;
  if (absl::IsNotFound(entry.status())) return false;
  if (absl::IsUnavailable(entry.status())) {
    return absl::UnavailableError(
        absl::StrCat("the session store is unavailable (",
                     entry.status().message(), "); retry in a few seconds"));
  }
  return entry.status();
}

void SessionPersistence::Track(const std::shared_ptr<Session>& session,
                               bool written) {
  absl::MutexLock lock(&mu_);
  Tracked& tracked = tracked_[session->id()];
  tracked.session = session;
  tracked.segments_written =
      written ? session->Progress().segments_processed : 0;
  tracked.write_wanted = !written;
}

void SessionPersistence::SaveSoon(const std::shared_ptr<Session>& session) {
  absl::MutexLock lock(&mu_);
  auto it = tracked_.find(session->id());
  if (it == tracked_.end()) return;  // closed meanwhile
  it->second.write_wanted = true;
  QueueWriteLocked(session->id(), session);
}

void SessionPersistence::QueueWriteLocked(const std::string& id,
                                          std::shared_ptr<Session> session) {
  Tracked& tracked = tracked_[id];
  if (tracked.write_queued) return;
  tracked.write_queued = true;
  writer_.Post([this, session = std::move(session)] { Write(session); });
}

void SessionPersistence::OnReap(
    const std::vector<std::shared_ptr<Session>>& sessions, absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<Session>& session : sessions) {
    auto it = tracked_.find(session->id());
    if (it == tracked_.end() || it->second.write_queued || session->leased()) {
      continue;
    }
    const SessionProgress progress = session->Progress();
    if (progress.segments_pending > 0 || progress.questions_pending > 0) {
      continue;  // not idle: the export would have to wait
    }
    if (it->second.write_wanted ||
        progress.segments_processed - it->second.segments_written >=
            options_.checkpoint_every_segments) {
      it->second.write_wanted = true;
      QueueWriteLocked(session->id(), session);
    }
  }
  if (now - last_remove_expired_ >= options_.remove_expired_every) {
    last_remove_expired_ = now;
    writer_.Post([this] {
      absl::StatusOr<int> removed = store_->RemoveExpired();
      if (!removed.ok()) {
        LogEvent("session_store_cleanup_failed",
                 {{"error", removed.status().ToString()}}, "warning");
      }
    });
  }
}

void SessionPersistence::SaveAllAndWait(
    const std::vector<std::shared_ptr<Session>>& sessions) {
  {
    absl::MutexLock lock(&mu_);
    for (const std::shared_ptr<Session>& session : sessions) {
      auto it = tracked_.find(session->id());
      if (it == tracked_.end()) continue;
      it->second.write_wanted = true;
      QueueWriteLocked(session->id(), session);
    }
  }
  absl::Notification written;
  writer_.Post([&written] { written.Notify(); });
  written.WaitForNotification();
}

void SessionPersistence::Write(const std::shared_ptr<Session>& session) {
  const std::string& id = session->id();
  {
    absl::MutexLock lock(&mu_);
    auto it = tracked_.find(id);
    // Closed meanwhile: its delete is queued behind this task.
    if (it == tracked_.end()) return;
    it->second.write_queued = false;
  }
  absl::StatusOr<SessionState> state = session->Export();
  if (!state.ok()) {
    // Still reading: the reaper writes it once idle (write_wanted stays).
    // A failed session is not worth writing: it refuses every call.
    if (state.status().code() != absl::StatusCode::kFailedPrecondition) {
      absl::MutexLock lock(&mu_);
      if (auto it = tracked_.find(id); it != tracked_.end()) {
        it->second.write_wanted = false;
      }
    }
    LogEvent("session_checkpoint_skipped",
             {{"session", id}, {"reason", state.status().ToString()}});
    return;
  }
  if (!Put(*session, state->segments_processed,
           EncodeSnapshot(*state, *key_))) {
    return;  // write_wanted stays: the reaper tries again
  }
  absl::MutexLock lock(&mu_);
  if (auto it = tracked_.find(id); it != tracked_.end()) {
    it->second.write_wanted = false;
  }
}

void SessionPersistence::SaveCheckpoint(const std::shared_ptr<Session>& session,
                                        int64_t segments,
                                        std::string snapshot) {
  absl::MutexLock lock(&mu_);
  if (!tracked_.contains(session->id())) return;  // closed meanwhile
  writer_.Post([this, session, segments, snapshot = std::move(snapshot)] {
    {
      absl::MutexLock lock(&mu_);
      // Closed since: its delete is queued behind this task.
      if (!tracked_.contains(session->id())) return;
    }
    Put(*session, segments, snapshot);
  });
}

bool SessionPersistence::Put(const Session& session, int64_t segments,
                             const std::string& snapshot) {
  const absl::Status put = store_->Put(
      session.id(), StoreEntry(session.owner(), snapshot), options_.ttl);
  if (observer_ != nullptr) observer_->OnStoreWrite(put.ok());
  if (!put.ok()) {
    LogEvent("session_checkpoint_failed",
             {{"session", session.id()}, {"error", put.ToString()}}, "warning");
    return false;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = tracked_.find(session.id()); it != tracked_.end()) {
    it->second.segments_written =
        std::max(it->second.segments_written, segments);
  }
  return true;
}

void SessionPersistence::Forget(const std::string& id, bool delete_entry) {
  absl::MutexLock lock(&mu_);
  tracked_.erase(id);
  if (!delete_entry) return;
  ++deleting_[id];
  writer_.Post([this, id] { Delete(id); });
}

void SessionPersistence::Delete(const std::string& id) {
  const absl::Status deleted = store_->Delete(id);
  if (observer_ != nullptr) observer_->OnStoreDelete(deleted.ok());
  if (!deleted.ok()) {
    // The entry expires with its ttl; until then another replica could
    // restore it.
    LogEvent("session_store_delete_failed",
             {{"session", id}, {"error", deleted.ToString()}}, "warning");
  }
  absl::MutexLock lock(&mu_);
  auto it = deleting_.find(id);
  if (it != deleting_.end() && --it->second == 0) deleting_.erase(it);
}

}  // namespace rmt::server
