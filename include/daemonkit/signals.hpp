// daemonkit/signals.hpp: signals as events, with no work in handlers.
//
// SignalHub installs handlers for SIGTERM, SIGINT, SIGHUP and SIGCHLD that
// only note the signal and write one byte to a close-on-exec self-pipe. The
// process keeps an empty signal mask (the daemon shows SigBlk 0 in /proc),
// and the program handles the signals when it calls dispatch() or one of the
// waits: SIGTERM/SIGINT request a stop on the hub's std::stop_source,
// SIGHUP runs the reload callbacks, SIGCHLD reaps exited children.
//
// At most one SignalHub exists at a time (handlers are process-wide).
// install() unblocks the signals it handles; the destructor restores the
// dispositions that were in place before.
#pragma once

#include <sys/types.h>

#include <signal.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stop_token>
#include <vector>

#include "daemonkit/fd.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// One delivered signal, as its siginfo described it.
struct SignalEvent {
  int signo = 0;
  int code = 0;      // si_code: SI_USER for kill(2), SI_QUEUE for sigqueue(3), ...
  int value = 0;     // si_value.sival_int when code == SI_QUEUE
  pid_t sender = 0;  // si_pid, when the kernel tells it
};

// Empties the calling thread's signal mask: after detach() with
// keep_signals_blocked, once the handlers are installed.
void unblock_all_signals();

class SignalHub {
 public:
  using Clock = std::chrono::steady_clock;

  // Installs the handlers for SIGTERM, SIGINT, SIGHUP, SIGCHLD and `extra`.
  // Fails if another hub is installed.
  static Result<std::unique_ptr<SignalHub>> install(std::initializer_list<int> extra = {});
  ~SignalHub();
  SignalHub(const SignalHub&) = delete;
  SignalHub& operator=(const SignalHub&) = delete;

  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_.get_token(); }
  [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }
  void request_stop() noexcept { stop_.request_stop(); }

  // Called, in order, on the dispatching thread when SIGHUP arrives.
  void on_reload(std::function<void()> callback);
  // Called for each child reaped after SIGCHLD, with its wait status.
  void on_child_exit(std::function<void(pid_t, int)> callback);
  // Takes over `signo` (one of those installed): the callback replaces the
  // default behaviour above. It runs once per delivery: queued realtime
  // signals each bring their own siginfo (the kernel merges only pending
  // standard signals of one kind).
  void on_signal(int signo, std::function<void(const SignalEvent&)> callback);
  // The last SIGTERM or SIGINT that requested a stop (signo 0 if none).
  [[nodiscard]] const SignalEvent& stop_event() const noexcept { return stop_event_; }

  // Readable when a signal is waiting to be dispatched; for callers that run
  // their own poll loop.
  [[nodiscard]] int fd() const noexcept { return read_end_.get(); }

  // Handles every signal that arrived so far; never blocks.
  void dispatch();
  // Dispatches signals until `deadline` or a stop request, whichever comes
  // first. Returns false when a stop was requested.
  bool wait_until(Clock::time_point deadline);
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
  }

 private:
  void deliver(const SignalEvent& event);
  SignalHub(UniqueFd read_end, UniqueFd write_end)
      : read_end_(std::move(read_end)), write_end_(std::move(write_end)) {}

  UniqueFd read_end_;
  UniqueFd write_end_;
  std::stop_source stop_;
  std::vector<std::function<void()>> reload_;
  std::vector<std::function<void(pid_t, int)>> child_exit_;
  std::vector<std::function<void(const SignalEvent&)>> takeover_;  // by signo
  std::vector<int> installed_;
  std::vector<struct sigaction> previous_;  // by position in installed_
  SignalEvent stop_event_;
};

}  // namespace daemonkit
