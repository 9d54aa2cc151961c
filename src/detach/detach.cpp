// src/detach/detach.cpp: the original process's side of detach(), and the
// daemon's side of the report channel.
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "daemonkit/detach.hpp"
#include "detach/child.hpp"
#include "detach/report.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

using detail::Report;

namespace {

std::optional<unsigned long> parse_id(std::string_view s) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::filesystem::path absolute_path(const std::filesystem::path& p) {
  if (p.empty() || p.is_absolute()) return p;
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return ec ? p : abs.lexically_normal();
}

Result<Credentials> lookup_credentials(std::string_view spec) {
  auto colon = spec.find(':');
  std::string user(spec.substr(0, colon));
  std::string group = colon == std::string_view::npos ? "" : std::string(spec.substr(colon + 1));
  if (user.empty() || (colon != std::string_view::npos && group.empty()))
    return fail(Error::because("parse user", std::string(spec), "expected USER or USER:GROUP",
                               ErrorKind::usage));

  Credentials c;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  int rc = 0;
  while ((rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1U << 20))
    buf.resize(buf.size() * 4);
  if (rc != 0) return fail(Error::from_errno(rc, "look up user", user));
  if (found != nullptr) {
    c.user = pw.pw_name;
    c.uid = pw.pw_uid;
    c.gid = pw.pw_gid;
  } else if (auto id = parse_id(user)) {
    c.user = user;
    c.uid = static_cast<uid_t>(*id);
    c.gid = static_cast<gid_t>(*id);
  } else {
    return fail(Error::because("look up user", user, "no such user", ErrorKind::usage));
  }

  if (!group.empty()) {
    struct group gr {};
    struct group* gfound = nullptr;
    std::vector<char> gbuf(16384);
    while ((rc = ::getgrnam_r(group.c_str(), &gr, gbuf.data(), gbuf.size(), &gfound)) == ERANGE &&
           gbuf.size() < (1U << 20))
      gbuf.resize(gbuf.size() * 4);
    if (rc != 0) return fail(Error::from_errno(rc, "look up group", group));
    if (gfound != nullptr)
      c.gid = gr.gr_gid;
    else if (auto id = parse_id(group))
      c.gid = static_cast<gid_t>(*id);
    else
      return fail(Error::because("look up group", group, "no such group", ErrorKind::usage));
  }

  if (found != nullptr) {
    int n = 32;
    for (;;) {
      c.groups.resize(static_cast<size_t>(n));
      int count = n;
      if (::getgrouplist(c.user.c_str(), c.gid, c.groups.data(), &count) >= 0) {
        c.groups.resize(static_cast<size_t>(count));
        break;
      }
      if (count <= n) count = n * 2;
      n = count;
    }
  } else {
    c.groups = {c.gid};
  }
  return c;
}

void Daemon::ready() {
  if (!channel_) return;
  detail::send_report(channel_.get(), detail::make_report(Report::Kind::ready, ::getpid()));
  channel_.reset();
}

void Daemon::fail(const Error& error) {
  if (!channel_) return;
  // Nothing of a failed start may remain once the caller hears of it.
  if (pidfile_) (void)pidfile_->remove();
  pidfile_.reset();
  detail::send_report(
      channel_.get(),
      detail::make_failure(error.op.c_str(), error.subject.c_str(), error.code,
                           error.detail.empty() ? nullptr : error.detail.c_str(), error.kind));
  channel_.reset();
}

namespace {

// Kills a daemon that missed its deadline and removes what it left.
void abandon(const std::optional<Pidfd>& daemon, const std::filesystem::path& pidfile) {
  if (daemon) {
    (void)daemon->send_signal(SIGKILL);
    (void)daemon->wait_for_exit(std::chrono::seconds(5));
  }
  if (!pidfile.empty()) (void)remove_stale_pidfile(pidfile);
}

// After its last report the daemon exits: wait until it has (bounded), so
// that "failed" and "already running" mean no process of ours is left.
void wait_until_gone(const std::optional<Pidfd>& daemon, int channel) {
  if (daemon) {
    (void)daemon->wait_for_exit(std::chrono::seconds(5));
    return;
  }
  struct pollfd p {
    channel, POLLRDHUP, 0
  };
  (void)::poll(&p, 1, 5000);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended";
}

}  // namespace

Result<Started> detach(const DetachOptions& options, const std::function<int(Daemon&)>& body) {
  // Resolve everything before forking: the children must not allocate, and
  // relative paths mean the caller's working directory, not "/".
  const std::filesystem::path pidfile_path = absolute_path(options.pidfile);
  const std::string pidfile = pidfile_path.string();
  const std::string in = absolute_path(options.stdin_path).string();
  const std::string out = absolute_path(options.stdout_path).string();
  const std::string err = absolute_path(options.stderr_path).string();
  const std::string wd = absolute_path(options.working_directory).string();

  int sv[2];
  if (sys::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return fail(Error::from_errno(errno, "socketpair", ""));
  UniqueFd mine(sv[0]);
  UniqueFd theirs(sv[1]);

  detail::ChildPlan plan;
  plan.pidfile = pidfile.empty() ? nullptr : pidfile.c_str();
  plan.stdin_path = in.c_str();
  plan.stdout_path = out.c_str();
  plan.stderr_path = err.c_str();
  plan.working_directory = wd.c_str();
  plan.umask = options.umask;
  if (options.credentials) {
    plan.switch_user = true;
    plan.uid = options.credentials->uid;
    plan.gid = options.credentials->gid;
    plan.groups = options.credentials->groups.data();
    plan.group_count = options.credentials->groups.size();
    plan.user = options.credentials->user.c_str();
  }
  plan.report_fd = theirs.get();
  plan.keep_signals_blocked = options.keep_signals_blocked;
  plan.supervisor_lock = options.supervisor;

  std::fflush(nullptr);  // or buffered output would be written twice
  pid_t child = sys::fork();
  if (child < 0) return fail(Error::from_errno(errno, "fork", ""));
  if (child == 0) {
    ::close(mine.release());
    (void)theirs.release();
    detail::DaemonFds fds = detail::become_daemon(plan);
    // The daemon. The body may allocate: the caller promised no threads.
    int rc = 1;
    {
      std::optional<LockedPidfile> locked;
      if (fds.pidfile >= 0) locked.emplace(pidfile_path, UniqueFd(fds.pidfile));
      Daemon daemon(UniqueFd(fds.report), std::move(locked));
      try {
        rc = body(daemon);
      } catch (const std::exception& e) {
        daemon.fail(Error::because("start", "", std::string("uncaught exception: ") + e.what()));
      } catch (...) {
        daemon.fail(Error::because("start", "", "uncaught exception"));
      }
      if (!daemon.reported())
        daemon.fail(Error::because("start", "", "the daemon exited before it was ready"));
    }
    std::fflush(nullptr);
    _exit(rc);
  }

  theirs.reset();
  int status = 0;
  // ECHILD: the caller ignores SIGCHLD, so the kernel reaped the child for
  // us; the report channel tells the rest.
  if (sys::retry_eintr([&] { return ::waitpid(child, &status, 0); }) < 0 && errno != ECHILD)
    return fail(Error::from_errno(errno, "wait for", "pid " + std::to_string(child)));

  std::optional<Pidfd> daemon;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + options.ready_timeout;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    struct pollfd p {
      mine.get(), POLLIN, 0
    };
    int n = left <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      abandon(daemon, pidfile_path);
      return fail(Error::from_errno(e, "wait for the daemon", ""));
    }
    if (n == 0) {
      if (clock::now() < deadline) continue;
      abandon(daemon, pidfile_path);
      return fail(Error::because("start", "",
                                 "the daemon was not ready within " +
                                     std::to_string(options.ready_timeout.count()) +
                                     " ms; it was killed"));
    }
    std::array<std::byte, sizeof(Report) + 1> buf{};
    UniqueFd passed;
    int passed_fd = -1;
    ssize_t got = detail::receive_report(mine.get(), buf, &passed_fd);
    passed.reset(passed_fd);
    if (got < 0) {
      int e = errno;
      abandon(daemon, pidfile_path);
      return fail(Error::from_errno(e, "read the daemon's report", ""));
    }
    if (got == 0) {
      // The daemon vanished without a word (killed, or crashed).
      abandon(daemon, pidfile_path);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return fail(
            Error::because("start", "", "the daemon's parent " + describe_wait_status(status)));
      return fail(Error::because("start", "", "the daemon exited before it was ready"));
    }
    auto report = detail::decode_report(std::span(buf.data(), static_cast<size_t>(got)));
    if (!report) {
      abandon(daemon, pidfile_path);
      return fail(Error::because("start", "", "the daemon sent a malformed report"));
    }
    switch (report->kind) {
      case Report::Kind::forked:
        if (passed) {
          daemon.emplace(Pidfd::adopt(std::move(passed), report->pid));
        } else if (auto handle = Pidfd::open(report->pid)) {
          // No pidfd came along (pidfd_open failed in the daemon): ours is
          // right only if the daemon was still alive after we opened it,
          // which its open end of the channel shows.
          struct pollfd q {
            mine.get(), POLLRDHUP, 0
          };
          if (!(::poll(&q, 1, 0) > 0 && (q.revents & (POLLRDHUP | POLLHUP)) != 0))
            daemon.emplace(std::move(*handle));
        }
        break;
      case Report::Kind::ready: {
        // The daemon closes its end right after this report; wait for that
        // (bounded: a child it forked may hold a copy), so that when we
        // return it holds exactly its own descriptors.
        struct pollfd q {
          mine.get(), POLLRDHUP, 0
        };
        (void)sys::retry_eintr([&] { return ::poll(&q, 1, 1000); });
        return Started{Started::How::started, report->pid};
      }
      case Report::Kind::already_running:
        wait_until_gone(daemon, mine.get());
        return Started{Started::How::already_running, report->pid};
      case Report::Kind::failed:
        wait_until_gone(daemon, mine.get());
        return fail(detail::error_from(*report));
    }
  }
}

}  // namespace daemonkit
