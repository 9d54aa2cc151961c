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
#include <string>

#include "daemonkit/detach.hpp"
#include "detach/child.hpp"
#include "detach/report.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

using detail::Report;

namespace {

std::filesystem::path absolute_from_here(const std::filesystem::path& p) {
  if (p.empty() || p.is_absolute()) return p;
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return ec ? p : abs.lexically_normal();
}

std::optional<unsigned long> parse_id(std::string_view s) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

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

// Waits (bounded) until the daemon closed its end: it has exited.
void wait_for_hangup(int fd) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::seconds(2);
  while (clock::now() < deadline) {
    int n = ::poll(&p, 1, 100);
    if (n < 0 && errno != EINTR) return;
    if (n > 0) {
      if (p.revents & (POLLHUP | POLLERR)) return;
      std::array<std::byte, sizeof(Report)> sink{};
      if (::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) == 0) return;
    }
  }
}

}  // namespace

Result<Started> detach(const DetachOptions& options, const std::function<int(Daemon&)>& body) {
  // Resolve everything before forking: the children must not allocate, and
  // relative paths mean the caller's working directory, not "/".
  const std::string pidfile = absolute_from_here(options.pidfile).string();
  const std::string in = absolute_from_here(options.stdin_path).string();
  const std::string out = absolute_from_here(options.stdout_path).string();
  const std::string err = absolute_from_here(options.stderr_path).string();
  const std::string wd = absolute_from_here(options.working_directory).string();

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
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

  std::fflush(nullptr);  // or buffered output would be written twice
  pid_t child = ::fork();
  if (child < 0) return fail(Error::from_errno(errno, "fork", ""));
  if (child == 0) {
    (void)mine.release();
    ::close(sv[0]);
    int pidfile_fd = detail::become_daemon(plan);
    // The daemon. From here the process is single-threaded and may allocate.
    std::optional<LockedPidfile> locked;
    if (pidfile_fd >= 0) locked.emplace(pidfile, UniqueFd(pidfile_fd));
    int rc = 1;
    {
      Daemon daemon(std::move(theirs), std::move(locked));
      rc = body(daemon);
      if (!daemon.reported()) {
        daemon.fail(Error::because("start", "", "the daemon exited before it was ready"));
      }
    }
    std::fflush(nullptr);
    _exit(rc);
  }

  theirs.reset();
  int status = 0;
  (void)sys::retry_eintr([&] { return ::waitpid(child, &status, 0); });

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
      return fail(Error::from_errno(errno, "wait for the daemon", ""));
    }
    if (n == 0) {
      if (clock::now() < deadline) continue;
      abandon(daemon, pidfile);
      return fail(Error::because("start", "",
                                 "the daemon was not ready within " +
                                     std::to_string(options.ready_timeout.count()) +
                                     " ms; it was killed"));
    }
    std::array<std::byte, sizeof(Report) + 1> buf{};
    ssize_t got = sys::retry_eintr([&] { return ::recv(mine.get(), buf.data(), buf.size(), 0); });
    if (got < 0) return fail(Error::from_errno(errno, "read report from the daemon", ""));
    if (got == 0) {
      // The daemon vanished without a word (killed, or crashed).
      abandon(daemon, pidfile);
      if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return fail(Error::because("start", "", "the daemon's parent failed"));
      return fail(Error::because("start", "", "the daemon exited before it was ready"));
    }
    auto report = detail::decode_report(std::span(buf.data(), static_cast<size_t>(got)));
    if (!report) {
      abandon(daemon, pidfile);
      return fail(Error::because("start", "", "the daemon sent a malformed report"));
    }
    switch (report->kind) {
      case Report::Kind::forked: {
        // Take a handle now: the daemon is alive as long as its end of the
        // socket is open, which we check after opening the handle.
        auto handle = Pidfd::open(report->pid);
        struct pollfd q {
          mine.get(), POLLIN, 0
        };
        bool hung_up = ::poll(&q, 1, 0) > 0 && (q.revents & POLLHUP) != 0;
        if (handle && !hung_up) daemon.emplace(std::move(*handle));
        break;
      }
      case Report::Kind::ready:
        return Started{Started::How::started, report->pid};
      case Report::Kind::already_running:
        return Started{Started::How::already_running, report->pid};
      case Report::Kind::failed:
        wait_for_hangup(mine.get());
        return fail(detail::error_from(*report));
    }
  }
}

}  // namespace daemonkit
