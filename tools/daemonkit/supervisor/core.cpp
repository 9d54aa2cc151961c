#include "supervisor/core.hpp"

#include <sys/wait.h>

#include <algorithm>

#include "daemonkit/control.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/spawn.hpp"

namespace dkcli {

using daemonkit::Level;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kAbortGrace{5000};  // the watchdog's SIGABRT, then SIGKILL
// A payload killed for missing its readiness window that is still not gone
// after this (stuck in the kernel) no longer holds up the failed start.
constexpr milliseconds kKilledGrace{5000};
// Requesters waiting for an answer: each gives up at its own timeout, so
// older ones beyond this many are forgotten rather than kept forever.
constexpr size_t kMaxWaiting = 64;

}  // namespace

std::string_view state_name(State s) {
  switch (s) {
    case State::idle:
      return "idle";
    case State::starting:
      return "starting";
    case State::running:
      return "running";
    case State::aborting:
      return "aborting";
    case State::backoff:
      return "backoff";
    case State::stopping:
      return "stopping";
    case State::done:
      return "done";
  }
  return "?";
}

Actions Core::start() {
  if (state_ != State::idle) return {};
  return {action::Spawn{}};
}

Actions Core::on(const Event& e, Clock::time_point now) {
  Actions out;
  if (state_ == State::done) return out;
  std::visit(Overloaded{
                 [&](const event::Spawned& x) { on_spawned(x, now, out); },
                 [&](const event::SpawnFailed& x) { on_spawn_failed(x, out); },
                 [&](const event::PayloadExited& x) { on_exit(x, now, out); },
                 [&](const event::Notified& x) { on_notified(x, now, out); },
                 [&](const event::StopRequested& x) { on_stop(x, now, out); },
                 [&](const event::ReloadRequested& x) { on_reload(x, out); },
                 [&](const event::Forward& x) { on_forward(x, out); },
                 [&](const event::SignalRequested& x) { on_signal_request(x, out); },
                 [&](const event::Deadline&) { on_deadline(now, out); },
             },
             e);
  return out;
}

daemonkit::Error Core::ready_timeout_error() const {
  return daemonkit::Error::because("start", config_.name(),
                                   "not ready within " +
                                       daemonkit::format_seconds(config_.ready_timeout) +
                                       " s (no READY=1); it was killed");
}

action::Save Core::save(DaemonRecord::Phase phase) const {
  action::Save s;
  s.phase = phase;
  s.restarts = policy_.restarts();
  s.status = status_;
  return s;
}

void Core::on_spawned(const event::Spawned& e, Clock::time_point now, Actions& out) {
  if (state_ != State::idle && state_ != State::backoff) return;
  payload_ = e.pid;
  started_ = now;
  deadline_.reset();
  if (ready_) {  // a respawn: the daemon is up already
    state_ = State::running;
    out.push_back(save(DaemonRecord::Phase::running));
    return;
  }
  state_ = State::starting;
  if (config_.notify) {
    deadline_ = now + config_.ready_timeout;
  } else if (config_.ready_after) {
    deadline_ = now + *config_.ready_after;
  } else {
    become_ready(now, out);  // executed: that is "up" without --notify
    return;
  }
  out.push_back(save(DaemonRecord::Phase::starting));
}

void Core::on_spawn_failed(const event::SpawnFailed& e, Actions& out) {
  if (state_ == State::idle) {
    state_ = State::done;
    out.push_back(action::FailStart{e.error});
  } else if (state_ == State::backoff) {
    finish(1, false, "cannot restart: " + e.error.message(), true, out);
  }
}

void Core::become_ready(Clock::time_point now, Actions& out) {
  ready_ = true;
  state_ = State::running;
  deadline_.reset();
  if (config_.watchdog) deadline_ = now + *config_.watchdog;
  // Recorded before `start` returns: start and status read it.
  out.push_back(save(DaemonRecord::Phase::running));
  out.push_back(action::ReportReady{});
}

void Core::answer_reloads(const std::string& text, Actions& out) {
  for (const auto& r : reloads_)
    out.push_back(action::Reply{daemonkit::reply_address(r.requester, r.id), text});
  reloads_.clear();
  reloading_ = false;
}

void Core::finish(int exit_code, bool clean, std::string reason, bool say, Actions& out) {
  state_ = State::done;
  deadline_.reset();
  out.push_back(action::Finish{exit_code, clean, std::move(reason), say});
}

void Core::on_exit(const event::PayloadExited& e, Clock::time_point now, Actions& out) {
  if (!has_payload()) return;
  const int ws = e.wait_status;
  const bool watchdog = state_ == State::aborting;
  std::string how = watchdog ? "watchdog timeout" : daemonkit::describe_exit(ws);
  if (!reloads_.empty())
    answer_reloads("failed: " + config_.name() + " " + how + " during the reload", out);
  payload_ = 0;
  deadline_.reset();

  if (state_ == State::stopping) {
    if (ready_timed_out_) {
      state_ = State::done;
      out.push_back(action::FailStart{ready_timeout_error()});
      return;
    }
    finish(daemonkit::exit_code_of(ws), true, "", false, out);
    return;
  }
  if (state_ == State::starting) {
    state_ = State::done;
    out.push_back(action::FailStart{
        daemonkit::Error::because("start", config_.name(), how + " before it was ready")});
    return;
  }
  // Running, or aborting: the payload ended by itself (or by the watchdog).
  bool clean = !watchdog && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
  bool gave_up = false;
  if (config_.respawn) {
    auto d = policy_.on_exit(watchdog ? SIGABRT : ws, started_, now);
    if (d.restart) {
      out.push_back(action::Say{Level::warning,
                                config_.name() + " " + how + "; restarting in " +
                                    std::to_string(d.delay.count()) + " ms (restart " +
                                    std::to_string(policy_.restarts() + 1) + ")",
                                false});
      state_ = State::backoff;
      deadline_ = now + d.delay;
      auto s = save(DaemonRecord::Phase::restarting);
      s.last_exit = how;
      s.next_start_in = d.delay;
      out.push_back(std::move(s));
      return;
    }
    how = d.why_not;
    // Giving up is an ending to report, whatever the last run's status.
    if (d.gave_up) {
      gave_up = true;
      clean = false;
    }
  }
  int code = daemonkit::exit_code_of(ws);
  if (gave_up && code == 0) code = 1;
  // Under `run` the exit status says it already; only the supervisor's own
  // decisions (gave up, watchdog) are news there.
  const bool say = !clean && (!config_.foreground || gave_up || watchdog);
  finish(code, clean, how, say, out);
}

void Core::on_notified(const event::Notified& e, Clock::time_point now, Actions& out) {
  if (!has_payload()) return;
  const auto& m = e.message;
  if (m.status) {
    status_ = *m.status;
    if (ready_) out.push_back(save(DaemonRecord::Phase::running));
  }
  if (m.watchdog && config_.watchdog && state_ == State::running)
    deadline_ = now + *config_.watchdog;
  if (!reloads_.empty() && m.reloading) reloading_ = true;
  if (!reloads_.empty() && reloading_ && m.ready) answer_reloads("ok", out);
  // The first READY=1 is told to the outer manager by ReportReady (with
  // MAINPID); later ones (after a reload) are forwarded as they come.
  bool first_ready = false;
  if (m.ready) {
    if (state_ == State::starting && config_.notify) {
      become_ready(now, out);
      first_ready = true;
    } else if (state_ == State::running && config_.watchdog) {
      deadline_ = now + *config_.watchdog;
    }
  }
  if (!config_.outer_notify.empty()) {
    std::string fwd;
    if (m.reloading) fwd += "RELOADING=1\n";
    if (m.stopping) fwd += "STOPPING=1\n";
    if (m.status) fwd += "STATUS=" + *m.status + "\n";
    if (m.ready && ready_ && !first_ready) fwd += "READY=1\n";
    if (!fwd.empty()) out.push_back(action::TellOuter{fwd});
  }
}

void Core::on_stop(const event::StopRequested& e, Clock::time_point now, Actions& out) {
  if (e.requester > 0 && std::find(stop_requesters_.begin(), stop_requesters_.end(), e.requester) ==
                             stop_requesters_.end()) {
    if (stop_requesters_.size() == kMaxWaiting) stop_requesters_.erase(stop_requesters_.begin());
    stop_requesters_.push_back(e.requester);
  }
  if (state_ == State::stopping || state_ == State::idle) return;
  const int signo = e.signal == 0 ? config_.stop_signal : e.signal;
  if (state_ == State::backoff) {  // between two runs: as if the payload got it
    finish(128 + signo, true, "", false, out);
    return;
  }
  state_ = State::stopping;
  stop_signal_sent_ = signo;
  stop_timeout_ = e.timeout;
  deadline_ = now + e.timeout;
  // The group, and the payload itself in case it left the group; a stopped
  // group would never see the signal (as systemd does).
  out.push_back(action::Signal{signo, true, signo != SIGKILL && signo != SIGCONT});
}

void Core::on_reload(const event::ReloadRequested& e, Actions& out) {
  if (reloads_.size() == kMaxWaiting) reloads_.erase(reloads_.begin());
  reloads_.push_back(Reload{e.requester, e.id});
  if (!has_payload()) {
    answer_reloads("failed: " + config_.name() + " is not running (waiting to respawn)", out);
    return;
  }
  // Concurrent requests share one SIGHUP and one confirmation.
  if (!config_.reload_notify || !reloading_) out.push_back(action::Signal{SIGHUP, false, false});
  // Without --reload-notify nothing more will come: done once passed on.
  if (!config_.reload_notify) answer_reloads("ok", out);
}

void Core::on_forward(const event::Forward& e, Actions& out) {
  // The payload itself: its helpers may not expect SIGHUP or SIGUSR1. Only
  // the stop signal goes to the whole group.
  if (has_payload()) out.push_back(action::Signal{e.signo, false, false});
}

void Core::on_signal_request(const event::SignalRequested& e, Actions& out) {
  const std::string why =
      config_.name() + (state_ == State::stopping ? " is stopping" : " waits to be respawned");
  if (!has_payload()) {
    out.push_back(action::Reply{e.reply_to, "not running: " + why});
    return;
  }
  out.push_back(action::SendRequested{e.signo, e.group, e.reply_to, "not running: " + why});
}

void Core::on_deadline(Clock::time_point now, Actions& out) {
  if (!deadline_ || now < *deadline_) return;
  deadline_.reset();
  switch (state_) {
    case State::starting:
      if (config_.notify) {  // READY=1 never came: kill it, fail once it is gone
        state_ = State::stopping;
        ready_timed_out_ = true;
        killed_ = true;
        deadline_ = now + kKilledGrace;
        out.push_back(action::KillAll{});
      } else {  // --ready-after: it ran long enough
        become_ready(now, out);
      }
      return;
    case State::running:  // no WATCHDOG=1 in time
      state_ = State::aborting;
      deadline_ = now + kAbortGrace;
      out.push_back(action::Say{Level::err,
                                "watchdog timeout: no WATCHDOG=1 from " + config_.name() +
                                    " within " + std::to_string(config_.watchdog->count()) +
                                    " ms; sending SIGABRT",
                                false});
      out.push_back(action::Signal{SIGABRT, false, false});
      return;
    case State::aborting:
      out.push_back(action::KillAll{});
      return;
    case State::stopping: {
      if (killed_) {  // killed, and not gone yet: only a failed start waits no longer
        if (ready_timed_out_) {
          state_ = State::done;
          out.push_back(action::FailStart{ready_timeout_error()});
        }
        return;
      }
      killed_ = true;
      const std::string line = "payload (pid " + std::to_string(payload_) +
                               ") did not exit within " + daemonkit::format_seconds(stop_timeout_) +
                               " s after " + daemonkit::signal_name(stop_signal_sent_) +
                               "; sent SIGKILL";
      out.push_back(action::Say{Level::err, line, true});
      for (pid_t requester : stop_requesters_)
        out.push_back(action::Reply{daemonkit::reply_address(requester, 0), "note: " + line});
      out.push_back(action::KillAll{});
      return;
    }
    case State::backoff:
      policy_.restarted();
      out.push_back(action::Spawn{});
      return;
    case State::idle:
    case State::done:
      return;
  }
}

}  // namespace dkcli
