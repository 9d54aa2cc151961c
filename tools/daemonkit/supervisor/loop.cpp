#include "supervisor/loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>

#include "daemonkit/cgroup.hpp"
#include "daemonkit/control.hpp"
#include "daemonkit/notify.hpp"
#include "daemonkit/output.hpp"
#include "daemonkit/spawn.hpp"
#include "supervisor/core.hpp"
#include "supervisor/leftovers.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

using daemonkit::Error;
using daemonkit::Level;
using daemonkit::Result;
using daemonkit::UniqueFd;
using std::chrono::milliseconds;

namespace {

// Where one captured stream goes.
struct Capture {
  UniqueFd read_end;   // non-blocking; the supervisor reads
  UniqueFd write_end;  // given to each payload
  std::optional<daemonkit::OutputFile> file;
  bool to_syslog = false;
  Level level = Level::info;
  daemonkit::LineBuffer lines;
  // Output that could not be written (a full disk): told in the file once
  // writing works again.
  std::uint64_t lost_bytes = 0;
  std::string lost_because;
};

// Appends to the capture's file. A failed write drops the data (the payload
// must not block on a full disk) and is counted; once writing works again,
// a line in the place of the gap says how much was lost and why.
void write_to_file(Capture& c, std::string_view data) {
  if (c.lost_bytes > 0) {
    const std::string notice = "daemonkit: lost up to " + std::to_string(c.lost_bytes) +
                               " bytes of output: " + c.lost_because + "\n";
    if (!c.file->write(notice)) {  // still failing: the gap grows
      c.lost_bytes += data.size();
      return;
    }
    c.lost_bytes = 0;
    c.lost_because.clear();
  }
  if (auto r = c.file->write(data); !r) {
    if (c.lost_bytes == 0) c.lost_because = r.error().message();
    c.lost_bytes += data.size();
  }
}

Result<Capture> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return daemonkit::fail(Error::from_errno(errno, "pipe2", ""));
  Capture c;
  c.read_end.reset(p[0]);
  c.write_end.reset(p[1]);
  int flags = ::fcntl(p[0], F_GETFL);
  if (flags < 0 || ::fcntl(p[0], F_SETFL, flags | O_NONBLOCK) < 0)
    return daemonkit::fail(Error::from_errno(errno, "fcntl O_NONBLOCK", "pipe"));
  return c;
}

Result<UniqueFd> open_fd(const std::filesystem::path& path, int flags, const char* what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) return daemonkit::fail(Error::from_errno(errno, what, path));
  return UniqueFd(fd);
}

class Loop {
 public:
  Loop(const SupervisorConfig& config, daemonkit::SignalHub& hub, daemonkit::Daemon* caller,
       std::optional<daemonkit::LockedPidfile>& pidfile)
      : config_(config),
        hub_(hub),
        caller_(caller),
        files_(config.pidfile, pidfile),
        core_(config) {
    record_.supervisor = ::getpid();
    record_.command = config_.argv;
    record_.stop_signal = config_.stop_signal;
    record_.log = config_.log_path();
    if (config_.syslog_tag) record_.syslog = *config_.syslog_tag;
    if (config_.credentials) {
      record_.uid = config_.credentials->uid;
      record_.gid = config_.credentials->gid;
    }
  }

  int run();

 private:
  // Setting up, before the first payload.
  void route_signals();
  Result<void> set_up();
  Result<void> open_outputs();
  void end_predecessor();

  // Waiting, and turning what happened into events.
  void wait();
  void handle_events();
  void dispatch(const Event& e);
  void carry_out(const Actions& actions);
  void on_payload_exit();
  void drain_notify();
  enum class Lineage { payload, stranger, gone };
  Lineage lineage(pid_t sender) const;
  bool from_payload(const daemonkit::NotifyListener::Datagram& d) const;
  void note_ignored(const daemonkit::NotifyListener::Datagram& d);

  // Carrying out the core's actions.
  void perform(const Action& a, std::deque<Event>& next);
  Result<void> spawn_payload();
  void signal_payload(const action::Signal& s);
  void kill_everything();
  void send_requested(const action::SendRequested& r);
  void save(const action::Save& s);
  void report_ready();
  void fail_start(const Error& e);
  void finish(const action::Finish& f);

  // The payload's end, and what it leaves.
  int sweep();
  struct Killed {
    pid_t pid;
    std::string name;
  };
  std::vector<Killed> end_children();
  void end_cgroup();

  // Output.
  void drain(Capture& c, bool final);
  void drain_all(bool final);
  void emit(Capture& c, std::string_view data);
  void reopen_outputs();
  void say(Level level, const std::string& text);
  // One line on run's standard error and in the captured log (or syslog).
  void say_everywhere(Level level, const std::string& text);

  const SupervisorConfig& config_;
  daemonkit::SignalHub& hub_;
  daemonkit::Daemon* caller_;
  DaemonFiles files_;
  Core core_;
  bool done_ = false;
  int exit_code_ = 0;

  std::optional<Capture> out_;
  std::optional<Capture> err_;  // unset when stderr shares out_'s pipe
  std::optional<daemonkit::SyslogWriter> syslog_;
  UniqueFd stdin_fd_, stdout_null_, stderr_null_;
  std::optional<daemonkit::NotifyListener> notify_;
  int ignored_notifications_ = 0;
  std::vector<std::string> env_;

  std::optional<daemonkit::Child> payload_;
  std::optional<daemonkit::Cgroup> cgroup_;  // the payload's own, where the machine allows
  bool killed_all_ = false;                  // kill_everything() ended this payload
  DaemonRecord record_;
  std::string record_error_;  // the last failure to save it, logged once
};

void Loop::say(Level level, const std::string& text) {
  if (config_.foreground) {
    const std::string line = "daemonkit: " + text + "\n";
    (void)!::write(2, line.data(), line.size());
    return;
  }
  say_everywhere(level, text);
}

void Loop::say_everywhere(Level level, const std::string& text) {
  const std::string line = "daemonkit: " + text + "\n";
  if (config_.foreground) (void)!::write(2, line.data(), line.size());
  if (syslog_) {
    (void)syslog_->send(level, ::getpid(), line);
  } else if (Capture* c = err_ ? &*err_ : (out_ ? &*out_ : nullptr); c && c->file) {
    write_to_file(*c, line);
  }
}

// Signals become events of the core; what needs no decision (reopening
// the captured files) is done here.
void Loop::route_signals() {
  auto stop_from = [this](const daemonkit::SignalEvent& e) {
    event::StopRequested stop;
    if (auto req = daemonkit::decode_stop_request(e.code, e.value)) {
      stop.signal = req->signal;
      stop.timeout = req->timeout;
      stop.requester = e.sender;
    } else {
      // A plain SIGTERM (run's manager, kill) means "stop": the daemon's
      // own stop signal; SIGINT stays SIGINT.
      stop.signal = e.signo == SIGTERM ? 0 : e.signo;
      stop.timeout = config_.stop_timeout;
    }
    dispatch(stop);
  };
  hub_.on_signal(SIGTERM, stop_from);
  hub_.on_signal(SIGINT, stop_from);
  hub_.on_signal(SIGHUP, [this](const daemonkit::SignalEvent&) {
    reopen_outputs();
    dispatch(event::Forward{SIGHUP});
  });
  hub_.on_signal(daemonkit::reopen_request_signal(),
                 [this](const daemonkit::SignalEvent&) { reopen_outputs(); });
  hub_.on_signal(daemonkit::reload_request_signal(), [this](const daemonkit::SignalEvent& e) {
    reopen_outputs();
    if (e.code == SI_QUEUE) dispatch(event::ReloadRequested{e.sender, e.value});
  });
  for (int s : {SIGQUIT, SIGUSR1, SIGUSR2})
    hub_.on_signal(s, [this, s](const auto&) { dispatch(event::Forward{s}); });
  hub_.on_signal(daemonkit::signal_request_signal(), [this](const daemonkit::SignalEvent& e) {
    if (auto req = daemonkit::decode_signal_request(e.code, e.value))
      dispatch(event::SignalRequested{req->signo, req->group,
                                      daemonkit::reply_address(e.sender, req->id)});
  });
  hub_.on_signal(SIGCHLD, [](const auto&) {});  // the loop reaps, payload first
}

Result<void> Loop::set_up() {
  if (auto r = daemonkit::become_child_subreaper(); !r) return r;
  if (config_.stdin_path) {
    // As the payload's user: root must not open what that user planted.
    auto fd = daemonkit::open_input(*config_.stdin_path, config_.credentials);
    if (!fd) return daemonkit::fail(std::move(fd).error());
    stdin_fd_ = std::move(*fd);
  } else if (!config_.foreground) {
    auto fd = open_fd("/dev/null", O_RDONLY, "open");
    if (!fd) return daemonkit::fail(std::move(fd).error());
    stdin_fd_ = std::move(*fd);
  }
  if (auto r = open_outputs(); !r) return r;
  // Environment: the outer manager's variables are ours, never the payload's.
  for (const auto& e : config_.env) {
    std::string_view name = std::string_view(e).substr(0, e.find('='));
    if (name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID") continue;
    env_.push_back(e);
  }
  if (config_.notify) {
    auto l = daemonkit::NotifyListener::open();
    if (!l) return daemonkit::fail(std::move(l).error());
    notify_.emplace(std::move(*l));
    env_.push_back("NOTIFY_SOCKET=" + notify_->address());
    if (config_.watchdog)
      env_.push_back("WATCHDOG_USEC=" + std::to_string(config_.watchdog->count() * 1000));
  }
  // A cgroup of the payload's own, named after us (and a random part);
  // without one (no v2 hierarchy we may write to) the process tree is what
  // we sweep. Made before we first record ourselves, so the record names it.
  cgroup_ = daemonkit::Cgroup::create("daemonkit-" + std::to_string(::getpid()));
  if (cgroup_) record_.cgroup = cgroup_->path();
  end_predecessor();
  return {};
}

// Output: syslog, files (through pipes, so they can be reopened and
// rotated), or the supervisor's own streams under `run`, or /dev/null.
Result<void> Loop::open_outputs() {
  if (config_.syslog_tag) {
    auto w = daemonkit::SyslogWriter::open(*config_.syslog_tag);
    if (!w) return daemonkit::fail(std::move(w).error());
    syslog_.emplace(std::move(*w));
    for (auto* slot : {&out_, &err_}) {
      auto c = make_pipe();
      if (!c) return daemonkit::fail(std::move(c).error());
      c->to_syslog = true;
      c->level = slot == &out_ ? Level::info : Level::err;
      slot->emplace(std::move(*c));
    }
    return {};
  }
  for (auto [slot, path] :
       {std::pair{&out_, &config_.stdout_path}, {&err_, &config_.stderr_path}}) {
    if (!*path) continue;
    auto c = make_pipe();
    if (!c) return daemonkit::fail(std::move(c).error());
    auto f = daemonkit::OutputFile::open(**path, config_.rotation, config_.credentials);
    if (!f) return daemonkit::fail(std::move(f).error());
    c->file.emplace(std::move(*f));
    slot->emplace(std::move(*c));
  }
  if (!config_.foreground) {
    if (!out_) {
      auto fd = open_fd("/dev/null", O_WRONLY, "open");
      if (!fd) return daemonkit::fail(std::move(fd).error());
      stdout_null_ = std::move(*fd);
    }
    if (!err_ && !config_.stderr_to_stdout) {
      auto fd = open_fd("/dev/null", O_WRONLY, "open");
      if (!fd) return daemonkit::fail(std::move(fd).error());
      stderr_null_ = std::move(*fd);
    }
  }
  return {};
}

// A supervisor before us was killed (we hold the lock now, so it is gone)
// and may have left its payload running: end it before ours starts, so two
// never run.
void Loop::end_predecessor() {
  auto old = files_.previous();
  if (!old || old->supervisor == ::getpid()) return;
  // Recorded at once, so that a concurrent start sees a supervisor still
  // starting, however long ending the old payload takes.
  save(action::Save{});
  for (const auto& line : end_leftovers(*old, config_.stop_timeout))
    say_everywhere(Level::warning, line);
}

Result<void> Loop::spawn_payload() {
  daemonkit::SpawnOptions s;
  s.program = config_.program;
  s.argv = config_.argv;
  s.env = env_;
  s.stdin_fd = stdin_fd_ ? stdin_fd_.get() : -1;
  s.stdout_fd = out_ ? out_->write_end.get() : (stdout_null_ ? stdout_null_.get() : -1);
  s.stderr_fd = err_                               ? err_->write_end.get()
                : stderr_null_                     ? stderr_null_.get()
                : out_ && config_.stderr_to_stdout ? out_->write_end.get()
                                                   : -1;
  if (config_.chroot) s.chroot = *config_.chroot;
  s.working_directory = config_.working_directory;
  s.umask = config_.umask;
  s.credentials = config_.credentials;
  s.nice = config_.nice;
  s.limits = config_.limits;
  s.oom_score_adj = config_.oom_score_adj;
  s.no_new_privs = config_.no_new_privs;
  s.take_terminal = config_.foreground;
  if (config_.watchdog) s.pid_variable = "WATCHDOG_PID";
  if (cgroup_ && cgroup_->was_killed()) {
    // A new cgroup for this generation (see Cgroup::was_killed).
    (void)cgroup_->remove();
    cgroup_ = daemonkit::Cgroup::create("daemonkit-" + std::to_string(::getpid()));
    record_.cgroup = cgroup_ ? cgroup_->path() : "";
  }
  if (cgroup_) {
    s.cgroup_dir = cgroup_->dir_fd();
    s.cgroup_procs = cgroup_->procs_fd();
  }
  auto child = daemonkit::spawn(s);
  if (!child) return daemonkit::fail(std::move(child).error());
  payload_.emplace(std::move(*child));
  killed_all_ = false;
  // Its identity for whoever finds it after us: pid and start time. It is
  // our unreaped child, so the pid is still its own.
  auto st = daemonkit::read_proc_stat(payload_->pid);
  record_.payload = payload_->pid;
  record_.payload_start_ticks = st ? st->start_ticks : 0;
  return {};
}

void Loop::dispatch(const Event& e) {
  carry_out(core_.on(e, Clock::now()));
}

void Loop::carry_out(const Actions& actions) {
  // An action may answer with an event (a spawn, with its outcome): the
  // core takes those in order, after the actions before them.
  std::deque<Event> answers;
  for (const auto& a : actions) perform(a, answers);
  while (!answers.empty() && !done_) {
    const Event e = std::move(answers.front());
    answers.pop_front();
    for (const auto& a : core_.on(e, Clock::now())) perform(a, answers);
  }
}

void Loop::perform(const Action& a, std::deque<Event>& next) {
  std::visit(Overloaded{
                 [&](const action::Spawn&) {
                   if (auto r = spawn_payload(); !r)
                     next.push_back(event::SpawnFailed{r.error()});
                   else
                     next.push_back(event::Spawned{payload_->pid});
                 },
                 [&](const action::Signal& s) { signal_payload(s); },
                 [&](const action::KillAll&) { kill_everything(); },
                 [&](const action::Save& s) { save(s); },
                 [&](const action::ReportReady&) { report_ready(); },
                 [&](const action::Say& s) {
                   s.everywhere ? say_everywhere(s.level, s.text) : say(s.level, s.text);
                 },
                 [&](const action::Reply& r) { (void)daemonkit::notify_to(r.to, r.text); },
                 [&](const action::TellOuter& t) {
                   (void)daemonkit::notify_to(config_.outer_notify, t.text);
                 },
                 [&](const action::SendRequested& r) { send_requested(r); },
                 [&](const action::FailStart& f) { fail_start(f.error); },
                 [&](const action::Finish& f) { finish(f); },
             },
             a);
}

void Loop::signal_payload(const action::Signal& s) {
  if (!payload_) return;
  if (s.group) (void)daemonkit::signal_group(*payload_, s.signo);
  (void)payload_->handle.send_signal(s.signo);
  if (s.and_continue) {
    if (s.group) (void)daemonkit::signal_group(*payload_, SIGCONT);
    (void)payload_->handle.send_signal(SIGCONT);
  }
}

void Loop::send_requested(const action::SendRequested& r) {
  if (!payload_ || payload_->handle.has_exited()) {
    (void)daemonkit::notify_to(r.reply_to, r.if_exited);
    return;
  }
  auto sent =
      r.group ? daemonkit::signal_group(*payload_, r.signo) : payload_->handle.send_signal(r.signo);
  (void)daemonkit::notify_to(r.reply_to, !sent ? "failed: " + sent.error().message()
                                         : *sent
                                             ? std::string("ok")
                                             : "not running: " + config_.name() + " has exited");
}

void Loop::report_ready() {
  if (caller_ != nullptr) caller_->ready();
  if (!config_.outer_notify.empty())
    (void)daemonkit::notify_to(config_.outer_notify,
                               "READY=1\nMAINPID=" + std::to_string(::getpid()));
}

void Loop::save(const action::Save& s) {
  if (!files_.enabled()) return;
  record_.phase = s.phase;
  record_.restarts = s.restarts;
  record_.status = s.status;
  record_.last_exit = s.last_exit;
  record_.next_start_ms = 0;
  if (s.phase == DaemonRecord::Phase::restarting) {
    record_.payload = 0;
    record_.payload_start_ticks = 0;
    record_.next_start_ms =
        std::chrono::duration_cast<milliseconds>(
            (std::chrono::system_clock::now() + s.next_start_in).time_since_epoch())
            .count();
  }
  if (auto r = files_.save(record_); !r) {
    // Said once per cause: a full disk must not fill the log with it.
    const std::string why = r.error().message();
    if (why != record_error_)
      say_everywhere(Level::err, "cannot record the daemon's state: " + why);
    record_error_ = why;
  } else {
    record_error_.clear();
  }
}

// The daemon never came up (set-up failed, or the first payload could not
// be started, ended or missed its readiness window; the payload, if any,
// is gone and swept by then).
void Loop::fail_start(const Error& e) {
  end_children();
  end_cgroup();
  if (caller_ == nullptr) std::fprintf(stderr, "daemonkit: cannot run: %s\n", e.message().c_str());
  files_.fail_start(caller_, e);
  exit_code_ = static_cast<int>(daemonkit::exit_code_for(e));
  if (config_.foreground && e.kind == daemonkit::ErrorKind::failure) exit_code_ = 1;
  done_ = true;
}

void Loop::finish(const action::Finish& f) {
  done_ = true;
  exit_code_ = f.exit_code;
  end_children();
  end_cgroup();
  if (f.say_reason) say(Level::err, f.reason);
  if (f.clean || config_.foreground) {
    // `run` always removes its pidfile: its exit status tells the rest.
    if (auto r = files_.remove(); !r) say(Level::err, r.error().message());
    return;
  }
  // Leave the pidfile (unlocked once we exit) and say why, for `status`.
  record_.payload = 0;
  record_.payload_start_ticks = 0;
  record_.last_exit.clear();
  record_.next_start_ms = 0;
  record_.ended = f.reason;
  if (auto r = files_.leave(record_); !r)
    say_everywhere(Level::err, "cannot record the daemon's state: " + r.error().message());
}

// The payload's cgroup goes with the daemon: what is still in it (nothing,
// but for what escaped the tree) is killed first.
void Loop::end_cgroup() {
  if (!cgroup_) return;
  if (cgroup_->populated()) {
    (void)cgroup_->kill_all();
    (void)cgroup_->wait_until_empty(std::chrono::seconds(5));
  }
  if (auto r = cgroup_->remove(); !r) say(Level::warning, r.error().message());
  cgroup_.reset();
  record_.cgroup.clear();
}

// What is left of our children once the payload is gone and swept:
// descendants of it that came back to us as orphans (we are a subreaper)
// and are on their way out. Kills and reaps them until none is left; each
// wait is for an exit (a pidfd), and the tree is looked at again because
// an orphan reaches us only as its parent dies.
std::vector<Loop::Killed> Loop::end_children() {
  std::vector<Killed> killed;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    (void)daemonkit::reap_others(0);
    auto left = daemonkit::stop_descendants(::getpid());
    if (left.empty() || Clock::now() >= deadline) break;
    for (auto& d : left) {
      if (auto sent = d.process.send_signal(SIGKILL); sent && *sent)
        killed.push_back(Killed{d.process.pid(), d.name});
    }
    for (auto& d : left) (void)d.process.wait_for_exit(std::chrono::milliseconds(100));
  }
  return killed;
}

void Loop::kill_everything() {
  if (!payload_) return;
  // Stop the tree first (nothing forks meanwhile), then kill it all: the
  // group (while the payload is unreaped, its id is ours), the payload
  // itself (it may have left its group) and every descendant, wherever
  // it moved to; then the cgroup, which nothing can leave.
  auto tree = daemonkit::stop_descendants(::getpid());
  (void)daemonkit::signal_group(*payload_, SIGKILL);
  (void)payload_->handle.send_signal(SIGKILL);
  for (auto& d : tree) (void)d.process.send_signal(SIGKILL);
  if (cgroup_) (void)cgroup_->kill_all();
  killed_all_ = true;
}
int Loop::sweep() {
  // The payload is a zombie we have not reaped: its pid (the group's id)
  // is still ours. Freeze what it left, wherever it moved, and look at it
  // before anything dies, so that what we say is what was there.
  const pid_t payload = payload_->pid;
  auto left = daemonkit::stop_descendants(::getpid(), payload);
  // "Daemonized itself" is said only of a payload that exited by itself (a
  // status, not a signal: not one that crashed or that we killed) while a
  // process it forked lived on outside its group. Its status is looked at
  // without reaping it.
  siginfo_t how{};
  const bool exited_by_itself =
      ::waitid(P_PID, static_cast<id_t>(payload), &how, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      how.si_pid == payload && how.si_code == CLD_EXITED;
  bool outside = false;
  std::vector<Killed> named;
  for (const auto& d : left) {
    outside = outside || d.pgid != payload;
    named.push_back(Killed{d.process.pid(), d.name});
  }
  outside = outside && exited_by_itself;
  (void)::kill(-payload, SIGKILL);
  for (auto& d : left) (void)d.process.send_signal(SIGKILL);
  (void)payload_->handle.wait_for_exit(std::chrono::seconds(5));
  auto status = daemonkit::try_reap(*payload_);
  const int ws = status && *status ? **status : 0;
  if (!daemonkit::wait_for_group_gone(payload, std::chrono::seconds(5)))
    say(Level::err, "processes of group " + std::to_string(payload) + " survived SIGKILL");
  // Orphans among them come back to us as their parents die.
  auto more = end_children();
  // Anything still in the cgroup escaped the tree too; cgroup.kill only
  // then (it costs the cgroup: see Cgroup::was_killed).
  if (cgroup_ && cgroup_->populated()) {
    (void)cgroup_->kill_all();
    if (!cgroup_->wait_until_empty(std::chrono::seconds(5)))
      say(Level::err, "processes of cgroup " + cgroup_->path() + " survived SIGKILL");
  }
  for (const auto& k : more)
    if (std::none_of(named.begin(), named.end(), [&](const Killed& m) { return m.pid == k.pid; }))
      named.push_back(k);
  // What we killed with the payload (a stop's timeout, the watchdog) was not
  // left behind by it: the line that said SIGKILL told it. (Dying, such a
  // process may not yet read as a zombie.)
  if (named.empty() || killed_all_) return ws;
  std::string which;
  for (const auto& k : named)
    which += (which.empty() ? "" : ", ") + std::to_string(k.pid) + " (" + k.name + ")";
  const size_t n = named.size();
  // Named in the payload's log, also under `run` with a captured file.
  if (outside)
    say_everywhere(Level::warning, config_.name() +
                                       " daemonized itself: it exited while a process it "
                                       "forked lived on outside its process group; killed " +
                                       std::to_string(n) + " processes: " + which +
                                       ". A payload must run in the foreground");
  else
    say_everywhere(Level::warning,
                   "killed " + std::to_string(n) + " processes the payload left behind: " + which);
  return ws;
}

Loop::Lineage Loop::lineage(pid_t sender) const {
  pid_t p = sender;
  for (int depth = 0; depth < 64 && p > 1; ++depth) {
    // An orphan comes back to us (the subreaper): we start nothing else.
    if (p == payload_->pid || (depth > 0 && p == ::getpid())) return Lineage::payload;
    auto st = daemonkit::read_proc_stat(p);
    // A process being reaped at this very moment still has a stat, in
    // state X with parent 0 and group -1 (the kernel has let go of its
    // pids): as good as gone. Taken for a stranger, it made a child's
    // READY=1 be ignored when its parent reaped it just then (CI, without
    // pidfds; 4 such reads in 33,356 of children being reaped, here).
    if (!st || st->state == 'X' || st->ppid <= 0)
      return depth == 0 ? Lineage::gone : Lineage::stranger;
    if (st->pgrp == payload_->pid) return Lineage::payload;
    p = st->ppid;
  }
  return Lineage::stranger;
}

bool Loop::from_payload(const daemonkit::NotifyListener::Datagram& d) const {
  // "The payload and any process it started": its group (orphans included)
  // or a descendant.
  if (!payload_ || d.sender <= 0) return false;
  if (d.sender == payload_->pid) return true;
  Lineage l = lineage(d.sender);
  if (l == Lineage::payload) return true;
  // With a pidfd of the sender, a stranger that is still running is one:
  // the pid we looked at was its own.
  if (l == Lineage::stranger && (!d.handle || !d.handle->has_exited())) return false;
  // Gone (a child that sent READY=1 and quit), or exited while we looked,
  // so that its pid may already be another's: where it came from cannot be
  // told. The socket's name is no secret (/proc/net/unix shows it to every
  // user), so it is accepted only from root or the payload's own user, who
  // could as well signal or trace the payload.
  const uid_t payload_uid = config_.credentials ? config_.credentials->uid : ::geteuid();
  return d.uid == 0 || d.uid == payload_uid;
}

void Loop::note_ignored(const daemonkit::NotifyListener::Datagram& d) {
  // Said in the log, but not without end: anyone may write to the socket.
  constexpr int kLogged = 5;
  if (++ignored_notifications_ > kLogged) return;
  std::string line = "ignored a notification from pid " + std::to_string(d.sender) + " (uid " +
                     std::to_string(d.uid) + "): not " + config_.name() +
                     " or a process it started";
  if (ignored_notifications_ == kLogged) line += "; further ones are ignored silently";
  say(Level::warning, line);
}

void Loop::drain_notify() {
  if (!notify_) return;
  for (;;) {
    auto d = notify_->receive();
    if (!d || !*d) return;
    if (!from_payload(**d)) {
      note_ignored(**d);
      continue;
    }
    dispatch(event::Notified{daemonkit::parse_notify((*d)->text)});
  }
}

void Loop::emit(Capture& c, std::string_view data) {
  if (c.to_syslog) {
    c.lines.feed(data, [&](std::string_view line) {
      (void)syslog_->send(c.level, payload_ ? payload_->pid : ::getpid(), line);
    });
  } else if (c.file && c.file->rotating()) {
    c.lines.feed(data, [&](std::string_view line) { write_to_file(c, line); });
  } else if (c.file) {
    write_to_file(c, data);
  }
}

void Loop::drain(Capture& c, bool final) {
  std::array<char, 65536> buf;
  // At most 1 MiB per turn of the loop, so that a payload that never stops
  // writing (`yes`) cannot keep signals and deadlines from being handled;
  // the rest waits for the next turn. A final drain takes all there is.
  for (int turn = 0; final || turn < 16; ++turn) {
    ssize_t n = ::read(c.read_end.get(), buf.data(), buf.size());
    if (n <= 0) break;
    emit(c, std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  if (final) {
    if (c.to_syslog)
      c.lines.flush([&](std::string_view line) {
        (void)syslog_->send(c.level, payload_ ? payload_->pid : ::getpid(), line);
      });
    else if (c.file)
      c.lines.flush([&](std::string_view line) { write_to_file(c, line); });
  }
}

void Loop::drain_all(bool final) {
  if (out_) drain(*out_, final);
  if (err_) drain(*err_, final);
}

void Loop::reopen_outputs() {
  for (auto* c : {&out_, &err_})
    if (*c && (*c)->file)
      if (auto r = (*c)->file->reopen(); !r)
        say(Level::err, "cannot reopen: " + r.error().message());
}

void Loop::on_payload_exit() {
  drain_all(false);
  const int ws = sweep();
  drain_all(true);
  if (config_.foreground) daemonkit::reclaim_terminal();
  payload_.reset();
  dispatch(event::PayloadExited{ws});
}

void Loop::handle_events() {
  hub_.dispatch();
  drain_all(false);
  drain_notify();
  if (payload_ && payload_->handle.has_exited()) on_payload_exit();
  (void)daemonkit::reap_others(payload_ ? payload_->pid : 0);
  if (auto d = core_.deadline(); d && Clock::now() >= *d) dispatch(event::Deadline{});
}

void Loop::wait() {
  std::array<struct pollfd, 5> fds{};
  size_t n = 0;
  fds[n++] = {hub_.fd(), POLLIN, 0};
  // Without pidfds (old kernels) the payload's exit arrives as SIGCHLD,
  // through the signal pipe.
  if (payload_ && payload_->handle.fd() >= 0) fds[n++] = {payload_->handle.fd(), POLLIN, 0};
  if (out_) fds[n++] = {out_->read_end.get(), POLLIN, 0};
  if (err_) fds[n++] = {err_->read_end.get(), POLLIN, 0};
  if (notify_) fds[n++] = {notify_->fd(), POLLIN, 0};
  int timeout = -1;  // idle: sleep until something happens
  if (auto d = core_.deadline()) {
    auto ms = std::chrono::ceil<milliseconds>(*d - Clock::now()).count();
    timeout = static_cast<int>(std::clamp<long long>(ms, 0, 1 << 30));
  }
  if (::poll(fds.data(), n, timeout) < 0 && errno != EINTR) {
    say(Level::err, std::string("poll: ") + std::strerror(errno));
    exit_code_ = 1;
    done_ = true;
  }
}

int Loop::run() {
  route_signals();  // what arrives from now on is handled in the loop
  if (auto r = set_up(); !r) {
    fail_start(r.error());
    return exit_code_;
  }
  carry_out(core_.start());
  while (!done_) {
    wait();
    if (!done_) handle_events();
  }
  drain_all(true);
  return exit_code_;
}

}  // namespace

daemonkit::Result<std::unique_ptr<daemonkit::SignalHub>> install_supervisor_signals() {
  return daemonkit::SignalHub::install(
      {SIGQUIT, SIGUSR1, SIGUSR2, daemonkit::reload_request_signal(),
       daemonkit::reopen_request_signal(), daemonkit::signal_request_signal()});
}

int supervise(const SupervisorConfig& config, daemonkit::SignalHub& hub, daemonkit::Daemon* caller,
              std::optional<daemonkit::LockedPidfile>& pidfile) {
  // A FIFO whose reader went away must cost output, never the daemon:
  // writes then fail with EPIPE (counted as lost). The payload starts with
  // default dispositions all the same (spawn resets them).
  ::signal(SIGPIPE, SIG_IGN);
  Loop loop(config, hub, caller, pidfile);
  return loop.run();
}

}  // namespace dkcli
