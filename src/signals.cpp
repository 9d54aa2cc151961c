#include "daemonkit/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <vector>

#include "sys/sys.hpp"

namespace daemonkit {

namespace {

constexpr int kAlways[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};

// Written by handlers, read by dispatch(). Each delivery writes one record
// (atomic: far below PIPE_BUF), so queued realtime signals stay distinct.
// The flags are a backstop: should the pipe ever be full, the last siginfo
// of each signal is still there. They are stored before the flag is raised.
std::atomic<int> g_write_fd{-1};
std::atomic<int> g_pending[NSIG];
std::atomic<int> g_code[NSIG];
std::atomic<int> g_value[NSIG];
std::atomic<int> g_sender[NSIG];
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free, "handlers need lock-free atomics");

struct Record {
  int signo;
  int code;
  int value;
  int sender;
};

extern "C" void handle_signal(int signo, siginfo_t* info, void* /*context*/) {
  int saved = errno;
  Record r{signo, 0, 0, 0};
  if (info != nullptr) {
    r.code = info->si_code;
    r.value = info->si_code == SI_QUEUE ? info->si_value.sival_int : 0;
    r.sender = info->si_pid;
  }
  g_code[signo].store(r.code, std::memory_order_relaxed);
  g_value[signo].store(r.value, std::memory_order_relaxed);
  g_sender[signo].store(r.sender, std::memory_order_relaxed);
  g_pending[signo].store(1, std::memory_order_release);
  int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) (void)!::write(fd, &r, sizeof r);  // EAGAIN when full: the flags remain
  errno = saved;
}

bool take(int signo, SignalEvent& event) {
  if (g_pending[signo].exchange(0, std::memory_order_acquire) == 0) return false;
  event.signo = signo;
  event.code = g_code[signo].load(std::memory_order_relaxed);
  event.value = g_value[signo].load(std::memory_order_relaxed);
  event.sender = g_sender[signo].load(std::memory_order_relaxed);
  return true;
}

}  // namespace

void unblock_all_signals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

Result<std::unique_ptr<SignalHub>> SignalHub::install(std::initializer_list<int> extra) {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true))
    return fail(Error::because("install signal handlers", "", "a SignalHub already exists"));
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
    g_installed = false;
    return fail(Error::from_errno(errno, "pipe2", ""));
  }
  std::unique_ptr<SignalHub> hub(new SignalHub(UniqueFd(p[0]), UniqueFd(p[1])));
  hub->installed_.assign(std::begin(kAlways), std::end(kAlways));
  for (int s : extra) {
    if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP)
      return fail(Error::because("install signal handler for", std::to_string(s),
                                 "not a catchable signal"));
    hub->installed_.push_back(s);
  }
  hub->takeover_.resize(NSIG);
  for (int s : hub->installed_) g_pending[s] = 0;
  g_write_fd = p[1];
  struct sigaction sa {};
  sa.sa_sigaction = handle_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigset_t handled;
  sigemptyset(&handled);
  hub->previous_.resize(hub->installed_.size());
  for (size_t i = 0; i < hub->installed_.size(); ++i) {
    int s = hub->installed_[i];
    if (::sigaction(s, &sa, &hub->previous_[i]) < 0)
      return fail(Error::from_errno(errno, "sigaction", std::to_string(s)));
    sigaddset(&handled, s);
  }
  // A signal inherited as blocked would never reach us.
  ::sigprocmask(SIG_UNBLOCK, &handled, nullptr);
  return hub;
}

SignalHub::~SignalHub() {
  for (size_t i = 0; i < previous_.size(); ++i) ::sigaction(installed_[i], &previous_[i], nullptr);
  g_write_fd = -1;
  g_installed = false;
}

void SignalHub::on_reload(std::function<void()> callback) {
  reload_.push_back(std::move(callback));
}

void SignalHub::on_child_exit(std::function<void(pid_t, int)> callback) {
  child_exit_.push_back(std::move(callback));
}

void SignalHub::on_signal(int signo, std::function<void(const SignalEvent&)> callback) {
  if (signo > 0 && signo < NSIG) takeover_[static_cast<size_t>(signo)] = std::move(callback);
}

void SignalHub::dispatch() {
  std::vector<SignalEvent> events;
  Record buf[64];
  for (;;) {
    ssize_t n = ::read(read_end_.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(Record); ++i) {
      const Record& r = buf[i];
      if (r.signo <= 0 || r.signo >= NSIG) continue;
      g_pending[r.signo].store(0, std::memory_order_relaxed);
      events.push_back(SignalEvent{r.signo, r.code, r.value, r.sender});
    }
  }
  for (int signo : installed_) {  // whatever a full pipe could not carry
    SignalEvent event;
    if (take(signo, event)) events.push_back(event);
  }
  for (const auto& event : events) deliver(event);
}

void SignalHub::deliver(const SignalEvent& event) {
  if (auto& cb = takeover_[static_cast<size_t>(event.signo)]) {
    cb(event);
    return;
  }
  switch (event.signo) {
    case SIGTERM:
    case SIGINT:
      stop_event_ = event;
      stop_.request_stop();
      break;
    case SIGHUP:
      for (auto& cb : reload_) cb();
      break;
    case SIGCHLD:
      for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        for (auto& cb : child_exit_) cb(pid, status);
      }
      break;
    default:
      break;
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
