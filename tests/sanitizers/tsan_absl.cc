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
#include <type_traits>

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
enum class Effect {
  kLock,           // Lock, LockWhen*: acquires
  kUnlock,         // Unlock: releases
  kReleasedDuring  // Await*, CondVar::Wait*: held before and after, not during
};

// Some of these functions call others of them inside the library (say
// AwaitWithTimeout calling AwaitWithDeadline); only the outermost call of a
// thread is annotated.
thread_local int tls_depth = 0;

class Annotation {
 public:
  Annotation(void* mu, Effect effect, unsigned flags = 0)
      : mu_(mu), effect_(effect), flags_(flags), outer_(tls_depth++ == 0) {
    if (!outer_) return;
    if (effect_ == Effect::kLock) {
      __tsan_mutex_pre_lock(mu_, flags_);
    } else {
      __tsan_mutex_pre_unlock(mu_, effect_ == Effect::kUnlock ? flags_ : 0);
    }
  }
  // `failed`: a TryLock that did not lock.
  void Done(bool failed = false) {
    --tls_depth;
    if (!outer_) return;
    switch (effect_) {
      case Effect::kLock:
        __tsan_mutex_post_lock(
            mu_, flags_ | (failed ? __tsan_mutex_try_lock_failed : 0), 0);
        break;
      case Effect::kUnlock:
        __tsan_mutex_post_unlock(mu_, flags_);
        break;
      case Effect::kReleasedDuring:
        __tsan_mutex_post_unlock(mu_, 0);
        __tsan_mutex_pre_lock(mu_, 0);
        __tsan_mutex_post_lock(mu_, 0, 0);
        break;
    }
  }

 private:
  void* const mu_;
  const Effect effect_;
  const unsigned flags_;
  const bool outer_;
};

constexpr unsigned kRead = __tsan_mutex_read_lock;

// Calls `real(args...)` between the annotations of `effect` on `mu`.
template <typename Fn, typename... Args>
auto Call(void* mu, Effect effect, unsigned flags, Fn real, Args... args) {
  Annotation annotation(mu, effect, flags);
  if constexpr (std::is_void_v<decltype(real(args...))>) {
    real(args...);
    annotation.Done();
  } else {
    auto result = real(args...);
    annotation.Done();
    return result;
  }
}

// Notify happens before every wait that sees it; same nesting rule.
class NotificationAnnotation {
 public:
  NotificationAnnotation() : outer_(tls_depth++ == 0) {}
  ~NotificationAnnotation() { --tls_depth; }
  bool outer() const { return outer_; }

 private:
  const bool outer_;
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// A reference parameter is passed as a pointer, so the real functions are
// called with `const Condition*`.
using CondPtr = const Condition*;

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  Call(this, Effect::kLock, 0, real, this);
}

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  Call(this, Effect::kUnlock, 0, real, this);
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  Annotation annotation(this, Effect::kLock, __tsan_mutex_try_lock);
  bool locked = real(this);
  annotation.Done(/*failed=*/!locked);
  return locked;
}

void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  Call(this, Effect::kLock, kRead, real, this);
}

void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  Call(this, Effect::kUnlock, kRead, real, this);
}

void Mutex::Await(const Condition& cond) {
  static auto real =
      Real<void (*)(Mutex*, CondPtr)>("5Mutex5AwaitERKNS0_9ConditionE");
  Call(this, Effect::kReleasedDuring, 0, real, this, &cond);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, CondPtr, absl::Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Call(this, Effect::kReleasedDuring, 0, real, this, &cond, deadline);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, CondPtr, absl::Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Call(this, Effect::kReleasedDuring, 0, real, this, &cond, timeout);
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real =
      Real<void (*)(Mutex*, CondPtr)>("5Mutex8LockWhenERKNS0_9ConditionE");
  Call(this, Effect::kLock, 0, real, this, &cond);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, CondPtr, absl::Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Call(this, Effect::kLock, 0, real, this, &cond, deadline);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, CondPtr, absl::Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Call(this, Effect::kLock, 0, real, this, &cond, timeout);
}

void CondVar::Wait(Mutex* mu) {
  static auto real =
      Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  Call(mu, Effect::kReleasedDuring, 0, real, this, mu);
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Call(mu, Effect::kReleasedDuring, 0, real, this, mu, deadline);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Call(mu, Effect::kReleasedDuring, 0, real, this, mu, timeout);
}

void Notification::Notify() {
  static auto real = Real<void (*)(Notification*)>("12Notification6NotifyEv");
  NotificationAnnotation annotation;
  if (annotation.outer()) __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto real = Real<void (*)(const Notification*)>(
      "12Notification19WaitForNotificationEv", "_ZNK");
  NotificationAnnotation annotation;
  real(this);
  if (annotation.outer()) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  static auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", "_ZNK");
  NotificationAnnotation annotation;
  bool notified = real(this, timeout);
  if (notified && annotation.outer()) {
    __tsan_acquire(const_cast<Notification*>(this));
  }
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", "_ZNK");
  NotificationAnnotation annotation;
  bool notified = real(this, deadline);
  if (notified && annotation.outer()) {
    __tsan_acquire(const_cast<Notification*>(this));
  }
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
