#include "supervisor/handover.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "daemonkit/fd.hpp"
#include "supervisor/fields.hpp"

extern char** environ;

#ifndef DAEMONKIT_SUPERVISOR_RELATIVE
#define DAEMONKIT_SUPERVISOR_RELATIVE "../libexec/daemonkit/daemonkit-supervise"
#endif
#ifndef DAEMONKIT_SUPERVISOR_INSTALLED
#define DAEMONKIT_SUPERVISOR_INSTALLED "/usr/local/libexec/daemonkit/daemonkit-supervise"
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
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back((self.parent_path() / DAEMONKIT_SUPERVISOR_RELATIVE).lexically_normal());
    candidates.push_back(self.parent_path() / "daemonkit-supervise");
  }
  // Without /proc (a bare chroot): where it was configured to be installed.
  candidates.emplace_back(DAEMONKIT_SUPERVISOR_INSTALLED);
  int first_error = 0;
  for (const auto& c : candidates) {
    // As the effective user: the one that will execute it.
    if (::faccessat(AT_FDCWD, c.c_str(), X_OK, AT_EACCESS) == 0) return c;
    if (first_error == 0) first_error = errno;
  }
  return daemonkit::fail(Error::because(
      "find the supervisor program", candidates.front().string(),
      std::string("not installed (") + std::strerror(first_error) + "); daemonkit is incomplete",
      daemonkit::ErrorKind::not_installed));
}

Error exec_supervisor(const std::filesystem::path& program, const SupervisorConfig& config,
                      int channel, int pidfile, const std::vector<std::string>& args) {
  const std::string text = encode_config(config);
  UniqueFd memfd(::memfd_create("daemonkit-config", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!memfd) return Error::from_errno(errno, "memfd_create", "daemonkit-config");
  if (auto w = write_all(memfd.get(), text); !w) return w.error();
  // Read-only from here on, for whoever else might get hold of it.
  if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) <
      0)
    return Error::from_errno(errno, "fcntl F_ADD_SEALS", "daemonkit-config");
  if (::lseek(memfd.get(), 0, SEEK_SET) < 0) return Error::from_errno(errno, "lseek", "memfd");
  for (int fd : {memfd.get(), channel, pidfile})
    if (!keep_across_exec(fd)) return Error::from_errno(errno, "fcntl F_SETFD", "descriptor");
  std::vector<std::string> strings = args;
  if (strings.empty()) strings.emplace_back("daemonkit");
  std::vector<char*> argv;
  argv.reserve(strings.size() + 1);
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "DAEMONKIT_SUPERVISE=", 20) != 0) env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kSuperviseVariable) + "=" + std::to_string(memfd.get()) + "," +
                        std::to_string(channel) + "," + std::to_string(pidfile));
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  ::execve(program.c_str(), argv.data(), envp.data());
  return Error::from_errno(errno, "execute", program);
}

std::variant<Handover, int> take_over() {
  int fds[3] = {-1, -1, -1};
  const char* variable = std::getenv(kSuperviseVariable);
  std::string_view given = variable != nullptr ? variable : "";
  bool ok = variable != nullptr;
  for (int& fd : fds) {
    const size_t comma = given.find(',');
    ok = ok && fields::number(given.substr(0, comma), fd) && fd >= -1 && fd != 0 && fd != 1 &&
         fd != 2;
    given.remove_prefix(comma == std::string_view::npos ? given.size() : comma + 1);
  }
  (void)::unsetenv(kSuperviseVariable);
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
  // The pidfile's path is in the configuration; without it, the kernel's
  // name for the descriptor (removed only while it still names the file).
  std::optional<daemonkit::LockedPidfile> locked;
  if (pidfile_fd) {
    std::filesystem::path path;
    if (config) {
      path = config->pidfile;
    } else {
      std::error_code ec;
      path = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(pidfile_fd.get()), ec);
    }
    locked.emplace(std::move(path), std::move(pidfile_fd));
  }
  if (!config) {
    if (channel) {
      daemonkit::Daemon caller(std::move(channel), std::move(locked));
      caller.fail(config.error());
    } else {
      std::fprintf(stderr, "daemonkit: cannot run: %s\n", config.error().message().c_str());
      if (locked) (void)locked->remove();
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
