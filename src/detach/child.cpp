// src/detach/child.cpp: everything that runs between fork and the daemon's
// body. Only async-signal-safe calls belong here: the parent may have had
// other threads, whose locks (malloc's among them) are frozen in the child.
// Audit this file alone: it calls nothing outside it but syscalls, the
// helpers in sys/sys.hpp and the report builders, all async-signal-safe.
#include "detach/child.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detach/report.hpp"
#include "sys/sys.hpp"

namespace daemonkit::detail {

namespace {

// The report channel's descriptor in this process (moved above 0-2).
int g_report = -1;

[[noreturn]] void report_and_exit(const ChildPlan& plan, int pidfile_fd, const char* op,
                                  const char* subject, int code,
                                  const char* detail = nullptr) noexcept {
  // Remove our own pidfile before reporting, so that once the caller reads
  // the failure nothing of this attempt is left behind.
  if (pidfile_fd >= 0) sys::unlink_pidfile(plan.pidfile, pidfile_fd);
  ErrorKind kind = (code == EACCES || code == EPERM) ? ErrorKind::privilege : ErrorKind::failure;
  send_report(g_report, make_failure(op, subject, code, detail, kind));
  _exit(1);
}

// Descriptors 0-2 must be open before anything else is opened: otherwise
// the pidfile could land on one of them and lose its lock when the standard
// streams are redirected.
void fill_standard_descriptors() noexcept {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int opened = ::open("/dev/null", O_RDWR | O_NOCTTY);  // takes the lowest: `fd`
    if (opened >= 0 && opened != fd) ::close(opened);
  }
}

// Opens `path` and moves it onto `target` (0, 1 or 2).
int open_onto(const char* path, int flags, int target) noexcept {
  int fd = sys::retry_eintr([&] { return sys::open(path, flags | O_NOCTTY | O_CLOEXEC, 0644); });
  if (fd < 0) return -1;
  if (fd == target) {
    // Already in place (only when `target` was closed): drop O_CLOEXEC.
    return ::fcntl(fd, F_SETFD, 0);
  }
  int rc = sys::retry_eintr([&] { return ::dup2(fd, target); });
  int saved = errno;
  ::close(fd);
  errno = saved;
  return rc < 0 ? -1 : 0;
}

void drop_privileges(const ChildPlan& plan, int pidfile_fd) noexcept {
  const char* user = plan.user;
  // Order matters: supplementary groups and gid while we are still root.
  if (::setgroups(plan.group_count, plan.groups) < 0)
    report_and_exit(plan, pidfile_fd, "set supplementary groups of", user, errno);
  if (::setresgid(plan.gid, plan.gid, plan.gid) < 0)
    report_and_exit(plan, pidfile_fd, "set group id of", user, errno);
  if (::setresuid(plan.uid, plan.uid, plan.uid) < 0)
    report_and_exit(plan, pidfile_fd, "set user id of", user, errno);
  uid_t r = 0, e = 0, s = 0;
  gid_t gr = 0, ge = 0, gs = 0;
  bool ok = ::getresuid(&r, &e, &s) == 0 && r == plan.uid && e == plan.uid && s == plan.uid &&
            ::getresgid(&gr, &ge, &gs) == 0 && gr == plan.gid && ge == plan.gid && gs == plan.gid;
  // Once unprivileged, regaining root must be impossible.
  if (ok && plan.uid != 0 && ::setuid(0) == 0) ok = false;
  if (!ok)
    report_and_exit(plan, pidfile_fd, "switch to user", user, EPERM,
                    "the credentials did not change as requested");
}

}  // namespace

DaemonFds become_daemon(const ChildPlan& plan) noexcept {
  // Nothing may interrupt the steps below; the body unblocks (or we do at
  // the end) once dispositions are sane again.
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  sys::reset_signal_dispositions();
  g_report = sys::move_above_stdio(plan.report_fd);
  if (g_report < 0) _exit(1);  // nothing to report through
  fill_standard_descriptors();

  if (::setsid() < 0) report_and_exit(plan, -1, "setsid", "", errno);
  pid_t pid = sys::fork();
  if (pid < 0) report_and_exit(plan, -1, "fork", "", errno);
  if (pid > 0) _exit(0);  // the session leader leaves; the daemon can never get a tty

  // From here on we are the daemon. Hand the caller a pidfd of ourselves:
  // the only handle that stays right whatever happens to us later.
  int self = sys::pidfd_open(::getpid());
  send_report(g_report, make_report(Report::Kind::forked, ::getpid()), self);
  if (self >= 0) ::close(self);

  if (sys::retry_eintr([&] { return ::chdir(plan.working_directory); }) < 0)
    report_and_exit(plan, -1, "change directory to", plan.working_directory, errno);
  ::umask(plan.umask);
  sys::close_from(3, g_report);

  int pidfile_fd = -1;
  if (plan.pidfile != nullptr) {
    sys::PidfileLock lock =
        sys::acquire_pidfile(plan.pidfile, plan.supervisor_lock ? sys::kSupervisorLockLength : 0);
    if (lock.fd < 0 && lock.err == 0) {
      send_report(g_report,
                  make_report(Report::Kind::already_running, lock.holder > 0 ? lock.holder : 0));
      _exit(0);
    }
    if (lock.fd < 0) report_and_exit(plan, -1, lock.what, plan.pidfile, lock.err, lock.detail);
    pidfile_fd = lock.fd;
    if (sys::write_pidfile(pidfile_fd, ::getpid()) < 0)
      report_and_exit(plan, pidfile_fd, "write", plan.pidfile, errno);
  }

  if (open_onto(plan.stdin_path, O_RDONLY, 0) < 0)
    report_and_exit(plan, pidfile_fd, "open standard input", plan.stdin_path, errno);
  if (open_onto(plan.stdout_path, O_WRONLY | O_APPEND | O_CREAT, 1) < 0)
    report_and_exit(plan, pidfile_fd, "open standard output", plan.stdout_path, errno);
  if (::strcmp(plan.stdout_path, plan.stderr_path) == 0) {
    if (sys::retry_eintr([] { return ::dup2(1, 2); }) < 0)
      report_and_exit(plan, pidfile_fd, "dup2", plan.stderr_path, errno);
  } else if (open_onto(plan.stderr_path, O_WRONLY | O_APPEND | O_CREAT, 2) < 0) {
    report_and_exit(plan, pidfile_fd, "open standard error", plan.stderr_path, errno);
  }

  if (plan.switch_user) drop_privileges(plan, pidfile_fd);

  if (!plan.keep_signals_blocked) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  return DaemonFds{g_report, pidfile_fd};
}

}  // namespace daemonkit::detail
