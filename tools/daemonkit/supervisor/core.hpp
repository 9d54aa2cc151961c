// tools/daemonkit/supervisor/core.hpp: what the supervisor decides, as a
// table of named states by events.
//
// The core owns the supervisor's state and every decision it takes; it
// makes no system call and reads no clock (each event brings the time), so
// each transition is unit-tested without a process (core_test.cpp). The
// loop (loop.hpp) turns what happens into events and carries out the
// actions a transition returns, in order.
//
//   state \ event  payload exited       READY=1            deadline             stop request
//   starting       fail the start       report up;         SIGKILL all, then    signal the group;
//                                       -> running         fail the start once  -> stopping
//                                                          it is gone (->
//                                                          stopping); or up
//                                                          (--ready-after)
//   running        respawn: -> backoff  (re)arm watchdog   watchdog: SIGABRT;   signal the group;
//                  or finish                               -> aborting          -> stopping
//   aborting       as running, a crash  -                  SIGKILL all          signal the group;
//                                                                               -> stopping
//   backoff        -                    -                  spawn -> running     finish (128+N)
//   stopping       finish (or fail the  -                  SIGKILL all; once    noted
//                  start)                                  killed, only a
//                                                          failed start ends
//   done           -                    -                  -                    -
//
// Besides: a reload request is passed on as SIGHUP and answered (at once,
// or with --reload-notify after RELOADING=1 then READY=1, or "failed" when
// the payload ends first); STATUS= is recorded; other signals are passed
// to the payload; a `daemonkit signal` request is answered.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/error.hpp"
#include "daemonkit/log.hpp"
#include "daemonkit/notify.hpp"
#include "supervisor/config.hpp"
#include "supervisor/respawn.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

enum class State {
  idle,      // nothing started yet
  starting,  // the first payload runs, not yet up
  running,   // the payload is up (the caller was told)
  aborting,  // the watchdog fired: SIGABRT sent, SIGKILL at the deadline
  backoff,   // no payload: waiting to respawn it
  stopping,  // the stop signal was sent (or SIGKILL): waiting for the exit
  done,      // finished; the loop ends
};
std::string_view state_name(State s);

using Clock = std::chrono::steady_clock;

// std::visit over lambdas.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// What happens, as the loop sees it.
namespace event {
struct Spawned {  // the payload was started
  pid_t pid = 0;
};
struct SpawnFailed {
  daemonkit::Error error;
};
struct PayloadExited {  // and was swept; its wait status
  int wait_status = 0;
};
struct Notified {  // from the payload or a process it started
  daemonkit::NotifyMessage message;
};
struct StopRequested {
  int signal = 0;  // 0: the daemon's own stop signal
  std::chrono::milliseconds timeout{0};
  pid_t requester = 0;  // a `daemonkit stop` to tell what happened, or 0
};
struct ReloadRequested {  // from `daemonkit reload`
  pid_t requester = 0;
  int id = 0;
};
struct Forward {  // SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2: for the payload
  int signo = 0;
};
struct SignalRequested {  // from `daemonkit signal`
  int signo = 0;
  bool group = false;
  std::string reply_to;
};
struct Deadline {};  // the time deadline() named has come
}  // namespace event

using Event = std::variant<event::Spawned, event::SpawnFailed, event::PayloadExited,
                           event::Notified, event::StopRequested, event::ReloadRequested,
                           event::Forward, event::SignalRequested, event::Deadline>;

// What the loop is to do.
namespace action {
struct Spawn {};  // start the payload (answered by Spawned or SpawnFailed)
struct Signal {   // to the payload; with `group`, to its group too
  int signo = 0;
  bool group = false;
  bool and_continue = false;  // then SIGCONT, so that a stopped group sees it
};
struct KillAll {};  // SIGKILL the payload, its group, its tree and its cgroup
struct Save {       // rewrite the record beside the pidfile
  DaemonRecord::Phase phase = DaemonRecord::Phase::starting;
  unsigned restarts = 0;
  std::string status;                          // the last STATUS=
  std::string last_exit;                       // restarting: how the last payload ended
  std::chrono::milliseconds next_start_in{0};  // restarting
};
struct ReportReady {};  // tell the caller (and the outer manager) the daemon is up
struct Say {
  daemonkit::Level level = daemonkit::Level::info;
  std::string text;
  // Also on run's standard error when the log is captured to a file; else
  // in the log when detached, on standard error under `run`.
  bool everywhere = false;
};
struct Reply {  // to a request's reply address
  std::string to;
  std::string text;
};
struct TellOuter {  // forward to the outer manager's $NOTIFY_SOCKET
  std::string text;
};
struct SendRequested {  // a `daemonkit signal` request: send, then answer
  int signo = 0;
  bool group = false;
  std::string reply_to;
  std::string if_exited;  // the answer when the payload turns out to have exited
};
struct FailStart {  // the daemon never came up: report it, leave nothing
  daemonkit::Error error;
};
struct Finish {  // the daemon ends
  int exit_code = 0;
  bool clean = false;  // remove the pidfile; else leave it saying why
  std::string reason;  // why, when not clean
  bool say_reason = false;
};
}  // namespace action

using Action = std::variant<action::Spawn, action::Signal, action::KillAll, action::Save,
                            action::ReportReady, action::Say, action::Reply, action::TellOuter,
                            action::SendRequested, action::FailStart, action::Finish>;
using Actions = std::vector<Action>;

class Core {
 public:
  explicit Core(const SupervisorConfig& config)
      : config_(config), policy_(config.max_restarts, config.no_respawn_on) {}

  // The first payload: the set-up is done.
  Actions start();
  // The transition: the new state is kept, the actions returned.
  Actions on(const Event& e, Clock::time_point now);

  [[nodiscard]] State state() const noexcept { return state_; }
  // When to send Deadline; nullopt: nothing pending, sleep until an event.
  [[nodiscard]] std::optional<Clock::time_point> deadline() const noexcept { return deadline_; }
  [[nodiscard]] bool ready() const noexcept { return ready_; }
  [[nodiscard]] bool has_payload() const noexcept {
    return state_ == State::starting || state_ == State::running || state_ == State::aborting ||
           state_ == State::stopping;
  }

 private:
  void on_spawned(const event::Spawned& e, Clock::time_point now, Actions& out);
  void on_spawn_failed(const event::SpawnFailed& e, Actions& out);
  void on_exit(const event::PayloadExited& e, Clock::time_point now, Actions& out);
  void on_notified(const event::Notified& e, Clock::time_point now, Actions& out);
  void on_stop(const event::StopRequested& e, Clock::time_point now, Actions& out);
  void on_reload(const event::ReloadRequested& e, Actions& out);
  void on_forward(const event::Forward& e, Actions& out);
  void on_signal_request(const event::SignalRequested& e, Actions& out);
  void on_deadline(Clock::time_point now, Actions& out);

  void become_ready(Clock::time_point now, Actions& out);
  void answer_reloads(const std::string& text, Actions& out);
  void finish(int exit_code, bool clean, std::string reason, bool say, Actions& out);
  [[nodiscard]] action::Save save(DaemonRecord::Phase phase) const;
  [[nodiscard]] daemonkit::Error ready_timeout_error() const;

  const SupervisorConfig& config_;
  State state_ = State::idle;
  std::optional<Clock::time_point> deadline_;
  bool ready_ = false;  // the caller (or the outer manager) was told
  pid_t payload_ = 0;
  Clock::time_point started_{};  // the payload's
  RespawnPolicy policy_;
  std::string status_;  // the last STATUS=
  // Stopping: what was sent and why.
  int stop_signal_sent_ = 0;
  std::chrono::milliseconds stop_timeout_{0};
  bool ready_timed_out_ = false;        // stopping because READY=1 never came
  bool killed_ = false;                 // stopping, and SIGKILL was sent
  std::vector<pid_t> stop_requesters_;  // each once, at most kMaxWaiting
  struct Reload {
    pid_t requester = 0;
    int id = 0;
  };
  std::vector<Reload> reloads_;  // waiting for RELOADING=1, READY=1; at most kMaxWaiting
  bool reloading_ = false;       // RELOADING=1 seen since the last SIGHUP
};

}  // namespace dkcli
