// Small helpers shared by rmt-client and rmt-loadgen: channels with optional
// TLS and bearer token.
#ifndef RMT_CLIENT_CLIENT_COMMON_H_
#define RMT_CLIENT_CLIENT_COMMON_H_

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>

namespace rmt::client {

struct ChannelOptions {
  std::string server = "localhost:50051";
  std::string tls_ca;  // PEM root certificates; empty: plaintext
  std::string token;   // bearer token; empty: none
};

inline std::shared_ptr<grpc::Channel> MakeChannel(const ChannelOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (o.tls_ca.empty()) {
    return grpc::CreateCustomChannel(o.server,
                                     grpc::InsecureChannelCredentials(), args);
  }
  std::ifstream in(o.tls_ca);
  std::stringstream pem;
  pem << in.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem.str();
  return grpc::CreateCustomChannel(o.server, grpc::SslCredentials(ssl), args);
}

inline void Authorize(const ChannelOptions& o, grpc::ClientContext* context) {
  if (!o.token.empty()) {
    context->AddMetadata("authorization", "Bearer " + o.token);
  }
}

}  // namespace rmt::client

#endif  // RMT_CLIENT_CLIENT_COMMON_H_
