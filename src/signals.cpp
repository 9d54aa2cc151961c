#include "daemonkit/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>

#include "sys/sys.hpp"

namespace daemonkit {

namespace {

constexpr int kHandled[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};

// Written by handlers, read by dispatch(). A byte in the pipe only says
// "look at the flags", so a full pipe loses nothing.
std::atomic<int> g_write_fd{-1};
volatile std::sig_atomic_t g_pending[NSIG] = {};
std::atomic<bool> g_installed{false};

extern "C" void on_signal(int signo) {
  int saved = errno;
  g_pending[signo] = 1;
  int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    char byte = 0;
    (void)!::write(fd, &byte, 1);  // EAGAIN when full: the flag is enough
  }
  errno = saved;
}

bool take(int signo) {
  if (g_pending[signo] == 0) return false;
  g_pending[signo] = 0;
  return true;
}

}  // namespace

Result<std::unique_ptr<SignalHub>> SignalHub::install() {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true))
    return fail(Error::because("install signal handlers", "", "a SignalHub already exists"));
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
    g_installed = false;
    return fail(Error::from_errno(errno, "pipe2", ""));
  }
  std::unique_ptr<SignalHub> hub(new SignalHub(UniqueFd(p[0]), UniqueFd(p[1])));
  for (int s : kHandled) g_pending[s] = 0;
  g_write_fd = p[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : kHandled) {
    if (::sigaction(s, &sa, nullptr) < 0)
      return fail(Error::from_errno(errno, "sigaction", std::to_string(s)));
  }
  return hub;
}

SignalHub::~SignalHub() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s : kHandled) ::sigaction(s, &sa, nullptr);
  g_write_fd = -1;
  g_installed = false;
}

void SignalHub::on_reload(std::function<void()> callback) {
  reload_.push_back(std::move(callback));
}

void SignalHub::on_child_exit(std::function<void(pid_t, int)> callback) {
  child_exit_.push_back(std::move(callback));
}

void SignalHub::dispatch() {
  char drain[64];
  while (::read(read_end_.get(), drain, sizeof drain) > 0) {
  }
  if (take(SIGTERM) | take(SIGINT)) stop_.request_stop();
  if (take(SIGHUP))
    for (auto& cb : reload_) cb();
  if (take(SIGCHLD)) {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& cb : child_exit_) cb(pid, status);
    }
  }
}

bool SignalHub::wait_until(Clock::time_point deadline) {
  dispatch();
  while (!stop_requested()) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return true;
    struct pollfd p {
      read_end_.get(), POLLIN, 0
    };
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (n < 0 && errno != EINTR) return !stop_requested();
    dispatch();
  }
  return false;
}

}  // namespace daemonkit
