// Small helpers shared by rmt-client and rmt-loadgen: channels with optional
// TLS and bearer token.
#ifndef RMT_CLIENT_CLIENT_COMMON_H_
#define RMT_CLIENT_CLIENT_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/file_util.h"

namespace rmt::client {

struct ChannelOptions {
  std::string server = "localhost:50051";
  std::string tls_ca_pem;  // PEM root certificates; empty: plaintext
  std::string token;       // bearer token; empty: none
};

// Reads --tls_ca's file (if `path` is set) into options->tls_ca_pem. A file
// that cannot be read is an error: falling back to plaintext, or to the
// system's roots, would not be what the flag asked for.
inline absl::Status LoadTlsRoots(const std::string& path,
                                 ChannelOptions* options) {
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return pem.status();
  if (pem->empty()) {
    return absl::InvalidArgumentError(path + ": empty PEM file (--tls_ca)");
  }
  options->tls_ca_pem = *std::move(pem);
  return absl::OkStatus();
}

inline std::shared_ptr<grpc::Channel> MakeChannel(const ChannelOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (o.tls_ca_pem.empty()) {
    return grpc::CreateCustomChannel(o.server,
                                     grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = o.tls_ca_pem;
  return grpc::CreateCustomChannel(o.server, grpc::SslCredentials(ssl), args);
}

inline void Authorize(const ChannelOptions& o, grpc::ClientContext* context) {
  if (!o.token.empty()) {
    context->AddMetadata("authorization", "Bearer " + o.token);
  }
}

}  // namespace rmt::client

#endif  // RMT_CLIENT_CLIENT_COMMON_H_
