// CallTracker: counts the streaming calls in flight, so a draining server
// can keep serving them (and answering health checks NOT_SERVING) until the
// last one ends or the grace period runs out.
//
//   tracker.Begin();  ...  tracker.End();
//   tracker.AwaitIdle(absl::Now() + grace);   // on SIGTERM
//
// Thread-safety: all methods are thread-safe.
#ifndef RMT_SERVER_CALL_TRACKER_H_
#define RMT_SERVER_CALL_TRACKER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rmt::server {

class CallTracker {
 public:
  void Begin() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  void End() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  int64_t in_flight() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }
  // True when no call is in flight, false at the deadline.
  bool AwaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(this, &CallTracker::Idle),
                                 deadline);
  }

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  }

  mutable absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rmt::server

#endif  // RMT_SERVER_CALL_TRACKER_H_
