// IngestReactor: one Ingest call (client streaming): chunks of document text
// or ids into an existing session, paced by the engine like Converse (the
// next Read starts only while the session has at most max_pending_segments
// queued). The call ends once every submitted segment is in the memory.
#ifndef RMT_SERVER_INGEST_REACTOR_H_
#define RMT_SERVER_INGEST_REACTOR_H_

#include <grpcpp/support/server_callback.h>

#include "server/service_context.h"

namespace rmt::server {

grpc::ServerReadReactor<v1::IngestRequest>* StartIngest(
    const ServiceContext* context, grpc::CallbackServerContext* call,
    v1::IngestResponse* response);

}  // namespace rmt::server

#endif  // RMT_SERVER_INGEST_REACTOR_H_
