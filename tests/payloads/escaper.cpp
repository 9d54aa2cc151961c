// escaper: a payload that does everything to outlive `stop`.
//   escaper MARK
// Ignores SIGTERM; forks a child that leads a new process group and a
// grandchild that leads a new session (both ignoring SIGTERM too); then
// moves itself into the child's group, so that its own group, the one
// `stop` signals, is left empty. All of them sleep until killed; MARK (in
// their command lines) lets tests find them. Prints "ready" once all is set.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: escaper MARK\n");
    return 2;
  }
  (void)argv;  // MARK is only there to be seen in /proc
  ::signal(SIGTERM, SIG_IGN);
  int ready[2];
  if (::pipe(ready) < 0) return 1;
  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::setpgid(0, 0);
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::setsid();
      ::close(ready[1]);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    for (;;) ::pause();
  }
  ::setpgid(child, child);  // no race with the child's own call
  ::close(ready[1]);
  char c;
  (void)!::read(ready[0], &c, 1);  // both children closed their copies
  if (::setpgid(0, child) < 0) {
    std::perror("escaper: setpgid");
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
