// daemonizer: a program that puts itself in the background the classic way,
// as a payload should not: fork, setsid, fork again, and the original
// process exits 0. The background copy takes an flock on FILE.lock (if that
// is taken, another copy still runs: it writes FILE.overlap), writes its pid
// to FILE, and sleeps. The original process exits only once FILE is written.
//   daemonizer FILE
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string file = argv[1];
  int done[2];
  if (::pipe(done) < 0) return 1;
  pid_t first = ::fork();
  if (first < 0) return 1;
  if (first == 0) {
    ::close(done[0]);
    ::setsid();
    if (::fork() != 0) _exit(0);  // the session leader leaves
    int lock = ::open((file + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) < 0) {
      int marker = ::open((file + ".overlap").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (marker >= 0) ::close(marker);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    const std::string tmp = file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) _exit(1);
    std::fputs(pid.c_str(), f);
    std::fclose(f);
    if (std::rename(tmp.c_str(), file.c_str()) < 0) _exit(1);
    ::close(done[1]);  // with the first child gone, the original process sees EOF
    for (;;) ::pause();
  }
  ::close(done[1]);
  char c = 0;
  while (::read(done[0], &c, 1) > 0) {
  }
  ::waitpid(first, nullptr, 0);
  return 0;
}
