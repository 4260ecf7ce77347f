// ConverseReactor: one Converse stream (one conversation about one
// document), as a gRPC callback-API bidi reactor that never blocks.
//
// Reads are paced by the engine: the reactor starts the next Read only while
// its session has at most max_pending_segments segments queued and few
// responses waiting to be written, so a client that streams faster than the
// engine is slowed by gRPC flow control, never buffered without bound.
// Responses go out one Write at a time from an outbox; progress messages are
// coalesced (one pending at most, always current).
//
// Lifetime: created by the service per call; deletes itself in OnDone, which
// gRPC calls only after Finish. Finish waits until no engine callback that
// refers to the reactor is outstanding, so callbacks never see a dead reactor.
#ifndef RMT_SERVER_CONVERSE_REACTOR_H_
#define RMT_SERVER_CONVERSE_REACTOR_H_

#include <grpcpp/support/server_callback.h>

#include "server/service_context.h"

namespace rmt::server {

// Starts the reactor for one call; gRPC owns it until OnDone.
grpc::ServerBidiReactor<v1::ConverseRequest, v1::ConverseResponse>*
StartConverse(const ServiceContext* context, grpc::CallbackServerContext* call);

}  // namespace rmt::server

#endif  // RMT_SERVER_CONVERSE_REACTOR_H_
