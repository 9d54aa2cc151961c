#include "supervisor/supervisor.hpp"

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

#include "daemonkit/cgroup.hpp"
#include "daemonkit/control.hpp"
#include "daemonkit/notify.hpp"
#include "daemonkit/output.hpp"
#include "daemonkit/spawn.hpp"
#include "supervisor/leftovers.hpp"
#include "supervisor/respawn.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

using daemonkit::Error;
using daemonkit::Level;
using daemonkit::Result;
using daemonkit::UniqueFd;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kAbortGrace{5000};  // SIGABRT, then SIGKILL (watchdog)

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

class Supervisor {
 public:
  Supervisor(const Plan& plan, daemonkit::SignalHub& hub, daemonkit::Daemon* daemon,
             std::optional<daemonkit::LockedPidfile>& pidfile)
      : plan_(plan),
        opt_(plan.options),
        hub_(hub),
        daemon_(daemon),
        pidfile_(pidfile),
        policy_(opt_.max_restarts, opt_.no_respawn_on) {
    record_.supervisor = ::getpid();
    record_.command = opt_.program;
    record_.stop_signal = opt_.payload_stop_signal;
    if (opt_.stdout_path)
      record_.log = opt_.stdout_path->string();
    else if (opt_.stderr_path)
      record_.log = opt_.stderr_path->string();
    if (opt_.syslog_tag) record_.syslog = *opt_.syslog_tag;
    if (plan_.credentials) {
      record_.uid = plan_.credentials->uid;
      record_.gid = plan_.credentials->gid;
    }
  }

  int run();

 private:
  Result<void> set_up();
  Result<void> start_payload();
  void loop();
  int poll_timeout() const;
  void handle_signals_and_io();
  void drain(Capture& c, bool final);
  void emit(Capture& c, std::string_view data);
  void drain_notify();
  void on_payload_exit();
  void begin_stop(const daemonkit::StopRequest& request);
  void forward(int signo);
  void reopen_outputs();
  void report_ready();
  void fail_start(const Error& e);
  void finish(const std::string& reason, bool clean);
  void say(Level level, const std::string& text);
  // One line on run's standard error and in the captured log (or syslog).
  void say_everywhere(Level level, const std::string& text);
  // Rewrites the record beside the pidfile (in `phase`); a failure is logged.
  void save(DaemonRecord::Phase phase);
  // Once the payload has exited: freezes, names and kills what it left,
  // reaps the payload (its wait status is returned) and then the rest.
  int sweep();
  // The stop timeout (or the watchdog's grace) ran out: SIGKILL it all.
  void kill_everything();
  void end_predecessor();
  void end_cgroup();
  enum class Lineage { payload, stranger, gone };
  // Where `sender` comes from: the payload's tree, elsewhere, or nowhere
  // any more (no such process).
  Lineage lineage(pid_t sender) const;
  bool from_payload(const daemonkit::NotifyListener::Datagram& d) const;
  void note_ignored(const daemonkit::NotifyListener::Datagram& d);
  int ignored_notifications_ = 0;

  const Plan& plan_;
  const Options& opt_;
  daemonkit::SignalHub& hub_;
  daemonkit::Daemon* daemon_;
  std::optional<daemonkit::LockedPidfile>& pidfile_;

  std::optional<Capture> out_;
  std::optional<Capture> err_;  // unset when stderr shares out_'s pipe
  std::optional<daemonkit::SyslogWriter> syslog_;
  UniqueFd stdin_fd_, stdout_null_, stderr_null_;
  std::optional<daemonkit::NotifyListener> notify_;
  std::vector<std::string> env_;

  std::optional<daemonkit::Child> payload_;
  std::optional<daemonkit::Cgroup> cgroup_;  // the payload's own, where the machine allows
  Clock::time_point payload_started_{};
  bool ready_ = false;  // the caller (or outer manager) was told
  std::optional<Clock::time_point> ready_deadline_;
  std::optional<Clock::time_point> ready_after_at_;  // --ready-after
  bool stopping_ = false;
  int stop_signal_sent_ = SIGTERM;
  std::chrono::milliseconds stop_timeout_{0};
  std::vector<pid_t> stop_requesters_;  // `daemonkit stop`s to tell what happened
  DaemonRecord record_;
  std::string record_error_;                  // the last failure to save it, logged once
  std::optional<Clock::time_point> kill_at_;  // SIGKILL the group (stop timeout, watchdog)
  std::optional<Clock::time_point> respawn_at_;
  std::optional<Clock::time_point> watchdog_at_;
  bool watchdog_fired_ = false;
  RespawnPolicy policy_;
  std::string last_status_;  // STATUS= from the payload
  struct PendingReload {
    pid_t requester = 0;
    int id = 0;
  };
  std::vector<PendingReload> reloads_;  // waiting for RELOADING=1, READY=1
  bool reloading_ = false;              // RELOADING=1 seen since the last SIGHUP
  void answer_reloads(const std::string& text);
  // What end_children() killed, by pid, with its name.
  struct Killed {
    pid_t pid;
    std::string name;
  };
  std::vector<Killed> end_children();
  // --ready-after: the first payload is up once it has run that long.
  [[nodiscard]] bool waits_ready_after() const {
    return opt_.ready_after && opt_.ready_after->count() > 0;
  }
  bool done_ = false;
  bool gave_up_ = false;
  bool killed_all_ = false;  // kill_everything() ended this payload generation
  int exit_code_ = 0;
};

void Supervisor::say(Level level, const std::string& text) {
  const std::string line = "daemonkit: " + text + "\n";
  if (plan_.foreground) {
    (void)!::write(2, line.data(), line.size());
    return;
  }
  say_everywhere(level, text);
}

void Supervisor::say_everywhere(Level level, const std::string& text) {
  const std::string line = "daemonkit: " + text + "\n";
  if (plan_.foreground) (void)!::write(2, line.data(), line.size());
  if (syslog_) {
    (void)syslog_->send(level, ::getpid(), line);
  } else if (Capture* c = err_ ? &*err_ : (out_ ? &*out_ : nullptr); c && c->file) {
    write_to_file(*c, line);
  }
}

Result<void> Supervisor::set_up() {
  if (auto r = daemonkit::become_child_subreaper(); !r) return r;
  // Standard input.
  if (opt_.stdin_path) {
    // As the payload's user: root must not open what that user planted.
    auto fd = daemonkit::open_input(*opt_.stdin_path, plan_.credentials);
    if (!fd) return daemonkit::fail(std::move(fd).error());
    stdin_fd_ = std::move(*fd);
  } else if (!plan_.foreground) {
    auto fd = open_fd("/dev/null", O_RDONLY, "open");
    if (!fd) return daemonkit::fail(std::move(fd).error());
    stdin_fd_ = std::move(*fd);
  }
  // Output: syslog, files (through pipes, so they can be reopened and
  // rotated), or the supervisor's own streams under `run`, or /dev/null.
  std::optional<daemonkit::OutputFile::Rotation> rotation;
  if (opt_.log_max_size)
    rotation = daemonkit::OutputFile::Rotation{*opt_.log_max_size, opt_.log_keep_or_default()};
  if (opt_.syslog_tag) {
    auto w = daemonkit::SyslogWriter::open(*opt_.syslog_tag);
    if (!w) return daemonkit::fail(std::move(w).error());
    syslog_.emplace(std::move(*w));
    for (auto* slot : {&out_, &err_}) {
      auto c = make_pipe();
      if (!c) return daemonkit::fail(std::move(c).error());
      c->to_syslog = true;
      c->level = slot == &out_ ? Level::info : Level::err;
      slot->emplace(std::move(*c));
    }
  } else {
    const auto& out_path = opt_.stdout_path;
    // --stderr defaults to --stdout's file, except under `run`, where both
    // default to run's own streams.
    const auto err_path = opt_.stderr_path   ? opt_.stderr_path
                          : plan_.foreground ? std::nullopt
                                             : opt_.stdout_path;
    if (out_path) {
      auto c = make_pipe();
      if (!c) return daemonkit::fail(std::move(c).error());
      auto f = daemonkit::OutputFile::open(*out_path, rotation, plan_.credentials);
      if (!f) return daemonkit::fail(std::move(f).error());
      c->file.emplace(std::move(*f));
      out_.emplace(std::move(*c));
    }
    if (err_path && err_path != out_path) {
      auto c = make_pipe();
      if (!c) return daemonkit::fail(std::move(c).error());
      auto f = daemonkit::OutputFile::open(*err_path, rotation, plan_.credentials);
      if (!f) return daemonkit::fail(std::move(f).error());
      c->file.emplace(std::move(*f));
      err_.emplace(std::move(*c));
    }
    if (!plan_.foreground) {
      if (!out_) {
        auto fd = open_fd("/dev/null", O_WRONLY, "open");
        if (!fd) return daemonkit::fail(std::move(fd).error());
        stdout_null_ = std::move(*fd);
      }
      if (!err_path) {
        auto fd = open_fd("/dev/null", O_WRONLY, "open");
        if (!fd) return daemonkit::fail(std::move(fd).error());
        stderr_null_ = std::move(*fd);
      }
    }
  }
  // Environment: the outer manager's variables are ours, never the payload's.
  for (const auto& e : plan_.env) {
    std::string_view name = std::string_view(e).substr(0, e.find('='));
    if (name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID") continue;
    env_.push_back(e);
  }
  if (opt_.notify) {
    auto l = daemonkit::NotifyListener::open();
    if (!l) return daemonkit::fail(std::move(l).error());
    notify_.emplace(std::move(*l));
    env_.push_back("NOTIFY_SOCKET=" + notify_->address());
    if (opt_.watchdog)
      env_.push_back("WATCHDOG_USEC=" + std::to_string(opt_.watchdog->count() * 1000));
  }
  // A cgroup of the payload's own, named after us (and a random part);
  // without one (no v2 hierarchy we may write to) the process tree is what
  // we sweep. Made before we first record ourselves, so the record names it.
  cgroup_ = daemonkit::Cgroup::create("daemonkit-" + std::to_string(::getpid()));
  if (cgroup_) record_.cgroup = cgroup_->path();
  end_predecessor();
  return {};
}

// A supervisor before us was killed (we hold the lock now, so it is gone)
// and may have left its payload running: end it before ours starts, so two
// never run.
void Supervisor::end_predecessor() {
  if (opt_.pidfile.empty()) return;
  auto old = read_record(opt_.pidfile);
  if (!old || old->supervisor == ::getpid()) return;
  // Recorded at once, so that a concurrent start sees a supervisor still
  // starting, however long ending the old payload takes.
  save(DaemonRecord::Phase::starting);
  for (const auto& line : end_leftovers(*old, opt_.timeout)) say_everywhere(Level::warning, line);
}

Result<void> Supervisor::start_payload() {
  daemonkit::SpawnOptions s;
  s.program = plan_.program;
  s.argv = opt_.program;
  s.env = env_;
  s.stdin_fd = stdin_fd_ ? stdin_fd_.get() : -1;
  s.stdout_fd = out_ ? out_->write_end.get() : (stdout_null_ ? stdout_null_.get() : -1);
  const bool err_with_out = !opt_.syslog_tag && !opt_.stderr_path && !plan_.foreground;
  s.stderr_fd = err_ ? err_->write_end.get()
                     : (stderr_null_ ? stderr_null_.get()
                                     : (out_ && err_with_out ? out_->write_end.get() : -1));
  if (opt_.chroot) s.chroot = *opt_.chroot;
  s.working_directory = opt_.chdir ? *opt_.chdir : std::filesystem::path("/");
  s.umask = opt_.umask.value_or(022);
  s.credentials = plan_.credentials;
  s.nice = opt_.nice;
  s.limits = opt_.limits;
  s.oom_score_adj = opt_.oom_score_adj;
  s.no_new_privs = opt_.no_new_privs;
  s.take_terminal = plan_.foreground;
  if (opt_.watchdog) s.pid_variable = "WATCHDOG_PID";
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
  payload_started_ = Clock::now();
  watchdog_fired_ = false;
  kill_at_.reset();
  watchdog_at_.reset();
  // Its identity for whoever finds it after us: pid and start time. It is
  // our unreaped child, so the pid is still its own.
  auto st = daemonkit::read_proc_stat(payload_->pid);
  record_.payload = payload_->pid;
  record_.payload_start_ticks = st ? st->start_ticks : 0;
  // A first payload that is up once executed is recorded by report_ready(),
  // right after this: one write, not two, on the way to `start` returning.
  const bool up_at_once = !ready_ && !opt_.notify && !waits_ready_after();
  if (!up_at_once) save(ready_ ? DaemonRecord::Phase::running : DaemonRecord::Phase::starting);
  return {};
}

void Supervisor::report_ready() {
  if (ready_) return;
  ready_ = true;
  ready_deadline_.reset();
  ready_after_at_.reset();
  if (opt_.watchdog) watchdog_at_ = Clock::now() + *opt_.watchdog;
  save(DaemonRecord::Phase::running);  // before `start` returns: start and status read it
  if (daemon_ != nullptr) daemon_->ready();
  if (!plan_.outer_notify.empty())
    (void)daemonkit::notify_to(plan_.outer_notify,
                               "READY=1\nMAINPID=" + std::to_string(::getpid()));
}

void Supervisor::fail_start(const Error& e) {
  if (payload_) {
    kill_everything();
    (void)payload_->handle.wait_for_exit(std::chrono::seconds(5));
    (void)daemonkit::try_reap(*payload_);
    payload_.reset();
  }
  end_children();
  end_cgroup();
  if (daemon_ != nullptr) {
    daemon_->fail(e);  // removes the pidfile first
    pidfile_.reset();
  } else {
    std::fprintf(stderr, "daemonkit: cannot run: %s\n", e.message().c_str());
    if (pidfile_) (void)pidfile_->remove();
    pidfile_.reset();
  }
  if (!opt_.pidfile.empty()) remove_record(opt_.pidfile);
  exit_code_ = static_cast<int>(daemonkit::exit_code_for(e));
  if (plan_.foreground && e.kind == daemonkit::ErrorKind::failure) exit_code_ = 1;
  done_ = true;
}

void Supervisor::save(DaemonRecord::Phase phase) {
  if (opt_.pidfile.empty()) return;
  record_.phase = phase;
  record_.restarts = policy_.restarts();
  record_.status = last_status_;
  if (phase == DaemonRecord::Phase::restarting || phase == DaemonRecord::Phase::ended) {
    record_.payload = 0;
    record_.payload_start_ticks = 0;
  }
  if (phase != DaemonRecord::Phase::restarting) {
    record_.last_exit.clear();
    record_.next_start_ms = 0;
  }
  if (auto r = write_record(opt_.pidfile, record_); !r) {
    // Said once per cause: a full disk must not fill the log with it.
    const std::string why = r.error().message();
    if (why != record_error_)
      say_everywhere(Level::err, "cannot record the daemon's state: " + why);
    record_error_ = why;
  } else {
    record_error_.clear();
  }
}

// The payload's cgroup goes with the daemon: what is still in it (nothing,
// but for what escaped the tree) is killed first.
void Supervisor::end_cgroup() {
  if (!cgroup_) return;
  if (cgroup_->populated()) {
    (void)cgroup_->kill_all();
    (void)cgroup_->wait_until_empty(std::chrono::seconds(5));
  }
  if (auto r = cgroup_->remove(); !r) say(Level::warning, r.error().message());
  cgroup_.reset();
  record_.cgroup.clear();
}

void Supervisor::finish(const std::string& reason, bool clean) {
  done_ = true;
  end_children();
  end_cgroup();
  // Under `run` the exit status says it already; only the supervisor's own
  // decisions (gave up, watchdog) are news there.
  if (!clean && (!plan_.foreground || gave_up_ || reason == "watchdog timeout"))
    say(Level::err, reason);
  if (clean || plan_.foreground) {
    // `run` always removes its pidfile: its exit status tells the rest.
    if (pidfile_) {
      if (auto r = pidfile_->remove(); !r) say(Level::err, r.error().message());
      pidfile_.reset();
    }
    if (!opt_.pidfile.empty()) remove_record(opt_.pidfile);
    return;
  }
  // Leave the pidfile (unlocked once we exit) and say why, for `status`.
  record_.ended = reason;
  save(DaemonRecord::Phase::ended);
  pidfile_.reset();  // releases the lock, keeps the file
}

Supervisor::Lineage Supervisor::lineage(pid_t sender) const {
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

bool Supervisor::from_payload(const daemonkit::NotifyListener::Datagram& d) const {
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
  const uid_t payload_uid = plan_.credentials ? plan_.credentials->uid : ::geteuid();
  return d.uid == 0 || d.uid == payload_uid;
}

void Supervisor::note_ignored(const daemonkit::NotifyListener::Datagram& d) {
  // Said in the log, but not without end: anyone may write to the socket.
  constexpr int kLogged = 5;
  if (++ignored_notifications_ > kLogged) return;
  std::string line = "ignored a notification from pid " + std::to_string(d.sender) + " (uid " +
                     std::to_string(d.uid) + "): not " + opt_.program[0] +
                     " or a process it started";
  if (ignored_notifications_ == kLogged) line += "; further ones are ignored silently";
  say(Level::warning, line);
}

void Supervisor::drain_notify() {
  if (!notify_) return;
  for (;;) {
    auto d = notify_->receive();
    if (!d || !*d) return;
    if (!from_payload(**d)) {
      note_ignored(**d);
      continue;
    }
    auto m = daemonkit::parse_notify((*d)->text);
    if (m.status) {
      last_status_ = *m.status;
      if (ready_) save(DaemonRecord::Phase::running);
    }
    if (m.watchdog && opt_.watchdog && ready_ && !watchdog_fired_)
      watchdog_at_ = Clock::now() + *opt_.watchdog;
    if (!reloads_.empty() && m.reloading) reloading_ = true;
    if (!reloads_.empty() && reloading_ && m.ready) answer_reloads("ok");
    // The first READY=1 is told to the outer manager by report_ready()
    // (with MAINPID); later ones (after a reload) are forwarded below.
    bool first_ready = false;
    if (m.ready) {
      if (!ready_) {
        report_ready();
        first_ready = true;
      } else if (opt_.watchdog && !watchdog_fired_) {
        watchdog_at_ = Clock::now() + *opt_.watchdog;
      }
    }
    if (!plan_.outer_notify.empty()) {
      std::string fwd;
      if (m.reloading) fwd += "RELOADING=1\n";
      if (m.stopping) fwd += "STOPPING=1\n";
      if (m.status) fwd += "STATUS=" + *m.status + "\n";
      if (m.ready && ready_ && !first_ready) fwd += "READY=1\n";
      if (!fwd.empty()) (void)daemonkit::notify_to(plan_.outer_notify, fwd);
    }
  }
}

void Supervisor::emit(Capture& c, std::string_view data) {
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

void Supervisor::drain(Capture& c, bool final) {
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

void Supervisor::reopen_outputs() {
  for (auto* c : {&out_, &err_})
    if (*c && (*c)->file)
      if (auto r = (*c)->file->reopen(); !r)
        say(Level::err, "cannot reopen: " + r.error().message());
}

void Supervisor::answer_reloads(const std::string& text) {
  for (const auto& r : reloads_)
    (void)daemonkit::notify_to(daemonkit::reply_address(r.requester, r.id), text);
  reloads_.clear();
  reloading_ = false;
}

// What is left of our children once the payload is gone and swept:
// descendants of it that came back to us as orphans (we are a subreaper)
// and are on their way out. Reaps them until none is left.
std::vector<Supervisor::Killed> Supervisor::end_children() {
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
    // Killed; they reach us as zombies within moments.
    for (auto& d : left) (void)d.process.wait_for_exit(std::chrono::milliseconds(100));
  }
  return killed;
}

void Supervisor::kill_everything() {
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

int Supervisor::sweep() {
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
    say_everywhere(Level::warning, opt_.program[0] +
                                       " daemonized itself: it exited while a process it "
                                       "forked lived on outside its process group; killed " +
                                       std::to_string(n) + " processes: " + which +
                                       ". A payload must run in the foreground");
  else
    say_everywhere(Level::warning,
                   "killed " + std::to_string(n) + " processes the payload left behind: " + which);
  return ws;
}

void Supervisor::forward(int signo) {
  // The payload itself: its helpers may not expect SIGHUP or SIGUSR1. Only
  // the stop signal goes to the whole group (begin_stop).
  if (payload_) (void)payload_->handle.send_signal(signo);
}

void Supervisor::begin_stop(const daemonkit::StopRequest& request) {
  if (stopping_) return;
  stopping_ = true;
  respawn_at_.reset();
  watchdog_at_.reset();
  ready_after_at_.reset();
  stop_signal_sent_ = request.signal == 0 ? opt_.payload_stop_signal : request.signal;
  stop_timeout_ = request.timeout;
  if (!payload_) {  // between two runs (respawn): as if the payload got it
    exit_code_ = 128 + stop_signal_sent_;
    finish("", true);
    return;
  }
  // The group, and the payload itself in case it left the group.
  (void)daemonkit::signal_group(*payload_, stop_signal_sent_);
  (void)payload_->handle.send_signal(stop_signal_sent_);
  // A stopped group would never see the signal (as systemd does).
  if (stop_signal_sent_ != SIGKILL && stop_signal_sent_ != SIGCONT) {
    (void)daemonkit::signal_group(*payload_, SIGCONT);
    (void)payload_->handle.send_signal(SIGCONT);
  }
  kill_at_ = Clock::now() + request.timeout;
}

void Supervisor::on_payload_exit() {
  if (out_) drain(*out_, false);
  if (err_) drain(*err_, false);
  const int ws = sweep();
  const auto started = payload_started_;
  if (out_) drain(*out_, true);
  if (err_) drain(*err_, true);
  if (plan_.foreground) daemonkit::reclaim_terminal();
  std::string how = watchdog_fired_ ? "watchdog timeout" : daemonkit::describe_exit(ws);
  if (!reloads_.empty())
    answer_reloads("failed: " + opt_.program[0] + " " + how + " during the reload");
  payload_.reset();
  kill_at_.reset();
  watchdog_at_.reset();

  if (stopping_) {
    exit_code_ = daemonkit::exit_code_of(ws);
    finish("", true);
    return;
  }
  if (!ready_) {
    fail_start(Error::because("start", opt_.program[0], how + " before it was ready"));
    if (plan_.foreground) exit_code_ = 1;
    return;
  }
  bool clean = !watchdog_fired_ && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
  if (opt_.respawn) {
    auto d = policy_.on_exit(watchdog_fired_ ? SIGABRT : ws, started, Clock::now());
    if (d.restart) {
      say(Level::warning, opt_.program[0] + " " + how + "; restarting in " +
                              std::to_string(d.delay.count()) + " ms (restart " +
                              std::to_string(policy_.restarts() + 1) + ")");
      respawn_at_ = Clock::now() + d.delay;
      record_.last_exit = how;
      record_.next_start_ms = std::chrono::duration_cast<milliseconds>(
                                  (std::chrono::system_clock::now() + d.delay).time_since_epoch())
                                  .count();
      save(DaemonRecord::Phase::restarting);
      return;
    }
    how = d.why_not;
    // Giving up is an ending to report, whatever the last run's status.
    if (d.gave_up) {
      gave_up_ = true;
      clean = false;
    }
  }
  exit_code_ = daemonkit::exit_code_of(ws);
  if (gave_up_ && exit_code_ == 0) exit_code_ = 1;
  finish(how, clean);
}

int Supervisor::poll_timeout() const {
  std::optional<Clock::time_point> next;
  for (const auto& t : {ready_deadline_, ready_after_at_, kill_at_, respawn_at_, watchdog_at_})
    if (t && (!next || *t < *next)) next = t;
  if (!next) return -1;  // idle: sleep until something happens
  auto ms = std::chrono::ceil<milliseconds>(*next - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 1 << 30));
}

void Supervisor::handle_signals_and_io() {
  hub_.dispatch();
  if (out_) drain(*out_, false);
  if (err_) drain(*err_, false);
  drain_notify();
  if (payload_ && payload_->handle.has_exited()) on_payload_exit();
  (void)daemonkit::reap_others(payload_ ? payload_->pid : 0);

  const auto now = Clock::now();
  if (done_) return;
  if (ready_after_at_ && now >= *ready_after_at_ && payload_) report_ready();
  if (ready_deadline_ && now >= *ready_deadline_ && payload_) {
    ready_deadline_.reset();
    kill_everything();
    (void)payload_->handle.wait_for_exit(std::chrono::seconds(5));
    if (out_) drain(*out_, true);
    if (err_) drain(*err_, true);
    (void)sweep();
    payload_.reset();
    fail_start(Error::because("start", opt_.program[0],
                              "not ready within " + daemonkit::format_seconds(opt_.ready_timeout) +
                                  " s (no READY=1); it was killed"));
    return;
  }
  if (watchdog_at_ && now >= *watchdog_at_ && payload_) {
    watchdog_at_.reset();
    watchdog_fired_ = true;
    say(Level::err, "watchdog timeout: no WATCHDOG=1 from " + opt_.program[0] + " within " +
                        std::to_string(opt_.watchdog->count()) + " ms; sending SIGABRT");
    (void)payload_->handle.send_signal(SIGABRT);
    kill_at_ = now + kAbortGrace;
  }
  if (kill_at_ && now >= *kill_at_ && payload_) {
    kill_at_.reset();
    if (stopping_) {
      const std::string line = "payload (pid " + std::to_string(payload_->pid) +
                               ") did not exit within " + daemonkit::format_seconds(stop_timeout_) +
                               " s after " + daemonkit::signal_name(stop_signal_sent_) +
                               "; sent SIGKILL";
      say_everywhere(Level::err, line);
      for (pid_t requester : stop_requesters_)
        (void)daemonkit::notify_to(daemonkit::reply_address(requester, 0), "note: " + line);
    }
    kill_everything();
  }
  if (respawn_at_ && now >= *respawn_at_ && !payload_) {
    respawn_at_.reset();
    policy_.restarted();
    if (auto r = start_payload(); !r) {
      exit_code_ = 1;
      finish("cannot restart: " + r.error().message(), false);
      return;
    }
  }
}

void Supervisor::loop() {
  while (!done_) {
    std::array<struct pollfd, 5> fds{};
    size_t n = 0;
    fds[n++] = {hub_.fd(), POLLIN, 0};
    // Without pidfds (old kernels) the payload's exit arrives as SIGCHLD,
    // through the signal pipe.
    if (payload_ && payload_->handle.fd() >= 0) fds[n++] = {payload_->handle.fd(), POLLIN, 0};
    if (out_) fds[n++] = {out_->read_end.get(), POLLIN, 0};
    if (err_) fds[n++] = {err_->read_end.get(), POLLIN, 0};
    if (notify_) fds[n++] = {notify_->fd(), POLLIN, 0};
    if (::poll(fds.data(), n, poll_timeout()) < 0 && errno != EINTR) {
      say(Level::err, std::string("poll: ") + std::strerror(errno));
      exit_code_ = 1;
      break;
    }
    handle_signals_and_io();
  }
}

int Supervisor::run() {
  // Signals first: what arrives from now on is handled by the loop.
  auto stop_from = [this](const daemonkit::SignalEvent& e) {
    auto req = daemonkit::decode_stop_request(e.code, e.value);
    if (req) stop_requesters_.push_back(e.sender);
    daemonkit::StopRequest r;
    // A plain SIGTERM (run's manager, kill) means "stop": the daemon's own
    // stop signal; SIGINT stays SIGINT.
    r.signal = e.signo == SIGTERM ? 0 : e.signo;
    r.timeout = opt_.timeout;
    begin_stop(req ? *req : r);
  };
  hub_.on_signal(SIGTERM, stop_from);
  hub_.on_signal(SIGINT, stop_from);
  hub_.on_signal(SIGHUP, [this](const daemonkit::SignalEvent&) {
    reopen_outputs();
    forward(SIGHUP);
  });
  hub_.on_signal(daemonkit::reopen_request_signal(),
                 [this](const daemonkit::SignalEvent&) { reopen_outputs(); });
  hub_.on_signal(daemonkit::reload_request_signal(), [this](const daemonkit::SignalEvent& e) {
    reopen_outputs();
    if (e.code != SI_QUEUE) return;  // not from `daemonkit reload`
    reloads_.push_back(PendingReload{e.sender, e.value});
    if (!payload_) {
      answer_reloads("failed: " + opt_.program[0] + " is not running (waiting to respawn)");
      return;
    }
    // Concurrent requests share one SIGHUP and one confirmation.
    if (!opt_.reload_notify || !reloading_) forward(SIGHUP);
    // Without --reload-notify nothing more will come: done once passed on.
    if (!opt_.reload_notify) answer_reloads("ok");
  });
  for (int s : {SIGQUIT, SIGUSR1, SIGUSR2})
    hub_.on_signal(s, [this, s](const auto&) { forward(s); });
  hub_.on_signal(daemonkit::signal_request_signal(), [this](const daemonkit::SignalEvent& e) {
    auto req = daemonkit::decode_signal_request(e.code, e.value);
    if (!req) return;
    const auto to = daemonkit::reply_address(e.sender, req->id);
    if (!payload_ || payload_->handle.has_exited()) {
      (void)daemonkit::notify_to(to, "not running: " + opt_.program[0] +
                                         (stopping_ ? " is stopping" : " waits to be respawned"));
      return;
    }
    auto sent = req->group ? daemonkit::signal_group(*payload_, req->signo)
                           : payload_->handle.send_signal(req->signo);
    (void)daemonkit::notify_to(to, !sent   ? "failed: " + sent.error().message()
                                   : *sent ? std::string("ok")
                                           : "not running: " + opt_.program[0] + " has exited");
  });
  hub_.on_signal(SIGCHLD, [](const auto&) {});  // the loop reaps, payload first

  if (auto r = set_up(); !r) {
    fail_start(r.error());
    return exit_code_;
  }
  if (auto r = start_payload(); !r) {
    fail_start(r.error());
    return exit_code_;
  }
  if (opt_.notify)
    ready_deadline_ = Clock::now() + opt_.ready_timeout;
  else if (waits_ready_after())
    ready_after_at_ = Clock::now() + *opt_.ready_after;
  else
    report_ready();  // executed: that is "up" without --notify
  loop();
  if (out_) drain(*out_, true);
  if (err_) drain(*err_, true);
  return exit_code_;
}

}  // namespace

int supervise(const Plan& plan, daemonkit::SignalHub& hub, daemonkit::Daemon* daemon,
              std::optional<daemonkit::LockedPidfile>& pidfile) {
  // A FIFO whose reader went away must cost output, never the daemon:
  // writes then fail with EPIPE (counted as lost). The payload starts with
  // default dispositions all the same (spawn resets them).
  ::signal(SIGPIPE, SIG_IGN);
  Supervisor s(plan, hub, daemon, pidfile);
  return s.run();
}

}  // namespace dkcli
