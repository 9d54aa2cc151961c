// brief: a payload that runs for a moment and exits 0, for respawn cycles.
//   brief DIR MILLISECONDS
// While it runs it holds an flock on DIR/payload.lock; if another copy
// holds it, two payloads run at once: it creates DIR/overlap.PID. If its
// parent (the supervisor) died while it ran, it outlived it: it creates
// DIR/survivor.PID. A test fails on either file.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace {
void mark(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) ::close(fd);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string dir = argv[1];
  const pid_t parent = ::getppid();
  const std::string me = std::to_string(::getpid());
  int lock = ::open((dir + "/payload.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) < 0) mark(dir + "/overlap." + me);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(argv[2])));
  if (::getppid() != parent) mark(dir + "/survivor." + me);
  // _exit: nothing at exit that the parent-death signal could cut short
  // (LeakSanitizer's check at exit reports a process killed under it).
  _exit(0);
}
