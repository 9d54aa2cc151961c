// syslog_sink: a stand-in syslog daemon for tests.
//   syslog_sink SOCKET OUTPUT COUNT
// Binds a datagram socket at SOCKET, writes each of the first COUNT
// datagrams received to OUTPUT as one line, and exits (after 10 s at most).
// Creates OUTPUT.ready once it listens.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: syslog_sink SOCKET OUTPUT COUNT\n");
    return 2;
  }
  int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
  ::unlink(argv[1]);
  if (sock < 0 || ::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    std::perror("syslog_sink: bind");
    return 1;
  }
  std::ofstream(std::string(argv[2]) + ".ready") << "ready\n";
  std::ofstream out(argv[2]);
  int wanted = std::atoi(argv[3]);
  for (int got = 0; got < wanted;) {
    struct pollfd p {
      sock, POLLIN, 0
    };
    if (::poll(&p, 1, 10000) <= 0) return 1;
    char buf[2048];
    ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    if (n <= 0) continue;
    out << std::string(buf, static_cast<size_t>(n)) << '\n' << std::flush;
    ++got;
  }
  return 0;
}
