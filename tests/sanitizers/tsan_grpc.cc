// ThreadSanitizer annotations for Debian's gRPC (make test-tsan only).
//
// gRPC's callback API hands every operation from the thread that starts it
// (StartRead, StartWrite, Finish, a new call's reactor) to the thread that
// completes it through completion queues inside uninstrumented libraries,
// so ThreadSanitizer sees no order between a reactor's constructor or its
// last StartWrite and the callback that follows, and reports the reactor's
// own fields as races. A suppression could only silence every callback.
// Instead, as tsan_absl.cc does for absl::Mutex, these definitions interpose
// on the C core's entry points and state the order gRPC guarantees: starting
// an operation with a tag happens before the completion that returns it.
// CMake adds this file to every executable of an RMT_SANITIZE=thread build
// that links gRPC::grpc++.
//
// Hand-offs of the callback API that need more than the C core's entry
// points:
//  - A callback operation's completion runs its tag's functor (for the C++
//    API a CallbackWithSuccessTag) from inside libgrpc, with no completion
//    queue call to hook. grpc_call_start_batch points the functor at a
//    trampoline that first acquires the tag (the C core calls whatever
//    functor_run holds; Set stores StaticRun when it arms a tag, the first
//    start replaces it, and later starts find the trampoline there).
//  - A server call's OnDone and OnCancel, when they may not run inline, go
//    to gRPC's executor (ServerCallbackCall::ScheduleOnDone and CallOnCancel,
//    through grpc_core::Executor::Run), whose queue TSan does not see. Here
//    they go to a thread of their own instead, whose creation TSan does see:
//    still after what gRPC orders them after, still on another thread, as
//    gRPC promises.

#include <dlfcn.h>
#include <grpc/grpc.h>
#include <grpcpp/support/callback_common.h>
#include <grpcpp/support/server_callback.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

template <typename Function>
Function Real(const char* name) {
  void* function = dlsym(RTLD_NEXT, name);
  if (function == nullptr) {
    std::fprintf(stderr, "tsan_grpc: %s not found\n", name);
    std::abort();
  }
  return reinterpret_cast<Function>(function);
}

// gRPC keeps what these annotations need private. An explicit
// instantiation may name a private member (access is not checked there),
// and its friend hands the member out: Get(Key()) for each Key below.
template <typename Key, typename Key::Type kMember>
struct Expose {
  friend typename Key::Type Get(Key) { return kMember; }
};

// CallbackWithSuccessTag::StaticRun, what Set stores in functor_run.
struct SuccessTagRun {
  using Type = void (*)(grpc_completion_queue_functor*, int);
  friend Type Get(SuccessTagRun);
};
template struct Expose<SuccessTagRun,
                       &grpc::internal::CallbackWithSuccessTag::StaticRun>;

// The call's count of outstanding callbacks. The callbacks drop their
// references with an acq_rel fetch_sub in the headers' inline code, which
// TSan sees, unless the drop is compiled into libgrpc++; ScheduleOnDone
// acquires the counter itself so that OnDone follows every callback either
// way.
struct CallbacksOutstanding {
  using Type = std::atomic_int grpc::internal::ServerCallbackCall::*;
  friend Type Get(CallbacksOutstanding);
};
template struct Expose<
    CallbacksOutstanding,
    &grpc::internal::ServerCallbackCall::callbacks_outstanding_>;

void AcquireThenRunSuccessTag(grpc_completion_queue_functor* tag, int ok) {
  __tsan_acquire(tag);
  Get(SuccessTagRun())(tag, ok);
}

// A tag that is not a functor (a CallOpSet of the synchronous or
// completion-queue API) starts with its vtable pointer, never with
// StaticRun's address.
void AcquireWhenRun(void* tag) {
  auto* functor = static_cast<grpc_completion_queue_functor*>(tag);
  if (functor->functor_run == Get(SuccessTagRun())) {
    functor->functor_run = &AcquireThenRunSuccessTag;
  }
}

}  // namespace

namespace grpc::internal {

void ServerCallbackCall::ScheduleOnDone(bool inline_ondone) {
  static const auto real = Real<void (*)(ServerCallbackCall*, bool)>(
      "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  __tsan_acquire(&(this->*Get(CallbacksOutstanding())));
  if (inline_ondone) {
    real(this, true);
    return;
  }
  std::thread([this] { real(this, true); }).detach();
}

// gRPC's own CallOnCancel with a thread for the executor: the reference
// keeps the call until OnCancel has run, and MaybeDone drops it.
void ServerCallbackCall::CallOnCancel(ServerReactor* reactor) {
  if (reactor->InternalInlineable()) {
    reactor->OnCancel();
    return;
  }
  Ref();
  std::thread([this, reactor] {
    reactor->OnCancel();
    MaybeDone();
  }).detach();
}

}  // namespace grpc::internal

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops,
                                      size_t nops, void* tag, void* reserved) {
  static const auto real =
      Real<decltype(&grpc_call_start_batch)>("grpc_call_start_batch");
  if (tag != nullptr) {
    AcquireWhenRun(tag);
    __tsan_release(tag);
  }
  return real(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(
    grpc_server* server, grpc_call** call, grpc_call_details* details,
    grpc_metadata_array* metadata, grpc_completion_queue* call_queue,
    grpc_completion_queue* notification_queue, void* tag) {
  static const auto real =
      Real<decltype(&grpc_server_request_call)>("grpc_server_request_call");
  if (tag != nullptr) __tsan_release(tag);
  return real(server, call, details, metadata, call_queue, notification_queue,
              tag);
}

grpc_call_error grpc_server_request_registered_call(
    grpc_server* server, void* method, grpc_call** call, gpr_timespec* deadline,
    grpc_metadata_array* metadata, grpc_byte_buffer** payload,
    grpc_completion_queue* call_queue,
    grpc_completion_queue* notification_queue, void* tag) {
  static const auto real = Real<decltype(&grpc_server_request_registered_call)>(
      "grpc_server_request_registered_call");
  if (tag != nullptr) __tsan_release(tag);
  return real(server, method, call, deadline, metadata, payload, call_queue,
              notification_queue, tag);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* queue,
                                      gpr_timespec deadline, void* reserved) {
  static const auto real =
      Real<decltype(&grpc_completion_queue_next)>("grpc_completion_queue_next");
  grpc_event event = real(queue, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && event.tag != nullptr) {
    __tsan_acquire(event.tag);
  }
  return event;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* queue, void* tag,
                                       gpr_timespec deadline, void* reserved) {
  static const auto real = Real<decltype(&grpc_completion_queue_pluck)>(
      "grpc_completion_queue_pluck");
  grpc_event event = real(queue, tag, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && event.tag != nullptr) {
    __tsan_acquire(event.tag);
  }
  return event;
}

}  // extern "C"
