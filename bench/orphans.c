/* orphans: the payload of the pid-1 benchmark. Leaves COUNT orphans to the
 * init of its pid namespace and prints how many microseconds passed from the
 * moment they all exit until the last of them has been reaped.
 *
 *   orphans COUNT
 *
 * A middle process forks COUNT children that wait on a pipe, sends their pids
 * back and exits, so the children are reparented to init. Closing the pipe then
 * releases them all at once (the clock starts there); a pid is reaped when
 * kill(pid, 0) says ESRCH. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  long count = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
  if (count <= 0 || count > 100000) {
    fprintf(stderr, "usage: orphans COUNT\n");
    return 2;
  }
  int hold[2], pids[2];
  if (pipe(hold) != 0 || pipe(pids) != 0) {
    perror("orphans: pipe");
    return 1;
  }
  pid_t middle = fork();
  if (middle < 0) {
    perror("orphans: fork");
    return 1;
  }
  if (middle == 0) {
    close(pids[0]);
    for (long i = 0; i < count; ++i) {
      pid_t child = fork();
      if (child < 0) _exit(1);
      if (child == 0) {
        char byte;
        close(hold[1]);
        while (read(hold[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
      }
      if (write(pids[1], &child, sizeof child) != sizeof child) _exit(1);
    }
    _exit(0);
  }
  close(pids[1]);
  close(hold[0]);
  pid_t* orphan = calloc((size_t)count, sizeof *orphan);
  long have = 0;
  ssize_t got;
  while (have < count &&
         (got = read(pids[0], orphan + have, (size_t)(count - have) * sizeof *orphan)) > 0)
    have += got / (ssize_t)sizeof *orphan;
  int status;
  if (waitpid(middle, &status, 0) != middle || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      have != count) {
    fprintf(stderr, "orphans: could not create %ld orphans\n", count);
    return 1;
  }
  double start = now_us();
  close(hold[1]);
  /* An init that stops reaping must not keep this loop spinning. */
  double deadline = start + 30e6;
  for (long i = 0; i < count;) {
    if (kill(orphan[i], 0) != 0 && errno == ESRCH) {
      ++i;
    } else if (now_us() > deadline) {
      fprintf(stderr, "orphans: %ld of %ld not reaped after 30 s\n", count - i, count);
      return 1;
    } else {
      sched_yield();
    }
  }
  printf("%.0f\n", now_us() - start);
  free(orphan);
  return 0;
}
