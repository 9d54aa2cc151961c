#include "daemonkit/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "daemonkit/fd.hpp"
#include "daemonkit/notify.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/spawn.hpp"
#include "sys/fs_credentials.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

Result<DaemonStatus> query_status(const std::filesystem::path& pidfile) {
  auto info = inspect_pidfile(pidfile);
  if (!info) return fail(std::move(info).error());
  DaemonStatus st;
  switch (info->lock) {
    case PidfileInfo::Lock::no_file:
      break;
    case PidfileInfo::Lock::locked:
      st.state = RunState::running;
      st.pid = info->holder;
      st.supervisor = info->supervisor;
      st.older_supervisor = info->older_supervisor;
      break;
    case PidfileInfo::Lock::unlocked:
      if (info->recorded) {
        st.state = RunState::dead_pidfile_remains;
        st.pid = *info->recorded;
      }
      break;
  }
  return st;
}

namespace {

// Reads what a supervisor told us (reply_address(getpid(), 0)) so far.
void collect_notes(std::optional<NotifyListener>& listener, pid_t from,
                   std::vector<std::string>& notes) {
  if (!listener) return;
  for (;;) {
    auto d = listener->receive();
    if (!d || !*d) return;
    if ((*d)->sender != from || (*d)->text.rfind("note: ", 0) != 0) continue;
    notes.push_back((*d)->text.substr(6));
  }
}

}  // namespace

Result<StopResult> stop_daemon(const std::filesystem::path& pidfile, const StopOptions& options) {
  // Listen before asking, so no note can come too early. Without a
  // listener (the address is taken) the stop itself still works.
  std::optional<NotifyListener> notes;
  if (auto l = NotifyListener::open_at(reply_address(::getpid(), 0))) notes.emplace(std::move(*l));
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  StopResult result;
  if (*holder) {
    const Pidfd& daemon = (*holder)->process;
    result.pid = daemon.pid();
    result.outcome = StopResult::Outcome::stopped;
    // Without a pidfd (old kernels) the exit shows in the lock: keep the
    // file open, having made sure it is still the holder's.
    UniqueFd watch;
    bool let_go = false;
    if (daemon.fd() < 0) {
      watch.reset(sys::retry_eintr([&] {
        return sys::open(pidfile.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      }));
      // Gone (ENOENT): the daemon removed it on its way out. Any other
      // failure leaves us blind: say so rather than take it for an exit.
      if (!watch && errno != ENOENT) return fail(Error::from_errno(errno, "open", pidfile));
      let_go = !watch || sys::lock_holder(watch.get()) != daemon.pid();
    }
    auto wait = [&](std::chrono::milliseconds t) -> Result<bool> {
      if (daemon.fd() >= 0) return daemon.wait_for_exit(t);
      auto released = wait_for_lock_release(watch.get(), t);
      if (!released || !*released) return released;
      // A daemon lets go of its lock (removing its pidfile) just before it
      // exits: what is left of its exit takes moments.
      return daemon.wait_for_exit(options.kill_timeout);
    };
    if (!let_go) {  // else it is already on its way out
      auto sent =
          daemon.send_queued(SIGTERM, encode_stop_request({options.signal, options.timeout}));
      if (!sent) return fail(std::move(sent).error());
      // A stopped daemon (SIGSTOP, a debugger let go) must run to act on it.
      if (auto resumed = daemon.send_signal(SIGCONT); !resumed)
        return fail(std::move(resumed).error());
      auto gone = wait(options.timeout + options.kill_grace);
      if (!gone) return fail(std::move(gone).error());
      if (!*gone) {
        result.outcome = StopResult::Outcome::killed;
        // A supervisor that did not end by itself cannot sweep what its
        // payload started. Stop that tree first (it is alive and confirmed,
        // so its descendants are its own: SIGSTOP keeps them from forking
        // meanwhile), then kill the holder, then the tree.
        auto tree = stop_descendants(daemon.pid());
        auto killed = daemon.send_signal(SIGKILL);
        if (!killed) return fail(std::move(killed).error());
        for (const auto& d : tree) (void)d.process.send_signal(SIGKILL);
        gone = wait(options.kill_timeout);
        if (!gone) return fail(std::move(gone).error());
        if (!*gone)
          return fail(Error::because("stop", "pid " + std::to_string(daemon.pid()),
                                     "the process survived SIGKILL"));
      }
    }
    collect_notes(notes, daemon.pid(), result.notes);
  }
  // The daemon removes its pidfile on a clean exit; after SIGKILL (or a
  // crash long ago) we do, unless a new daemon has locked it meanwhile.
  if (auto removed = remove_stale_pidfile(pidfile); !removed)
    result.cleanup_error = std::move(removed).error();
  return result;
}

namespace {
constexpr unsigned kStopMagic = 0xD;
constexpr unsigned kTimeoutBits = 21;
constexpr unsigned kMaxTimeoutUnits = (1U << kTimeoutBits) - 1;
}  // namespace

int encode_stop_request(const StopRequest& request) {
  auto units = static_cast<unsigned long long>((request.timeout.count() + 99) / 100);
  if (units > kMaxTimeoutUnits) units = kMaxTimeoutUnits;
  unsigned v = (kStopMagic << 28) |
               ((static_cast<unsigned>(request.signal) & 0x7f) << kTimeoutBits) |
               static_cast<unsigned>(units);
  return static_cast<int>(v);
}

std::optional<StopRequest> decode_stop_request(int code, int value) {
  if (code != SI_QUEUE) return std::nullopt;
  auto v = static_cast<unsigned>(value);
  if ((v >> 28) != kStopMagic) return std::nullopt;
  int signo = static_cast<int>((v >> kTimeoutBits) & 0x7f);
  if (signo < 0 || signo > SIGRTMAX) return std::nullopt;  // 0: the daemon's own
  StopRequest r;
  r.signal = signo;
  r.timeout = std::chrono::milliseconds(static_cast<long long>(v & kMaxTimeoutUnits) * 100);
  return r;
}

int reopen_request_signal() {
  return SIGRTMIN + 2;
}
int reload_request_signal() {
  return SIGRTMIN + 1;
}

int signal_request_signal() {
  return SIGRTMIN + 3;
}

int make_request_id() {
  unsigned r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r))
    r = static_cast<unsigned>(::getpid());
  r &= 0x7fffffU;
  return static_cast<int>(r == 0 ? 1 : r);
}

std::string reply_address(pid_t requester, int id) {
  return "@daemonkit-reply/" + std::to_string(requester) + "/" +
         std::to_string(static_cast<unsigned>(id));
}

int encode_signal_request(const SignalRequest& request) {
  return static_cast<int>((static_cast<unsigned>(request.id) & 0x7fffffU) << 8 |
                          (request.group ? 0x80U : 0U) |
                          (static_cast<unsigned>(request.signo) & 0x7fU));
}

std::optional<SignalRequest> decode_signal_request(int code, int value) {
  if (code != SI_QUEUE || value < 0) return std::nullopt;
  const auto v = static_cast<unsigned>(value);
  SignalRequest r;
  r.signo = static_cast<int>(v & 0x7fU);
  r.group = (v & 0x80U) != 0;
  r.id = static_cast<int>(v >> 8);
  if (r.signo <= 0 || r.signo > SIGRTMAX || r.id == 0) return std::nullopt;
  return r;
}

Result<pid_t> signal_daemon(const std::filesystem::path& pidfile, int signo,
                            std::optional<int> value) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return pid_t{0};
  const Pidfd& p = (*holder)->process;
  auto sent = value ? p.send_queued(signo, *value) : p.send_signal(signo);
  if (!sent) return fail(std::move(sent).error());
  return *sent ? p.pid() : pid_t{0};
}

Result<pid_t> reopen_daemon(const std::filesystem::path& pidfile) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return pid_t{0};
  const Pidfd& p = (*holder)->process;
  const bool supervisor = (*holder)->supervisor || (*holder)->older_supervisor;
  auto sent = supervisor ? p.send_queued(reopen_request_signal(), 0) : p.send_signal(SIGHUP);
  if (!sent) return fail(std::move(sent).error());
  return *sent ? p.pid() : pid_t{0};
}

namespace {

// Sends a supervisor `signo` queued with `value` (which carries `id`) and
// waits up to `timeout` for its answer on reply_address(getpid(), id).
Result<RequestResult> ask_supervisor(const std::filesystem::path& pidfile, int signo, int value,
                                     int id, std::chrono::milliseconds timeout, const char* what) {
  RequestResult result;
  // Listen before asking, so the answer cannot come too early.
  auto listener = NotifyListener::open_at(reply_address(::getpid(), id));
  if (!listener) return fail(std::move(listener).error());
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return result;
  const Pidfd& daemon = (*holder)->process;
  result.pid = daemon.pid();
  auto sent = daemon.send_queued(signo, value);
  if (!sent) return fail(std::move(sent).error());
  if (!*sent) return result;
  result.outcome = RequestResult::Outcome::failed;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      result.why = "no confirmation within " + format_seconds(timeout) + " s";
      return result;
    }
    struct pollfd fds[2] = {{listener->fd(), POLLIN, 0}, {daemon.fd(), POLLIN, 0}};
    if (::poll(fds, daemon.fd() >= 0 ? 2 : 1,
               static_cast<int>(std::min<long long>(left, 1 << 30))) < 0) {
      if (errno == EINTR) continue;
      return fail(Error::from_errno(errno, std::string("wait for the ") + what + " of", pidfile));
    }
    for (;;) {
      auto d = listener->receive();
      if (!d) return fail(std::move(d).error());
      if (!*d) break;
      if ((*d)->sender != daemon.pid()) continue;  // only the lock holder may answer
      const std::string& text = (*d)->text;
      if (text == "ok") {
        result.outcome = RequestResult::Outcome::done;
        return result;
      }
      if (text.rfind("not running: ", 0) == 0) {
        result.outcome = RequestResult::Outcome::not_running;
        result.why = text.substr(13);
        return result;
      }
      result.why = text.rfind("failed: ", 0) == 0 ? text.substr(8) : text;
      return result;
    }
    if (daemon.fd() >= 0 && fds[1].revents != 0) {
      result.why = std::string("the daemon exited during the ") + what;
      return result;
    }
  }
}

}  // namespace

Result<RequestResult> reload_daemon(const std::filesystem::path& pidfile,
                                    std::chrono::milliseconds timeout) {
  auto st = query_status(pidfile);
  if (!st) return fail(std::move(st).error());
  if (!st->supervisor && !st->older_supervisor) {
    RequestResult result;
    auto pid = signal_daemon(pidfile, SIGHUP);
    if (!pid) return fail(std::move(pid).error());
    result.pid = *pid;
    result.outcome = *pid == 0 ? RequestResult::Outcome::not_running : RequestResult::Outcome::done;
    return result;
  }
  const int id = make_request_id();
  return ask_supervisor(pidfile, reload_request_signal(), id, id, timeout, "reload");
}

Result<RequestResult> signal_payload(const std::filesystem::path& pidfile, int signo, bool group,
                                     std::chrono::milliseconds timeout) {
  auto st = query_status(pidfile);
  if (!st) return fail(std::move(st).error());
  if (st->older_supervisor) {
    RequestResult result;
    result.pid = st->pid;
    result.outcome = RequestResult::Outcome::failed;
    result.why = "pid " + std::to_string(st->pid) +
                 " is the supervisor of an older daemonkit, which cannot pass signals on "
                 "(restart the daemon)";
    return result;
  }
  if (!st->supervisor) {
    // The daemon is its own payload.
    RequestResult result;
    auto holder = open_lock_holder(pidfile);
    if (!holder) return fail(std::move(holder).error());
    if (!*holder) return result;
    const Pidfd& p = (*holder)->process;
    result.pid = p.pid();
    if (group) {
      // A group cannot go away while a member lives: look its id up, and
      // signal it only if the holder was still alive (so still a member)
      // after that.
      const pid_t pgid = ::getpgid(p.pid());
      if (pgid > 1 && !p.has_exited()) {
        if (::kill(-pgid, signo) < 0 && errno != ESRCH)
          return fail(Error::from_errno(errno, "signal process group", std::to_string(pgid)));
        result.outcome = RequestResult::Outcome::done;
      }
      return result;
    }
    auto sent = p.send_signal(signo);
    if (!sent) return fail(std::move(sent).error());
    result.outcome = *sent ? RequestResult::Outcome::done : RequestResult::Outcome::not_running;
    return result;
  }
  SignalRequest request{signo, group, make_request_id()};
  return ask_supervisor(pidfile, signal_request_signal(), encode_signal_request(request),
                        request.id, timeout, "signal");
}

ProcessInfo read_process_info(pid_t pid) {
  ProcessInfo info;
  const std::string dir = "/proc/" + std::to_string(pid);
  auto slurp = [](const std::string& path) { return read_head(path, 1 << 20); };
  // Arguments end in NULs. A process that retitles itself (redis, nginx,
  // postgres: setproctitle) writes the title over its arguments and fills
  // the rest of their space with NULs, which would read as dozens of empty
  // arguments: the NULs at the end are dropped, as ps(1) does. (A genuinely
  // empty last argument looks the same and goes too; empty ones before the
  // last non-empty one stay.)
  std::string cmdline = slurp(dir + "/cmdline");
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  for (size_t start = 0; start < cmdline.size();) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    info.command.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  const std::string status = slurp(dir + "/status");
  if (auto at = status.find("VmRSS:"); at != std::string::npos)
    info.rss_kib = std::strtoull(status.c_str() + at + 6, nullptr, 10);
  const auto stat = read_proc_stat(pid);
  const std::string uptime = slurp("/proc/uptime");
  if (stat && !uptime.empty()) {
    const double started =
        static_cast<double>(stat->start_ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double now = std::strtod(uptime.c_str(), nullptr);
    if (now > started) info.uptime = std::chrono::seconds(static_cast<long long>(now - started));
  }
  return info;
}

std::vector<std::string> tail_lines(const std::filesystem::path& path, size_t count,
                                    const std::optional<Credentials>& as) {
  std::vector<std::string> lines;
  // Opened as the user who owns the daemon's output (root's power would
  // read whatever file a link or hard link planted at the path names),
  // never through a symbolic link, never waiting for a FIFO's writer.
  sys::FsCredentials guard;
  if (as && guard.assume(as->uid, as->gid, as->groups.data(), as->groups.size()) < 0) return lines;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY));
  guard.restore();
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || count == 0) return lines;
  const off_t want = std::min<off_t>(st.st_size, off_t{64} * 1024);
  std::string text(static_cast<size_t>(want), '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), st.st_size - want);
  if (n <= 0) return lines;
  text.resize(static_cast<size_t>(n));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  size_t end = text.size();
  while (lines.size() < count) {
    size_t nl = text.rfind('\n', end == 0 ? 0 : end - 1);
    size_t begin = nl == std::string::npos ? 0 : nl + 1;
    if (end == 0 && begin == 0 && text.empty()) break;
    lines.insert(lines.begin(), text.substr(begin, end - begin));
    if (nl == std::string::npos) break;
    end = nl;
  }
  return lines;
}

ExitCode exit_code_for(const Error& error) {
  switch (error.kind) {
    case ErrorKind::usage:
      return ExitCode::usage;
    case ErrorKind::privilege:
      return ExitCode::privilege;
    case ErrorKind::not_installed:
      return ExitCode::not_installed;
    case ErrorKind::failure:
      break;
  }
  return ExitCode::failure;
}

ExitCode exit_code_for(RunState state) {
  switch (state) {
    case RunState::running:
      return ExitCode::success;
    case RunState::dead_pidfile_remains:
      return ExitCode::failure;
    case RunState::not_running:
      break;
  }
  return ExitCode::not_running;
}

}  // namespace daemonkit
