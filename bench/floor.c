/* floor: the least an honest daemonizer does, as the benchmark's baseline.
 *
 *   floor start PIDFILE PROGRAM [ARG...]   returns once PROGRAM was executed
 *   floor stop PIDFILE                     returns once the daemon is gone
 *
 * start: double fork and setsid; the grandchild takes a POSIX write lock on
 * PIDFILE (kept across exec), writes its pid and executes PROGRAM. A pipe
 * with close-on-exec tells the caller whether the exec happened: end of file
 * means it did, an errno value means it did not.
 * stop: reads the pid, opens a pidfd, confirms that the pid holds the lock,
 * sends SIGTERM with pidfd_send_signal and sleeps in poll until it exits
 * (SIGKILL after 10 s), then removes PIDFILE.
 *
 * No supervisor, no readiness, no logging: a floor to compare with, not a tool. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char* what, const char* path) {
  fprintf(stderr, "floor: %s%s%s: %s\n", what, *path ? " " : "", path, strerror(errno));
  return 1;
}

static void report_and_exit(int pipe_fd, int error) {
  (void)!write(pipe_fd, &error, sizeof error);
  _exit(127);
}

/* After the lock is ours, a failure removes the pidfile: nothing is left. */
static void remove_and_report(const char* pidfile, int pipe_fd, int error) {
  unlink(pidfile);
  report_and_exit(pipe_fd, error);
}

static int start(const char* pidfile, char** argv) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return fail("pipe", "");
  pid_t child = fork();
  if (child < 0) return fail("fork", "");
  if (child == 0) {
    close(report[0]);
    if (setsid() < 0) report_and_exit(report[1], errno);
    pid_t daemon = fork();
    if (daemon < 0) report_and_exit(report[1], errno);
    if (daemon > 0) _exit(0);
    int fd = open(pidfile, O_WRONLY | O_CREAT | O_NOFOLLOW, 0644);
    if (fd < 0) report_and_exit(report[1], errno);
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lock) != 0) report_and_exit(report[1], errno);
    char text[32];
    int length = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, text, (size_t)length) != length)
      remove_and_report(pidfile, report[1], errno);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || chdir("/") != 0) remove_and_report(pidfile, report[1], errno);
    umask(022);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
    execv(argv[0], argv);
    remove_and_report(pidfile, report[1], errno);
  }
  close(report[1]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int error = 0;
  ssize_t got;
  while ((got = read(report[0], &error, sizeof error)) < 0 && errno == EINTR) {
  }
  if (got == 0) return 0;
  errno = got < 0 ? errno : error;
  return fail("start", argv[0]);
}

static int stop(const char* pidfile) {
  int fd = open(pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : fail("open", pidfile);
  char text[32] = {0};
  ssize_t got = read(fd, text, sizeof text - 1);
  long pid = got > 0 ? strtol(text, NULL, 10) : 0;
  if (pid <= 1) {
    close(fd);
    return 0;
  }
  /* The pidfd first, then the lock: a pid reused after the check is never hit. */
  int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0 && errno != ESRCH) return fail("pidfd_open", pidfile);
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_GETLK, &lock) != 0) return fail("F_GETLK", pidfile);
  if (pidfd < 0 || lock.l_type == F_UNLCK || lock.l_pid != pid) {
    close(fd);
    return 0; /* not running: nothing is signalled */
  }
  close(fd);
  if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) != 0)
    return fail("pidfd_send_signal", pidfile);
  struct pollfd exited = {.fd = pidfd, .events = POLLIN};
  int ready;
  while ((ready = poll(&exited, 1, 10000)) < 0 && errno == EINTR) {
  }
  if (ready < 0) return fail("poll", pidfile);
  if (ready == 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    while (poll(&exited, 1, -1) < 0 && errno == EINTR) {
    }
  }
  unlink(pidfile);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "start") == 0) return start(argv[2], argv + 3);
  if (argc == 3 && strcmp(argv[1], "stop") == 0) return stop(argv[2]);
  fprintf(stderr, "usage: floor start PIDFILE PROGRAM [ARG...] | floor stop PIDFILE\n");
  return 2;
}
