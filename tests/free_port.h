// A loopback port for a test server to listen on.
#ifndef RMT_TESTS_FREE_PORT_H_
#define RMT_TESTS_FREE_PORT_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rmt::testing {

// A port nothing listens on now: bind port 0 on 127.0.0.1, read what the
// kernel chose, close. Another process could take it meanwhile; on a test
// machine it will not in practice. -1 if no socket could be bound.
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace rmt::testing

#endif  // RMT_TESTS_FREE_PORT_H_
