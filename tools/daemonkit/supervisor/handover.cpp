#include "supervisor/handover.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>

#include "daemonkit/fd.hpp"
#include "supervisor/fields.hpp"

extern char** environ;

#ifndef DAEMONKIT_SUPERVISOR_RELATIVE
#define DAEMONKIT_SUPERVISOR_RELATIVE "../libexec/daemonkit/daemonkit-supervise"
#endif

namespace dkcli {

using daemonkit::Error;
using daemonkit::UniqueFd;

namespace {

constexpr size_t kMaxConfigBytes = size_t{64} << 20;

daemonkit::Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return daemonkit::fail(Error::from_errno(errno, "write", "the configuration"));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

std::string read_all(int fd, size_t limit) {
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() + static_cast<size_t>(n) > limit) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

bool keep_across_exec(int fd) {
  if (fd < 0) return true;
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
}

}  // namespace

daemonkit::Result<std::filesystem::path> find_supervisor_program() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec)
    return daemonkit::fail(
        Error::from_errno(ec.value(), "find the supervisor program", "/proc/self/exe"));
  const auto dir = self.parent_path();
  const std::filesystem::path candidates[] = {
      (dir / DAEMONKIT_SUPERVISOR_RELATIVE).lexically_normal(),
      dir / "daemonkit-supervise",
  };
  for (const auto& c : candidates)
    if (::access(c.c_str(), X_OK) == 0) return c;
  return daemonkit::fail(Error::because(
      "find the supervisor program", candidates[0].string(),
      std::string("not installed (") + std::strerror(errno) + "); daemonkit is incomplete",
      daemonkit::ErrorKind::not_installed));
}

Error exec_supervisor(const std::filesystem::path& program, const SupervisorConfig& config,
                      int channel, int pidfile, const std::vector<std::string>& args) {
  const std::string text = encode_config(config);
  UniqueFd memfd(::memfd_create("daemonkit-config", MFD_CLOEXEC));
  if (!memfd) return Error::from_errno(errno, "memfd_create", "daemonkit-config");
  if (auto w = write_all(memfd.get(), text); !w) return w.error();
  if (::lseek(memfd.get(), 0, SEEK_SET) < 0) return Error::from_errno(errno, "lseek", "memfd");
  for (int fd : {memfd.get(), channel, pidfile})
    if (!keep_across_exec(fd)) return Error::from_errno(errno, "fcntl F_SETFD", "descriptor");
  std::vector<std::string> strings;
  strings.reserve(args.size() + 2);
  strings.push_back(args.empty() ? std::string("daemonkit") : args[0]);
  strings.push_back(std::string(kSuperviseFlag) + std::to_string(memfd.get()) + "," +
                    std::to_string(channel) + "," + std::to_string(pidfile));
  for (size_t i = 1; i < args.size(); ++i) strings.push_back(args[i]);
  std::vector<char*> argv;
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execve(program.c_str(), argv.data(), environ);
  return Error::from_errno(errno, "execute", program);
}

std::variant<Handover, int> take_over(int argc, char** argv) {
  int fds[3] = {-1, -1, -1};
  std::string_view flag = argc > 1 ? std::string_view(argv[1]) : std::string_view();
  bool ok = flag.substr(0, kSuperviseFlag.size()) == kSuperviseFlag;
  flag.remove_prefix(ok ? kSuperviseFlag.size() : flag.size());
  for (int& fd : fds) {
    const size_t comma = flag.find(',');
    ok = ok && fields::number(flag.substr(0, comma), fd) && fd >= -1;
    flag.remove_prefix(comma == std::string_view::npos ? flag.size() : comma + 1);
  }
  if (!ok || fds[0] < 0) {
    std::fprintf(stderr,
                 "daemonkit-supervise: the supervisor of daemonkit; it is started by `daemonkit "
                 "start` and `daemonkit run`, not by hand\n");
    return 2;
  }
  // Ours again, closed on any later exec (the payload's).
  for (int fd : fds)
    if (fd >= 0) (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
  UniqueFd config_fd(fds[0]);
  UniqueFd channel(fds[1]);
  UniqueFd pidfile_fd(fds[2]);
  const std::string text = read_all(config_fd.get(), kMaxConfigBytes);
  config_fd.reset();
  auto config = decode_config(text);
  // The pidfile's path is in the configuration; without one, it can only
  // be let go (closing it releases the lock).
  std::optional<daemonkit::LockedPidfile> locked;
  if (pidfile_fd && config) locked.emplace(config->pidfile, std::move(pidfile_fd));
  if (!config) {
    if (channel) {
      daemonkit::Daemon(std::move(channel), std::move(locked)).fail(config.error());
    } else {
      std::fprintf(stderr, "daemonkit: cannot run: %s\n", config.error().message().c_str());
    }
    return 1;
  }
  Handover h;
  h.config = std::move(*config);
  if (channel) {
    h.caller.emplace(std::move(channel), std::move(locked));
  } else {
    h.pidfile = std::move(locked);
  }
  return h;
}

}  // namespace dkcli
