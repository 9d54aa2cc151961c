#include "daemonkit/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
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

// Children of `pid` that lead a process group of their own.
std::vector<pid_t> leaders_among_children(pid_t pid) {
  std::vector<pid_t> leaders;
  for (pid_t child : child_processes(pid))
    if (child > 1 && ::getpgid(child) == child) leaders.push_back(child);
  return leaders;
}

}  // namespace

Result<StopResult> stop_daemon(const std::filesystem::path& pidfile, const StopOptions& options) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  StopResult result;
  if (*holder) {
    const Pidfd& daemon = **holder;
    result.pid = daemon.pid();
    result.outcome = StopResult::Outcome::stopped;
    // Without a pidfd (old kernels) the exit shows in the lock: keep the
    // file open, having made sure it is still the holder's.
    UniqueFd watch;
    std::vector<pid_t> sweep;
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
        // A supervisor that did not end by itself cannot sweep its payload's
        // group: note the groups its children lead (it is alive and
        // confirmed, so these are its own), and SIGKILL them once it is dead.
        sweep = leaders_among_children(daemon.pid());
        auto killed = daemon.send_signal(SIGKILL);
        if (!killed) return fail(std::move(killed).error());
        gone = wait(options.kill_timeout);
        if (!gone) return fail(std::move(gone).error());
        if (!*gone)
          return fail(Error::because("stop", "pid " + std::to_string(daemon.pid()),
                                     "the process survived SIGKILL"));
        for (pid_t group : sweep) ::kill(-group, SIGKILL);
      }
    }
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
  if (signo <= 0 || signo > SIGRTMAX) return std::nullopt;
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

int make_reload_request() {
  unsigned r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r))
    r = static_cast<unsigned>(::getpid());
  return static_cast<int>(r & 0x7fffffffU);
}

std::string reload_reply_address(pid_t requester, int id) {
  return "@daemonkit-reload/" + std::to_string(requester) + "/" +
         std::to_string(static_cast<unsigned>(id));
}

Result<pid_t> signal_daemon(const std::filesystem::path& pidfile, int signo,
                            std::optional<int> value) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return pid_t{0};
  auto sent = value ? (*holder)->send_queued(signo, *value) : (*holder)->send_signal(signo);
  if (!sent) return fail(std::move(sent).error());
  return *sent ? (*holder)->pid() : pid_t{0};
}

Result<ReloadResult> reload_daemon(const std::filesystem::path& pidfile, bool confirm,
                                   std::chrono::milliseconds timeout) {
  ReloadResult result;
  if (!confirm) {
    auto pid = signal_daemon(pidfile, SIGHUP);
    if (!pid) return fail(std::move(pid).error());
    result.pid = *pid;
    result.outcome = *pid == 0 ? ReloadResult::Outcome::not_running : ReloadResult::Outcome::done;
    return result;
  }
  // Listen before asking, so the answer cannot come too early.
  const int id = make_reload_request();
  auto listener = NotifyListener::open_at(reload_reply_address(::getpid(), id));
  if (!listener) return fail(std::move(listener).error());
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return result;
  const Pidfd& daemon = **holder;
  result.pid = daemon.pid();
  auto sent = daemon.send_queued(reload_request_signal(), id);
  if (!sent) return fail(std::move(sent).error());
  if (!*sent) return result;
  result.outcome = ReloadResult::Outcome::failed;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      result.why = "no confirmation within " + format_seconds(timeout) + " s";
      return result;
    }
    struct pollfd fds[2] = {{listener->fd(), POLLIN, 0}, {daemon.fd(), POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(std::min<long long>(left, 1 << 30))) < 0) {
      if (errno == EINTR) continue;
      return fail(Error::from_errno(errno, "wait for the reload of", pidfile));
    }
    for (;;) {
      auto d = listener->receive();
      if (!d) return fail(std::move(d).error());
      if (!*d) break;
      if ((*d)->sender != daemon.pid()) continue;  // only the lock holder may answer
      if ((*d)->text == "ok") {
        result.outcome = ReloadResult::Outcome::done;
        return result;
      }
      result.why = (*d)->text.rfind("failed: ", 0) == 0 ? (*d)->text.substr(8) : (*d)->text;
      return result;
    }
    if (fds[1].revents != 0) {
      result.why = "the daemon exited during the reload";
      return result;
    }
  }
}

ProcessInfo read_process_info(pid_t pid) {
  ProcessInfo info;
  const std::string dir = "/proc/" + std::to_string(pid);
  auto slurp = [](const std::string& path) { return read_head(path, 1 << 20); };
  const std::string cmdline = slurp(dir + "/cmdline");
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

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
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
