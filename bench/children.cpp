#include "children.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "probe.hpp"

extern char** environ;

namespace bench {

namespace {

constexpr std::int64_t kSweepEveryNs = 1'000'000'000;

std::runtime_error failure(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

Children::Children() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw failure("prctl(PR_SET_CHILD_SUBREAPER)");
  // Sleeps of 20 us must not stretch to the default 50 us of timer slack.
  if (prctl(PR_SET_TIMERSLACK, 1) != 0) throw failure("prctl(PR_SET_TIMERSLACK)");
  // Two pidfds per daemon, hundreds of daemons.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  sigset_t handled{};
  sigemptyset(&handled);
  for (int signal_number : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&handled, signal_number);
  if (sigprocmask(SIG_BLOCK, &handled, nullptr) != 0) throw failure("sigprocmask");
  signals_ = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals_ < 0) throw failure("signalfd");
  clock_origin_ns_ = now_ns();
  next_sweep_ns_ = clock_origin_ns_ + kSweepEveryNs;
}

Children::~Children() {
  close(signals_);
}

pid_t Children::spawn(const std::vector<std::string>& argv, const std::string& errors,
                      const std::string& out) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t files{};
  posix_spawnattr_t attributes{};
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&files, 2, errors.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawnattr_init(&attributes);
  sigset_t none{};
  sigset_t defaults{};
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int error = posix_spawn(&pid, args[0], &files, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    errno = error;
    throw failure("posix_spawn " + argv[0]);
  }
  commands_[pid] = std::nullopt;
  return pid;
}

void Children::reap_all() {
  int status = 0;
  pid_t pid = 0;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    auto command = commands_.find(pid);
    if (command != commands_.end()) command->second = status;
  }
}

void Children::reap_due() {
  signalfd_siginfo info{};
  while (read(signals_, &info, sizeof info) == sizeof info)
    if (info.ssi_signo != SIGCHLD)
      throw Interrupted(std::string("interrupted by ") +
                        sigabbrev_np(static_cast<int>(info.ssi_signo)));
  std::int64_t now = now_ns();
  bool due = now >= next_sweep_ns_;
  if (due) {
    std::int64_t ticks = (now - clock_origin_ns_) / kSweepEveryNs + 1;
    next_sweep_ns_ = clock_origin_ns_ + ticks * kSweepEveryNs;
  }
  if (reaping_ == Reaping::prompt || due) {
    reap_all();
    return;
  }
  // Slow: the commands the benchmark waits for are its own children, and a
  // shell would reap them at once; only orphans wait for the next sweep.
  for (auto& [pid, status] : commands_) {
    int got = 0;
    if (!status && waitpid(pid, &got, WNOHANG) == pid) status = got;
  }
}

void Children::pump(std::chrono::nanoseconds limit, const std::vector<int>& fds) {
  std::int64_t wait = limit.count();
  if (reaping_ == Reaping::slow)
    wait = std::max<std::int64_t>(0, std::min(wait, next_sweep_ns_ - now_ns()));
  std::vector<pollfd> watched{{signals_, POLLIN, 0}};
  for (int fd : fds) watched.push_back({fd, POLLIN, 0});
  timespec timeout{wait / 1'000'000'000, wait % 1'000'000'000};
  ppoll(watched.data(), watched.size(), &timeout, nullptr);
  reap_due();
}

std::optional<int> Children::wait(pid_t command, std::chrono::milliseconds limit) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(limit).count();
  for (;;) {
    auto it = commands_.find(command);
    if (it == commands_.end()) throw std::logic_error("wait for a pid that spawn did not start");
    int status = 0;
    if (!it->second && waitpid(command, &status, WNOHANG) == command) it->second = status;
    if (it->second) {
      int result = *it->second;
      commands_.erase(it);
      return result;
    }
    std::int64_t left = deadline - now_ns();
    if (left <= 0) {
      ::kill(command, SIGKILL);
      waitpid(command, &status, 0);
      commands_.erase(command);
      return std::nullopt;
    }
    pump(std::chrono::nanoseconds(left));
  }
}

Pidfd::Pidfd(pid_t pid) : fd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))), pid_(pid) {
  if (fd_ < 0 && errno != ESRCH) throw failure("pidfd_open " + std::to_string(pid));
}

Pidfd::~Pidfd() {
  if (fd_ >= 0) close(fd_);
}

Pidfd& Pidfd::operator=(Pidfd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    pid_ = other.pid_;
    other.fd_ = -1;
  }
  return *this;
}

bool Pidfd::exited() const {
  if (fd_ < 0) return true;
  pollfd ready{fd_, POLLIN, 0};
  int answer = 0;
  while ((answer = poll(&ready, 1, 0)) < 0 && errno == EINTR) {
  }
  if (answer < 0) throw failure("poll pidfd of " + std::to_string(pid_));
  return answer == 1;
}

void Pidfd::signal(int number) const {
  if (fd_ >= 0) syscall(SYS_pidfd_send_signal, fd_, number, nullptr, 0);
}

bool wait_exited(Children& children, const std::vector<Pidfd>& processes,
                 std::chrono::milliseconds limit) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(limit).count();
  for (;;) {
    std::vector<int> running;
    for (const auto& process : processes)
      if (!process.exited()) running.push_back(process.fd());
    if (running.empty()) return true;
    std::int64_t left = deadline - now_ns();
    if (left <= 0) return false;
    children.pump(std::chrono::nanoseconds(left), running);
  }
}

}  // namespace bench
