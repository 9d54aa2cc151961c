// src/spawn/spawn.cpp: the parent's side of spawn(), and find_program().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemonkit/spawn.hpp"
#include "spawn/child.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

namespace {

// What each step of the child is called in messages, and what it is about.
Error step_error(const detail::SpawnFailure& f, const SpawnOptions& o) {
  const std::string program = o.program.string();
  const std::string user = o.credentials ? o.credentials->user : "";
  auto e = [&](const char* op, std::string subject) {
    return Error::from_errno(f.code, op, std::move(subject));
  };
  switch (f.step) {
    case detail::kStepParentDied:
      return Error::because("start", program, "the supervisor died during the start");
    case detail::kStepCgroup:
      return e("move into its cgroup", program);
    case detail::kStepProcessGroup:
      return e("create a process group for", program);
    case detail::kStepTerminal:
      return e("give the terminal to", program);
    case detail::kStepOomScore:
      return e("set the OOM score adjustment",
               o.oom_score_adj ? std::to_string(*o.oom_score_adj) : "");
    case detail::kStepLimit:
      return e("set resource limit",
               f.index < o.limits.size() ? o.limits[f.index].name : std::string("?"));
    case detail::kStepNice:
      return e("set niceness", o.nice ? std::to_string(*o.nice) : "");
    case detail::kStepChroot:
      return e("change root to", o.chroot.string());
    case detail::kStepChdir:
      return e("change directory to", o.working_directory.string());
    case detail::kStepGroups:
      return e("set the supplementary groups of", user);
    case detail::kStepSetgid:
      return e("set the group id of", user);
    case detail::kStepSetuid:
      return e("set the user id of", user);
    case detail::kStepNoNewPrivs:
      return e("set no_new_privs for", program);
    case detail::kStepStdio:
      return e("set up the standard streams of", program);
    case detail::kStepExec:
    default:
      break;
  }
  Error x = e("execute", program);
  if (f.code == ENOENT || f.code == EACCES || f.code == ENOEXEC || f.code == ENOTDIR)
    x.kind = ErrorKind::not_installed;
  return x;
}

// Duplicates `fd` to a descriptor >= 3 (close-on-exec), so that the child
// can dup2 it onto 0-2 without clobbering another source.
Result<UniqueFd> above_stdio(int fd) {
  if (fd < 0) return UniqueFd();
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return fail(Error::from_errno(errno, "duplicate descriptor", std::to_string(fd)));
  return UniqueFd(copy);
}

// A script whose "#!" interpreter is missing fails to execute with ENOENT,
// as if the script itself were: name the interpreter instead. `file` is the
// script as the caller sees it.
Result<void> check_interpreter(const std::string& program, const std::filesystem::path& file,
                               const std::filesystem::path& root) {
  const std::string head = read_head(file, 256);
  if (head.rfind("#!", 0) != 0) return {};
  size_t begin = head.find_first_not_of(" \t", 2);
  if (begin == std::string::npos) return {};
  size_t end = head.find_first_of(" \t\n", begin);
  if (end == std::string::npos) {
    if (head.size() >= 256) return {};  // a line longer than we read: the kernel decides
    end = head.size();
  }
  const std::filesystem::path interpreter = head.substr(begin, end - begin);
  // Inside a new root, absolute symbolic links (/bin/sh -> /bin/busybox)
  // would be resolved against ours: leave that case to the exec itself.
  if (!interpreter.is_absolute() || !root.empty()) return {};
  if (::access(interpreter.c_str(), X_OK) == 0) return {};
  std::string why = "its interpreter '" + interpreter.string() + "': " + std::strerror(errno);
  if (interpreter.string().back() == '\r')  // a script saved with DOS line endings
    why = "its \"#!\" line ends in a carriage return (DOS line endings)";
  return fail(Error::because("execute", program, why, ErrorKind::not_installed));
}

bool is_executable_file(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::filesystem::path> find_program(const std::string& program, std::string_view path,
                                           const std::filesystem::path& root) {
  auto not_installed = [&](const std::string& why) {
    return fail(Error::because("execute", program, why, ErrorKind::not_installed));
  };
  if (program.empty()) return not_installed("empty program name");
  if (!root.empty()) {
    // The new root is the first thing to exist, or nothing inside it can.
    struct stat st {};
    if (::stat(root.c_str(), &st) < 0)
      return fail(Error::from_errno(errno, "change root to", root));
    if (!S_ISDIR(st.st_mode)) return fail(Error::from_errno(ENOTDIR, "change root to", root));
  }
  auto inside = [&](const std::filesystem::path& p) {
    return root.empty() ? p : root / p.relative_path();
  };
  if (program.find('/') != std::string::npos) {
    std::filesystem::path p = program;
    if (root.empty()) {
      std::error_code ec;
      if (!p.is_absolute()) p = std::filesystem::absolute(p, ec);
    } else if (!p.is_absolute()) {
      p = "/" / p;  // relative to the new root's "/" (the payload's --chdir comes later)
    }
    struct stat st {};
    if (::stat(inside(p).c_str(), &st) < 0) return not_installed(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_installed("not a regular file");
    if (::access(inside(p).c_str(), X_OK) < 0) return not_installed(std::strerror(errno));
    if (auto r = check_interpreter(program, inside(p), root); !r) return fail(std::move(r).error());
    return p;
  }
  size_t start = 0;
  for (;;) {
    size_t colon = path.find(':', start);
    std::string_view dir =
        path.substr(start, colon == std::string_view::npos ? colon : colon - start);
    std::filesystem::path candidate =
        std::filesystem::path(dir.empty() ? "." : std::string(dir)) / program;
    if (candidate.is_absolute() || root.empty()) {
      if (is_executable_file(inside(candidate))) {
        if (auto r = check_interpreter(program, inside(candidate), root); !r)
          return fail(std::move(r).error());
        std::error_code ec;
        return candidate.is_absolute() ? candidate : std::filesystem::absolute(candidate, ec);
      }
    }
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return not_installed("not found in PATH");
}

Result<Child> spawn(const SpawnOptions& options) {
  // Everything the child needs, computed before fork.
  const std::string program = options.program.string();
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  std::string pid_entry;
  if (!options.pid_variable.empty()) {
    pid_entry = options.pid_variable + "=" + std::string(12, '\0');
    envp.push_back(pid_entry.data());
  }
  envp.push_back(nullptr);
  const std::string chroot_dir = options.chroot.string();
  const std::string workdir = options.working_directory.string();
  const std::string oom = options.oom_score_adj ? std::to_string(*options.oom_score_adj) : "";
  std::vector<detail::SpawnLimit> limits;
  for (const auto& l : options.limits)
    limits.push_back({l.resource, static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)});

  std::array<UniqueFd, 3> stdio;
  int sources[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (size_t i = 0; i < 3; ++i) {
    auto copy = above_stdio(sources[i]);
    if (!copy) return fail(std::move(copy).error());
    stdio[i] = std::move(*copy);
  }

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return fail(Error::from_errno(errno, "pipe2", ""));
  UniqueFd status_read(pipefd[0]);
  UniqueFd status_write(pipefd[1]);

  detail::SpawnPlan plan;
  plan.program = program.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  for (size_t i = 0; i < 3; ++i) plan.stdio[i] = stdio[i].get();
  plan.chroot = chroot_dir.empty() ? nullptr : chroot_dir.c_str();
  plan.working_directory = workdir.empty() ? nullptr : workdir.c_str();
  plan.set_umask = options.umask.has_value();
  plan.umask = options.umask.value_or(022);
  if (options.credentials) {
    plan.switch_user = true;
    plan.uid = options.credentials->uid;
    plan.gid = options.credentials->gid;
    plan.groups = options.credentials->groups.data();
    plan.group_count = options.credentials->groups.size();
  }
  plan.set_nice = options.nice.has_value();
  plan.nice = options.nice.value_or(0);
  plan.limits = limits.data();
  plan.limit_count = limits.size();
  plan.oom_score_adj = oom.empty() ? nullptr : oom.c_str();
  plan.no_new_privs = options.no_new_privs;
  plan.new_process_group = options.new_process_group;
  plan.parent_death_signal = options.parent_death_signal;
  plan.parent = ::getpid();
  plan.take_terminal = options.take_terminal;
  plan.status_fd = status_write.get();
  plan.cgroup_procs = options.cgroup_procs;
  if (!pid_entry.empty()) plan.pid_slot = pid_entry.data() + options.pid_variable.size() + 1;

  // No handler of ours may run in the child: block everything around fork.
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  auto run_child = [](void* p) -> int {
    detail::run_spawn_child(*static_cast<const detail::SpawnPlan*>(p));
    return 127;  // not reached: the child executes or exits
  };
  pid_t pid = -1;
  if (options.cgroup_dir >= 0) {
    plan.cgroup_procs = -1;  // born there
    pid = sys::fork_into_cgroup(run_child, &plan, options.cgroup_dir);
    if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
      plan.cgroup_procs = options.cgroup_procs;  // an older kernel: the child joins
      pid = sys::fork_to_exec(run_child, &plan);
    }
  } else {
    pid = sys::fork_to_exec(run_child, &plan);
  }
  int fork_errno = errno;
  if (pid > 0 && options.new_process_group) ::setpgid(pid, pid);  // no race with the child
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return fail(Error::from_errno(fork_errno, "fork to execute", program));

  // Open the handle before the child can be reaped by anyone: it is our
  // child, so its pid stays ours until we wait for it.
  auto handle = Pidfd::open(pid);
  status_write.reset();
  detail::SpawnFailure failure;
  ssize_t n = sys::retry_eintr([&] { return ::read(status_read.get(), &failure, sizeof failure); });
  if (n == static_cast<ssize_t>(sizeof failure)) {
    (void)sys::retry_eintr([&] { return ::waitpid(pid, nullptr, 0); });
    return fail(step_error(failure, options));
  }
  if (!handle) {
    ::kill(pid, SIGKILL);
    (void)sys::retry_eintr([&] { return ::waitpid(pid, nullptr, 0); });
    return fail(std::move(handle).error());
  }
  return Child{pid, std::move(*handle)};
}

Result<bool> signal_group(const Child& child, int signo) {
  if (::kill(-child.pid, signo) == 0) return true;
  if (errno == ESRCH) return false;
  return fail(Error::from_errno(errno, "signal process group", std::to_string(child.pid)));
}

Result<std::optional<int>> try_reap(const Child& child) {
  int status = 0;
  pid_t r = sys::retry_eintr([&] { return ::waitpid(child.pid, &status, WNOHANG); });
  if (r < 0) return fail(Error::from_errno(errno, "wait for", "pid " + std::to_string(child.pid)));
  if (r == 0) return std::optional<int>();
  return std::optional<int>(status);
}

int reap_others(pid_t keep) {
  int count = 0;
  for (;;) {
    // Look without reaping first, so that `keep` is left for its owner (who
    // must deal with it before its zombie can hide others from us).
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0) break;
    if (info.si_pid == keep) break;
    if (sys::retry_eintr([&] { return ::waitpid(info.si_pid, nullptr, WNOHANG); }) > 0) ++count;
  }
  return count;
}

std::vector<pid_t> child_processes(pid_t pid) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const std::string text = read_head(task.path() / "children", size_t{1} << 20);
    const char* p = text.c_str();
    for (;;) {
      char* end = nullptr;
      long child = std::strtol(p, &end, 10);
      if (end == p) break;
      children.push_back(static_cast<pid_t>(child));
      p = end;
    }
  }
  return children;
}

std::vector<Descendant> stop_descendants(pid_t root, pid_t except) {
  std::vector<Descendant> found;
  auto known = [&](pid_t pid) {
    return pid == except || std::any_of(found.begin(), found.end(), [&](const Descendant& d) {
             return d.process.pid() == pid;
           });
  };
  // Rounds until one finds nothing new: an orphan may reach `root` (a
  // subreaper) while we walk.
  for (bool grew = true; grew;) {
    grew = false;
    std::vector<pid_t> parents{root};
    while (!parents.empty()) {
      const pid_t parent = parents.back();
      parents.pop_back();
      for (pid_t child : child_processes(parent)) {
        if (child == except) continue;
        if (known(child)) {
          parents.push_back(child);  // stopped already; its children are stopped too
          continue;
        }
        auto handle = Pidfd::open(child);
        if (!handle) continue;  // gone already
        // The handle is taken first; the process it names is ours only if
        // it is still the child of `parent` now.
        auto st = read_proc_stat(child);
        if (!st || st->ppid != parent) continue;
        if (st->state == 'Z' || st->state == 'X') continue;  // dead already, not yet reaped
        (void)handle->send_signal(SIGSTOP);
        std::string name = read_head("/proc/" + std::to_string(child) + "/comm", 64);
        if (!name.empty() && name.back() == '\n') name.pop_back();
        found.push_back(Descendant{std::move(*handle), st->pgrp, std::move(name)});
        parents.push_back(child);
        grew = true;
      }
    }
  }
  return found;
}

std::vector<Descendant> group_members(pid_t pgid, unsigned long long since_ticks) {
  std::vector<Descendant> found;
  if (pgid <= 1) return found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long pid = std::strtol(name.c_str(), &end, 10);
    if (pid <= 1 || *end != '\0') continue;
    auto before = read_proc_stat(static_cast<pid_t>(pid));
    if (!before || before->pgrp != pgid) continue;
    auto handle = Pidfd::open(static_cast<pid_t>(pid));
    if (!handle) continue;
    auto st = read_proc_stat(static_cast<pid_t>(pid));  // after the handle: it is this process
    if (!st || st->pgrp != pgid || st->state == 'Z' || st->start_ticks < since_ticks) continue;
    std::string comm = read_head(entry.path() / "comm", 64);
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    found.push_back(Descendant{std::move(*handle), st->pgrp, std::move(comm)});
  }
  return found;
}

void reclaim_terminal() {
  if (::isatty(0) != 1) return;
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  ::sigprocmask(SIG_BLOCK, &ttou, &old);
  ::tcsetpgrp(0, ::getpgrp());
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
}

Result<void> become_child_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return fail(Error::from_errno(errno, "prctl PR_SET_CHILD_SUBREAPER", ""));
  return {};
}

namespace {

// What to wait on while group `pgid` dies: a pidfd per member whose end
// brings the group closer to gone. A live member's own; a member that is
// our zombie already, its own too (readable once all its threads are gone,
// which is when it can be reaped); a zombie of a parent in the group, that
// parent's (its exit hands the zombie to us, the subreaper). Sets `blind`
// when some member's end comes with no event: no pidfds, a /proc that hides
// processes, or a zombie whose parent lives outside the group (its reaping
// wakes nobody but that parent).
std::vector<Pidfd> group_exits(pid_t pgid, bool& blind) {
  std::vector<Pidfd> exits;
  auto watch = [&](pid_t pid, auto&& still_it) {
    auto handle = Pidfd::open(pid);
    if (!handle) return;                    // gone meanwhile: the next look tells
    if (handle->fd() < 0 || !still_it()) {  // no pidfds; or a reused pid
      blind = true;
      return;
    }
    exits.push_back(std::move(*handle));
  };
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long n = std::strtol(name.c_str(), &end, 10);
    if (n <= 1 || *end != '\0') continue;
    const auto pid = static_cast<pid_t>(n);
    auto st = read_proc_stat(pid);
    if (!st || st->pgrp != pgid) continue;
    const bool dead = st->state == 'Z' || st->state == 'X';
    if (!dead || st->ppid == ::getpid()) {
      // Opened first, then confirmed: a pid reused meanwhile is not waited on.
      watch(pid, [&] {
        auto now = read_proc_stat(pid);
        return now && now->pgrp == pgid;
      });
      continue;
    }
    auto parent = read_proc_stat(st->ppid);
    if (!parent || parent->pgrp != pgid) {
      blind = true;
      continue;
    }
    watch(st->ppid, [&] {
      auto now = read_proc_stat(pid);
      return now && now->ppid == st->ppid;
    });
  }
  if (exits.empty()) blind = true;  // none seen, yet the group was there
  return exits;
}

}  // namespace

bool wait_for_group_gone(pid_t pgid, std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  // Pidfds of what will end (see group_exits): each one readable is a
  // member gone, or a zombie handed to us; none left to wait on, look again.
  std::vector<Pidfd> exits;
  bool blind = false;
  bool scan = true;
  for (;;) {
    for (;;) {  // reap what of the group has exited and is ours
      siginfo_t info;
      std::memset(&info, 0, sizeof info);
      if (::waitid(P_PGID, static_cast<id_t>(pgid), &info, WEXITED | WNOHANG) < 0 ||
          info.si_pid == 0)
        break;
    }
    // Zombies still count as members: ESRCH means nothing is left at all.
    if (::kill(-pgid, 0) < 0 && errno == ESRCH) return true;
    const auto now = clock::now();
    if (now >= deadline) return false;
    if (exits.empty() && scan) {
      blind = false;
      exits = group_exits(pgid, blind);
      scan = !exits.empty();  // else nothing to wait on: ticks from now on
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    // Some member's end comes with no event: look every 2 ms as well
    // (members die within moments of SIGKILL).
    if (blind) left = std::min(left, std::chrono::milliseconds(2));
    std::vector<struct pollfd> fds;
    fds.reserve(exits.size());
    for (const auto& e : exits) fds.push_back({e.fd(), POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(),
                         static_cast<int>(std::min<long long>(left.count(), 1LL << 30)));
    if (n < 0 && errno != EINTR) blind = true;  // cannot wait: ticks
    if (n <= 0) continue;                       // a tick, the deadline or EINTR: look again
    // A pidfd stays readable: wait on the others only.
    size_t kept = 0;
    for (size_t i = 0; i < exits.size(); ++i)
      if (fds[i].revents == 0) {
        if (i != kept) exits[kept] = std::move(exits[i]);
        ++kept;
      }
    exits.erase(exits.begin() + static_cast<std::ptrdiff_t>(kept), exits.end());
  }
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    std::string s = "killed by " + signal_name(WTERMSIG(wait_status));
    if (WCOREDUMP(wait_status)) s += " (core dumped)";
    return s;
  }
  return "ended";
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace daemonkit
