#include "server/session_manager.h"

#include <openssl/rand.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "model/status_macros.h"
#include "server/log.h"

namespace rmt::server {

bool IsWellFormedSessionId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

SessionManager::SessionManager(const SessionManagerOptions& options,
                               Engine* engine, const ServedModel* model,
                               SessionObserver* observer,
                               SessionListener* listener,
                               std::unique_ptr<SessionPersistence> persistence)
    : options_(options),
      engine_(engine),
      model_(model),
      observer_(observer),
      listener_(listener),
      persistence_(std::move(persistence)) {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

SessionManager::~SessionManager() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  reaper_.join();
  // Its queued writes read memories: they finish before the slots close.
  persistence_.reset();
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    sessions.swap(sessions_);
  }
  for (auto& [id, session] : sessions) {
    engine_->CloseSlot(session->slot()).IgnoreError();
  }
}

std::string SessionManager::NewId() const {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // The OS CSPRNG failing is unrecoverable; never fall back to a weak id.
    LogEvent("fatal", {{"message", "RAND_bytes failed"}}, "error");
    std::abort();
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Create(
    const std::string& owner) {
  absl::MutexLock lock(&mu_);
  std::string id = NewId();
  while (sessions_.contains(id)) id = NewId();
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, CreateLocked(id, owner));
  if (persistence_ != nullptr) persistence_->Track(session, /*written=*/false);
  LogEvent("session_created", {{"session", id}});
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::CreateWithId(
    const std::string& id, const std::string& owner) {
  if (!IsWellFormedSessionId(id)) {
    return absl::InvalidArgumentError(
        "a new session's id is 32 lower-case hex digits (16 random bytes)");
  }
  const auto taken = [&id] {
    return absl::AlreadyExistsError(
        absl::StrCat("session id ", id,
                     " is taken; continue that session, or draw another id"));
  };
  // The store read runs outside mu_; a session restored or created under
  // the id meanwhile is caught below.
  if (persistence_ != nullptr) {
    ASSIGN_OR_RETURN(const bool stored, persistence_->Contains(id));
    if (stored) return taken();
  }
  absl::MutexLock lock(&mu_);
  if (sessions_.contains(id)) return taken();
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, CreateLocked(id, owner));
  if (persistence_ != nullptr) persistence_->Track(session, /*written=*/false);
  LogEvent("session_created", {{"session", id}, {"id_from", "client"}});
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::CreateLocked(
    const std::string& id, const std::string& owner) {
  if (draining_) {
    return absl::UnavailableError(
        "the server is shutting down; open the session on another replica");
  }
  if (static_cast<int>(sessions_.size()) >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its maximum of ", options_.max_sessions,
        " sessions; close sessions you no longer need or retry later"));
  }
  absl::StatusOr<SlotId> slot = engine_->OpenSlot();
  if (!slot.ok()) {
    // Park idle memories in host memory and try once more.
    for (auto& [id, session] : sessions_) {
      if (!session->leased()) engine_->Offload(session->slot()).IgnoreError();
    }
    slot = engine_->OpenSlot();
  }
  if (!slot.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no memory slot is free (", slot.status().message(),
                     "); close sessions you no longer need or retry later"));
  }
  auto session =
      std::make_shared<Session>(id, owner, *slot, engine_, model_, observer_,
                                options_.max_segments_in_engine);
  sessions_[id] = session;
  if (listener_ != nullptr) listener_->OnSessionOpened();
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Restore(
    const std::string& id, const std::string& owner) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return absl::UnavailableError(
          absl::StrCat("the server is shutting down; continue session ", id,
                       " on another replica"));
    }
  }
  // The store read runs on the caller's thread, outside mu_.
  ASSIGN_OR_RETURN(SessionState state, persistence_->Load(id, owner));
  absl::MutexLock lock(&mu_);
  // Another call may have restored it meanwhile.
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    if (it->second->owner() != owner) {
      return absl::NotFoundError(absl::StrCat("no session ", id));
    }
    return it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, CreateLocked(id, owner));
  // Under mu_: no other call sees the session before its state is in.
  absl::Status restored = session->Restore(state);
  if (!restored.ok()) {
    sessions_.erase(id);
    engine_->CloseSlot(session->slot()).IgnoreError();
    if (listener_ != nullptr)
      listener_->OnSessionEnded(SessionOutcome::kFailed);
    LogEvent("session_restore_failed",
             {{"session", id}, {"error", restored.ToString()}}, "error");
    return absl::DataLossError(
        absl::StrCat("session ", id, " is stored but cannot be restored here (",
                     restored.message(),
                     "); create a new session and send the document again"));
  }
  persistence_->Track(session, /*written=*/true);
  const SessionProgress progress = session->Progress();
  LogEvent("session_restored",
           {{"session", id},
            {"store", persistence_->Describe()},
            {"segments", absl::StrCat(progress.segments_processed)},
            {"bytes", absl::StrCat(progress.bytes_received)}});
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Find(
    const std::string& id, const std::string& owner) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        "no session id: set session_id or the x-session-id metadata");
  }
  if (!IsWellFormedSessionId(id)) {
    return absl::InvalidArgumentError(
        "a session id is 32 lower-case hex digits, as CreateSession or "
        "`opened` returned it");
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second->owner() == owner) {
      return it->second;
    }
    if (it != sessions_.end() || persistence_ == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "no session ", id,
          " (it was closed, expired, or never existed); create a new one"));
    }
  }
  return Restore(id, owner);
}

absl::Status SessionManager::Close(const std::string& id,
                                   const std::string& owner,
                                   SessionOutcome outcome) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second->owner() != owner) {
      return absl::NotFoundError(absl::StrCat("no session ", id));
    }
    session = std::move(it->second);
    sessions_.erase(it);
    if (persistence_ != nullptr) {
      persistence_->Forget(id, outcome != SessionOutcome::kExpired);
    }
  }
  engine_->CloseSlot(session->slot()).IgnoreError();
  if (listener_ != nullptr) listener_->OnSessionEnded(outcome);
  const SessionProgress progress = session->Progress();
  LogEvent("session_closed",
           {{"session", id},
            {"outcome", outcome == SessionOutcome::kClosed    ? "closed"
                        : outcome == SessionOutcome::kExpired ? "expired"
                                                              : "failed"},
            {"tokens", absl::StrCat(progress.tokens_received)},
            {"segments", absl::StrCat(progress.segments_processed)},
            {"questions", absl::StrCat(progress.questions_answered)}});
  return absl::OkStatus();
}

void SessionManager::SaveSoon(const std::shared_ptr<Session>& session) {
  if (persistence_ != nullptr) persistence_->SaveSoon(session);
}

int64_t SessionManager::store_checkpoint_every() const {
  return persistence_ != nullptr ? persistence_->checkpoint_every_segments()
                                 : 0;
}

void SessionManager::SaveCheckpoint(const std::shared_ptr<Session>& session,
                                    int64_t segments, std::string snapshot) {
  if (persistence_ != nullptr) {
    persistence_->SaveCheckpoint(session, segments, std::move(snapshot));
  }
}

std::vector<std::shared_ptr<Session>> SessionManager::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Session>> all;
  all.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_) all.push_back(session);
  return all;
}

void SessionManager::SaveAll(absl::Time deadline) {
  if (persistence_ == nullptr) return;
  const std::vector<std::shared_ptr<Session>> all = All();
  for (const std::shared_ptr<Session>& session : all) {
    if (!session->AwaitIdle(deadline)) {
      LogEvent("session_still_reading_at_drain", {{"session", session->id()}},
               "warning");
    }
  }
  persistence_->SaveAllAndWait(all);
  LogEvent("sessions_saved", {{"sessions", absl::StrCat(all.size())},
                              {"store", persistence_->Describe()}});
}

void SessionManager::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool SessionManager::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

int SessionManager::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size());
}

void SessionManager::Reap(absl::Time now) {
  std::vector<std::shared_ptr<Session>> expired;
  std::vector<std::shared_ptr<Session>> idle;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, session] : sessions_) {
      const absl::Duration idle_for = now - session->last_used();
      if (idle_for >= options_.idle_ttl) {
        expired.push_back(session);
      } else if (idle_for >= options_.offload_after && !session->leased()) {
        idle.push_back(session);
      }
    }
  }
  for (auto& session : idle) {
    // FAILED_PRECONDITION while work is pending: it is not idle after all.
    engine_->Offload(session->slot()).IgnoreError();
  }
  for (auto& session : expired) {
    // A stream holding the session hears ABORTED and ends; the session is
    // closed either way, so its slot and its place in max_sessions free up.
    session->Abort(absl::AbortedError(
        absl::StrCat("session ", session->id(), " expired: no message for ",
                     absl::FormatDuration(options_.idle_ttl),
                     " (--session_idle_ttl); it is closed")));
    Close(session->id(), session->owner(), SessionOutcome::kExpired)
        .IgnoreError();  // NOT_FOUND: closed meanwhile
  }
  if (persistence_ != nullptr) persistence_->OnReap(All(), now);
}

void SessionManager::ReaperLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(
          absl::Condition(this, &SessionManager::StopRequested),
          options_.reap_interval);
      if (stop_) return;
    }
    Reap(absl::Now());
    if (listener_ != nullptr) listener_->OnTick();
  }
}

}  // namespace rmt::server
