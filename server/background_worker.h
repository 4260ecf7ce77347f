// BackgroundWorker: one thread that runs posted tasks in order, for work
// that must stay off the engine's scheduler thread and off gRPC's callback
// threads: copying a memory to the host and signing a snapshot.
//
//   worker.Post([stream] { stream->ExportCheckpoint(); });
//
// Thread-safety: Post may be called from any thread. The destructor runs
// the tasks already posted, then joins.
#ifndef RMT_SERVER_BACKGROUND_WORKER_H_
#define RMT_SERVER_BACKGROUND_WORKER_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rmt::server {

class BackgroundWorker {
 public:
  BackgroundWorker();
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  void Post(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasTaskOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !tasks_.empty();
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the fields it reads exist
};

}  // namespace rmt::server

#endif  // RMT_SERVER_BACKGROUND_WORKER_H_
