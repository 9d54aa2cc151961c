// counter: writes "line N" for N = 0 .. COUNT-1 on standard output, one
// write per line, pausing PAUSE_US microseconds every 100 lines; then exits 0.
// Has no SIGHUP handler (a SIGHUP would kill it).
//   counter COUNT PAUSE_US
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  long count = std::atol(argv[1]);
  auto pause = static_cast<useconds_t>(std::atol(argv[2]));
  for (long i = 0; i < count; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
    if (i % 100 == 99) ::usleep(pause);
  }
  return 0;
}
