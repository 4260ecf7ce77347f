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
// CMake adds this file to every executable of an RMT_SANITIZE=thread build.

#include <dlfcn.h>
#include <grpc/grpc.h>
#include <sanitizer/tsan_interface.h>

namespace {

template <typename Function>
Function Real(const char* name) {
  return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops,
                                      size_t nops, void* tag, void* reserved) {
  static const auto real =
      Real<decltype(&grpc_call_start_batch)>("grpc_call_start_batch");
  if (tag != nullptr) __tsan_release(tag);
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
