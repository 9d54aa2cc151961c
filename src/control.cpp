#include "daemonkit/control.hpp"

#include "daemonkit/fd.hpp"
#include "daemonkit/pidfile.hpp"

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

Result<StopResult> stop_daemon(const std::filesystem::path& pidfile, const StopOptions& options) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  StopResult result;
  if (*holder) {
    const Pidfd& daemon = **holder;
    result.pid = daemon.pid();
    result.outcome = StopResult::Outcome::stopped;
    auto sent = daemon.send_queued(SIGTERM, encode_stop_request({options.signal, options.timeout}));
    if (!sent) return fail(std::move(sent).error());
    auto gone = daemon.wait_for_exit(options.timeout + options.kill_grace);
    if (!gone) return fail(std::move(gone).error());
    if (!*gone) {
      result.outcome = StopResult::Outcome::killed;
      auto killed = daemon.send_signal(SIGKILL);
      if (!killed) return fail(std::move(killed).error());
      gone = daemon.wait_for_exit(options.kill_timeout);
      if (!gone) return fail(std::move(gone).error());
      if (!*gone)
        return fail(Error::because("stop", "pid " + std::to_string(daemon.pid()),
                                   "the process survived SIGKILL"));
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

Result<pid_t> signal_daemon(const std::filesystem::path& pidfile, int signo) {
  auto holder = open_lock_holder(pidfile);
  if (!holder) return fail(std::move(holder).error());
  if (!*holder) return pid_t{0};
  auto sent = (*holder)->send_signal(signo);
  if (!sent) return fail(std::move(sent).error());
  return *sent ? (*holder)->pid() : pid_t{0};
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
