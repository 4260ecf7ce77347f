#include "server/redis_session_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "model/status_macros.h"

namespace rmt::server {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// hiredis sends with write(2), which on a connection Redis has closed raises
// SIGPIPE, whose default action ends the process. Blocks SIGPIPE on this
// thread for the scope and discards one raised meanwhile; the write then
// fails with EPIPE, which the caller reports as UNAVAILABLE.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~ScopedSigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero = {0, 0};
      while (sigtimedwait(&sigpipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t sigpipe_;
  sigset_t old_mask_;
  bool was_pending_ = false;
};

// Redis keeps millisecond expiries; rounding up keeps a sub-millisecond ttl
// from becoming PX 0, which Redis refuses.
int64_t CeilMilliseconds(absl::Duration ttl) {
  int64_t ms = absl::ToInt64Milliseconds(ttl);
  if (absl::Milliseconds(ms) < ttl) ++ms;
  return ms;
}

class RedisSessionStore final : public SessionStore {
 public:
  RedisSessionStore(const std::string& host, int port, int db,
                    const SessionStoreOptions& options)
      : host_(host),
        port_(port),
        db_(db),
        options_(options),
        description_(absl::StrCat("redis://", host, ":", port, "/", db)) {}

  absl::Status Connect() ABSL_LOCKS_EXCLUDED(mu_) {
    ScopedSigpipeBlock block;
    absl::MutexLock lock(&mu_);
    return ConnectLocked();
  }

  absl::Status Put(const std::string& id, absl::string_view bytes,
                   absl::Duration ttl) override {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    RETURN_IF_ERROR(CheckSessionStoreTtl(ttl));
    const std::string key = Key(id);
    const std::string ms = absl::StrCat(CeilMilliseconds(ttl));
    ASSIGN_OR_RETURN(Reply reply, Command({"SET", key, bytes, "PX", ms}));
    if (reply->type != REDIS_REPLY_STATUS) return Unexpected("SET", *reply);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& id) override {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    const std::string key = Key(id);
    ASSIGN_OR_RETURN(Reply reply, Command({"GET", key}));
    if (reply->type == REDIS_REPLY_NIL) {
      return absl::NotFoundError(
          absl::StrCat("session store: no snapshot of session ", id));
    }
    if (reply->type != REDIS_REPLY_STRING) return Unexpected("GET", *reply);
    return std::string(reply->str, reply->len);
  }

  absl::Status Delete(const std::string& id) override {
    RETURN_IF_ERROR(CheckSessionStoreId(id));
    const std::string key = Key(id);
    ASSIGN_OR_RETURN(Reply reply, Command({"DEL", key}));
    if (reply->type != REDIS_REPLY_INTEGER) return Unexpected("DEL", *reply);
    return absl::OkStatus();
  }

  // Redis expires the keys itself (SET ... PX).
  absl::StatusOr<int> RemoveExpired() override { return 0; }

  std::string Describe() const override { return description_; }

 private:
  std::string Key(const std::string& id) const {
    return absl::StrCat(options_.redis_key_prefix, id);
  }

  absl::Status Unexpected(absl::string_view command,
                          const redisReply& reply) const {
    return absl::InternalError(
        absl::StrCat("session store: ", description_, " answered ", command,
                     " with a reply of type ", reply.type));
  }

  // UNAVAILABLE for a connection that failed in `what`; drops it, so that
  // the next call connects afresh.
  absl::Status Lost(absl::string_view what, int saved_errno)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string why = ctx_->errstr;
    if (ctx_->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
      why = absl::StrCat("no answer within ",
                         absl::FormatDuration(options_.redis_command_timeout));
    }
    ctx_.reset();
    return absl::UnavailableError(absl::StrCat(
        "session store: ", what, " on ", description_, " failed: ", why,
        "; check that Redis is running and reachable from this replica"));
  }

  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Context ctx(redisConnectWithTimeout(
        host_.c_str(), port_, absl::ToTimeval(options_.redis_connect_timeout)));
    if (ctx == nullptr) {
      return absl::ResourceExhaustedError(
          "session store: out of memory for a Redis connection");
    }
    if (ctx->err != 0) {
      return absl::UnavailableError(absl::StrCat(
          "session store: cannot connect to ", description_, ": ", ctx->errstr,
          "; check that Redis is running and reachable from this replica, or "
          "choose another --session_store"));
    }
    if (redisSetTimeout(ctx.get(),
                        absl::ToTimeval(options_.redis_command_timeout)) !=
        REDIS_OK) {
      return absl::UnavailableError(
          absl::StrCat("session store: cannot set the command timeout on ",
                       description_, ": ", ctx->errstr));
    }
    // Notices a peer that vanished without closing (a lost machine).
    redisEnableKeepAlive(ctx.get());
    ctx_ = std::move(ctx);
    if (db_ != 0) {
      const std::string db = absl::StrCat(db_);
      ASSIGN_OR_RETURN(Reply reply, SendLocked({"SELECT", db}, "SELECT"));
      if (reply->type != REDIS_REPLY_STATUS) {
        ctx_.reset();
        return absl::UnavailableError(absl::StrCat(
            "session store: ", description_, " refused SELECT ", db_, ": ",
            reply->type == REDIS_REPLY_ERROR
                ? std::string(reply->str, reply->len)
                : "unexpected reply",
            "; check the /DB of --session_store"));
      }
    }
    return absl::OkStatus();
  }

  // Sends on the current connection; on failure drops it. `closed_by_server`
  // (may be null) tells whether Redis had closed the connection.
  absl::StatusOr<Reply> SendLocked(
      std::initializer_list<absl::string_view> args, absl::string_view what,
      bool* closed_by_server = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<const char*> argv;
    std::vector<size_t> argvlen;
    for (absl::string_view arg : args) {
      argv.push_back(arg.data());
      argvlen.push_back(arg.size());
    }
    Reply reply(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                         argvlen.data())));
    if (reply == nullptr) {
      const int saved_errno = errno;
      if (closed_by_server != nullptr) {
        *closed_by_server =
            ctx_->err == REDIS_ERR_EOF ||
            (ctx_->err == REDIS_ERR_IO &&
             (saved_errno == EPIPE || saved_errno == ECONNRESET));
      }
      return Lost(what, saved_errno);
    }
    return reply;
  }

  // Runs one command, connecting first if needed. Error replies become
  // DATA_LOSS (WRONGTYPE: the key holds something this store did not
  // write) or UNAVAILABLE (Redis loading, out of memory, read-only...).
  absl::StatusOr<Reply> Command(std::initializer_list<absl::string_view> args)
      ABSL_LOCKS_EXCLUDED(mu_) {
    const absl::string_view what = *args.begin();
    ScopedSigpipeBlock block;
    absl::MutexLock lock(&mu_);
    const bool reused = ctx_ != nullptr;
    if (!reused) RETURN_IF_ERROR(ConnectLocked());
    bool closed_by_server = false;
    absl::StatusOr<Reply> reply = SendLocked(args, what, &closed_by_server);
    if (!reply.ok() && reused && closed_by_server) {
      // A connection from before a Redis restart: the command never ran.
      RETURN_IF_ERROR(ConnectLocked());
      reply = SendLocked(args, what);
    }
    if (!reply.ok()) return reply.status();
    if ((*reply)->type == REDIS_REPLY_ERROR) {
      const std::string text((*reply)->str, (*reply)->len);
      if (absl::StartsWith(text, "WRONGTYPE")) {
        return absl::DataLossError(absl::StrCat(
            "session store: ", description_, " holds something else under ",
            options_.redis_key_prefix, "...: ", text));
      }
      return absl::UnavailableError(absl::StrCat(
          "session store: ", description_, " refused ", what, ": ", text));
    }
    return reply;
  }

  // Constant after construction.
  const std::string host_;
  const int port_;
  const int db_;
  const SessionStoreOptions options_;
  const std::string description_;

  absl::Mutex mu_;
  // Null after a failure: the next call connects.
  Context ctx_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> OpenRedisSessionStore(
    const std::string& host, int port, int db,
    const SessionStoreOptions& options) {
  auto store = std::make_unique<RedisSessionStore>(host, port, db, options);
  RETURN_IF_ERROR(store->Connect());
  return store;
}

}  // namespace rmt::server
