// The one conversion from absl::Status (used everywhere below the RPC layer)
// to grpc::Status, at the service boundary.
#ifndef RMT_SERVER_GRPC_STATUS_H_
#define RMT_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace rmt::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace rmt::server

#endif  // RMT_SERVER_GRPC_STATUS_H_
