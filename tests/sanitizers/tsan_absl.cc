// ThreadSanitizer annotations for Debian's abseil (make test-tsan only).
//
// Debian's libabsl_synchronization.so is not built with -fsanitize=thread, so
// ThreadSanitizer cannot see absl::Mutex lock and unlock (they are atomics and
// futex calls inside an uninstrumented library) and would report every field
// guarded by an absl::Mutex as a race. Abseil's own TSan annotations
// (ABSL_TSAN_MUTEX_*) are compiled in only when abseil itself is built with
// TSan. This file supplies them from outside: CMake adds it to every
// executable of an RMT_SANITIZE=thread build, so these definitions interpose
// on the library's, tell TSan what the call does, and forward to the real
// function (dlsym RTLD_NEXT).
//
// Covered: Mutex Lock/Unlock/TryLock/ReaderLock/ReaderUnlock, the Await and
// LockWhen families, CondVar::Wait*, Notification. Not covered:
// Notification::HasBeenNotified (inline in the header; a caller that reads
// data after it returns true looks racy), Barrier and BlockingCounter.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

#define RMT_TSAN_STR2(x) #x
#define RMT_TSAN_STR(x) RMT_TSAN_STR2(x)

// The library's definition of absl::<rest>, e.g. rest = "5Mutex4LockEv";
// `mangled_prefix` is "_ZNK" for a const member function.
template <typename Fn>
Fn Real(const char* rest, const char* mangled_prefix = "_ZN") {
  std::string ns = RMT_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  std::string name = std::string(mangled_prefix) + "4absl" +
                     std::to_string(ns.size()) + ns + rest;
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl: %s not found\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

// pre_unlock/post_lock release and acquire; between pre and post TSan also
// ignores memory accesses, so an absl::Condition that abseil evaluates on the
// unlocking thread (on the waiter's behalf) is not reported.
constexpr unsigned kRead = __tsan_mutex_read_lock;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  bool locked = real(this);
  __tsan_mutex_post_lock(
      this, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
      0);
  return locked;
}

void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  __tsan_mutex_pre_lock(this, kRead);
  real(this);
  __tsan_mutex_post_lock(this, kRead, 0);
}

void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  __tsan_mutex_pre_unlock(this, kRead);
  real(this);
  __tsan_mutex_post_unlock(this, kRead);
}

// Await and CondVar::Wait: held on entry and on return, released in between.
#define RMT_TSAN_RELEASED_DURING(mu, call) \
  __tsan_mutex_pre_unlock(mu, 0);          \
  auto result = call;                      \
  __tsan_mutex_post_unlock(mu, 0);         \
  __tsan_mutex_pre_lock(mu, 0);            \
  __tsan_mutex_post_lock(mu, 0, 0);        \
  return result

// Lock-acquiring calls that also wait for a condition.
#define RMT_TSAN_LOCKING(mu, call)  \
  __tsan_mutex_pre_lock(mu, 0);     \
  auto result = call;               \
  __tsan_mutex_post_lock(mu, 0, 0); \
  return result

void Mutex::Await(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_mutex_pre_unlock(this, 0);
  real(this, cond);
  __tsan_mutex_post_unlock(this, 0);
  __tsan_mutex_pre_lock(this, 0);
  __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  RMT_TSAN_RELEASED_DURING(this, real(this, cond, deadline));
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  RMT_TSAN_RELEASED_DURING(this, real(this, cond, timeout));
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex8LockWhenERKNS0_9ConditionE");
  __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  RMT_TSAN_LOCKING(this, real(this, cond, deadline));
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  RMT_TSAN_LOCKING(this, real(this, cond, timeout));
}

void CondVar::Wait(Mutex* mu) {
  static auto real =
      Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  __tsan_mutex_pre_unlock(mu, 0);
  real(this, mu);
  __tsan_mutex_post_unlock(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  __tsan_mutex_post_lock(mu, 0, 0);
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  RMT_TSAN_RELEASED_DURING(mu, real(this, mu, deadline));
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  RMT_TSAN_RELEASED_DURING(mu, real(this, mu, timeout));
}

// Notify happens before every wait that sees it.
void Notification::Notify() {
  static auto real = Real<void (*)(Notification*)>("12Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto real = Real<void (*)(const Notification*)>(
      "12Notification19WaitForNotificationEv", "_ZNK");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  static auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", "_ZNK");
  bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", "_ZNK");
  bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
