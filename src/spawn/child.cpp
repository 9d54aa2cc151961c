// src/spawn/child.cpp: everything between fork and execve for a payload.
// Only async-signal-safe calls belong here (the parent may have threads, and
// its allocator's locks are frozen in the child). The child runs in the
// parent's memory (sys::fork_to_exec), so it writes nothing but its own
// stack, the report, and its pid into the environment prepared for it. Audit this file alone: it
// uses nothing but syscalls and the helpers in sys/sys.hpp.
#include "spawn/child.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "sys/sys.hpp"

namespace daemonkit::detail {

namespace {

[[noreturn]] void fail_step(const SpawnPlan& plan, SpawnStep step, int code,
                            size_t index = 0) noexcept {
  SpawnFailure f;
  f.step = step;
  f.code = code;
  f.index = static_cast<std::uint32_t>(index);
  (void)sys::write_all(plan.status_fd, &f, sizeof f);
  _exit(127);
}

// Moves the stdio sources into place. Sources are >= 3 (the parent made
// sure), so no dup2 can clobber a source not yet used.
void place_stdio(const SpawnPlan& plan) noexcept {
  for (int target = 0; target < 3; ++target) {
    int src = plan.stdio[target];
    if (src < 0) {
      // Keep ours, but it must not be close-on-exec.
      int flags = ::fcntl(target, F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC) != 0) ::fcntl(target, F_SETFD, flags & ~FD_CLOEXEC);
      continue;
    }
    if (sys::retry_eintr([&] { return ::dup2(src, target); }) < 0)
      fail_step(plan, kStepStdio, errno);
  }
}

}  // namespace

void run_spawn_child(const SpawnPlan& plan) noexcept {
  // The parent blocked every signal around fork; reset dispositions before
  // anything can be delivered, unblock only right before exec.
  sys::reset_signal_dispositions();

  // Into the payload's own cgroup before anything else, so that all it will
  // ever fork is there too ("0": the writing process).
  if (plan.cgroup_procs >= 0 && sys::write_all(plan.cgroup_procs, "0", 1) < 0)
    fail_step(plan, kStepCgroup, errno);
  if (plan.new_process_group && ::setpgid(0, 0) < 0) fail_step(plan, kStepProcessGroup, errno);
  if (plan.take_terminal && ::isatty(0) == 1) {
    // SIGTTOU is blocked, so a background group may take the terminal.
    if (::tcsetpgrp(0, ::getpgrp()) < 0) fail_step(plan, kStepTerminal, errno);
  }
  if (plan.oom_score_adj != nullptr) {
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail_step(plan, kStepOomScore, errno);
    if (sys::write_all(fd, plan.oom_score_adj, ::strlen(plan.oom_score_adj)) < 0)
      fail_step(plan, kStepOomScore, errno);
    ::close(fd);
  }
  if (plan.set_nice) {
    errno = 0;
    if (::setpriority(PRIO_PROCESS, 0, plan.nice) < 0 && errno != 0)
      fail_step(plan, kStepNice, errno);
  }
  if (plan.chroot != nullptr) {
    if (::chroot(plan.chroot) < 0) fail_step(plan, kStepChroot, errno);
    if (::chdir("/") < 0) fail_step(plan, kStepChroot, errno);
  }
  // The working directory is entered with the payload's own credentials
  // (below), so a directory it could not enter, or a link its user planted,
  // cannot give it one; without a user switch, here.
  if (!plan.switch_user && plan.working_directory != nullptr &&
      sys::retry_eintr([&] { return ::chdir(plan.working_directory); }) < 0)
    fail_step(plan, kStepChdir, errno);
  if (plan.set_umask) ::umask(plan.umask);
  if (plan.pid_slot != nullptr) sys::format_decimal(plan.pid_slot, ::getpid());
  place_stdio(plan);
  sys::close_from(3, plan.status_fd);
  // Limits last but one: a low descriptor limit must not break the steps
  // above (it does not close what is open).
  for (size_t i = 0; i < plan.limit_count; ++i) {
    struct rlimit rl {
      plan.limits[i].soft, plan.limits[i].hard
    };
    if (::setrlimit(static_cast<__rlimit_resource_t>(plan.limits[i].resource), &rl) < 0)
      fail_step(plan, kStepLimit, errno, i);
  }
  if (plan.switch_user) {
    if (::setgroups(plan.group_count, plan.groups) < 0) fail_step(plan, kStepGroups, errno);
    if (::setresgid(plan.gid, plan.gid, plan.gid) < 0) fail_step(plan, kStepSetgid, errno);
    if (::setresuid(plan.uid, plan.uid, plan.uid) < 0) fail_step(plan, kStepSetuid, errno);
    uid_t r = 0, e = 0, s = 0;
    if (::getresuid(&r, &e, &s) < 0 || r != plan.uid || e != plan.uid || s != plan.uid)
      fail_step(plan, kStepSetuid, EPERM);
    if (plan.uid != 0 && ::setuid(0) == 0) fail_step(plan, kStepSetuid, EPERM);
    if (plan.working_directory != nullptr &&
        sys::retry_eintr([&] { return ::chdir(plan.working_directory); }) < 0)
      fail_step(plan, kStepChdir, errno);
  }
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    fail_step(plan, kStepNoNewPrivs, errno);

  // Last: changing credentials clears the parent-death signal, so set it
  // after that, and make sure the parent did not die before it took effect.
  if (plan.parent_death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, plan.parent_death_signal);
    if (::getppid() != plan.parent) fail_step(plan, kStepParentDied, ESRCH);
  }

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.program, plan.argv, plan.envp);
  fail_step(plan, kStepExec, errno);
}

}  // namespace daemonkit::detail
