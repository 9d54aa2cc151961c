#include "daemonkit/cgroup.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "sys/sys.hpp"

namespace daemonkit {

namespace {

// Where the v2 hierarchy is mounted and which of its paths that mount
// shows at its mount point ("/" unless it is a bind mount of a subtree).
struct Hierarchy {
  std::string mount_point;
  std::string root;
};

// The first line of `text` (without its newline), taken off it.
std::string_view next_line(std::string_view& text) {
  const size_t end = std::min(text.find('\n'), text.size());
  const std::string_view line = text.substr(0, end);
  text.remove_prefix(std::min(end + 1, text.size()));
  return line;
}

std::optional<Hierarchy> find_hierarchy() {
  const std::string info = read_head("/proc/self/mountinfo", size_t{1} << 20);
  for (std::string_view rest = info; !rest.empty();) {
    const std::string_view line = next_line(rest);
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos || line.substr(dash + 3, 8) != "cgroup2 ") continue;
    std::vector<std::string_view> fields;
    for (size_t p = 0; p < dash && fields.size() < 6;) {
      size_t q = line.find(' ', p);
      if (q == std::string_view::npos || q > dash) q = dash;
      fields.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    // A mount option "ro" in field 6 means we could create nothing.
    if (fields.size() < 6 || fields[5].substr(0, 2) == "ro") continue;
    // Octal escapes (\040 for a space) are left as they are: such a mount
    // point is not ours to use.
    if (fields[3].find('\\') != std::string_view::npos ||
        fields[4].find('\\') != std::string_view::npos)
      continue;
    return Hierarchy{std::string(fields[4]), std::string(fields[3])};
  }
  return std::nullopt;
}

// This process's path in the v2 hierarchy ("0::PATH" in /proc/self/cgroup).
std::optional<std::string> own_cgroup() {
  const std::string text = read_head("/proc/self/cgroup", size_t{64} << 10);
  for (std::string_view rest = text; !rest.empty();)
    if (const std::string_view line = next_line(rest); line.substr(0, 3) == "0::")
      return std::string(line.substr(3));
  return std::nullopt;
}

UniqueFd open_in(const std::string& dir, const char* file, int flags) {
  const std::string path = dir + "/" + file;
  return UniqueFd(sys::retry_eintr(
      [&] { return sys::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY); }));
}

}  // namespace

std::optional<Cgroup> Cgroup::create(const std::string& prefix) {
  auto hierarchy = find_hierarchy();
  auto own = own_cgroup();
  if (!hierarchy || !own || own->find("(deleted)") != std::string::npos) return std::nullopt;
  // Our path relative to what the mount shows.
  std::string relative = *own;
  if (hierarchy->root != "/") {
    if (relative.rfind(hierarchy->root, 0) != 0) return std::nullopt;
    relative = relative.substr(hierarchy->root.size());
  }
  if (!relative.empty() && relative.back() == '/') relative.pop_back();
  // A name of our own: supervisors in other pid namespaces (containers, each
  // its own pid 1) may share the parent, so the pid alone is not enough, and
  // an existing cgroup is never taken over (EEXIST: another name).
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::uint64_t nonce = 0;
    if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce))
      return std::nullopt;
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "-%016llx", static_cast<unsigned long long>(nonce));
    std::string path = hierarchy->mount_point;
    path.append(relative).append("/").append(prefix).append(suffix);
    if (::mkdir(path.c_str(), 0755) < 0) {
      if (errno == EEXIST) continue;
      return std::nullopt;
    }
    auto made = open(path);
    if (!made) ::rmdir(path.c_str());
    return made;
  }
  return std::nullopt;
}

std::optional<Cgroup> Cgroup::open(const std::string& path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  UniqueFd procs = open_in(path, "cgroup.procs", O_WRONLY);
  if (!procs) return std::nullopt;
  UniqueFd dir(sys::retry_eintr(
      [&] { return sys::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW); }));
  if (!dir) return std::nullopt;
  // Only a cgroup (v2) has cgroup.events: a file that a record names
  // elsewhere is never written to.
  if (!open_in(path, "cgroup.events", O_RDONLY)) return std::nullopt;
  return Cgroup(path, std::move(dir), std::move(procs));
}

std::vector<pid_t> Cgroup::members() const {
  std::vector<pid_t> pids;
  const std::string text = read_head(path_ + "/cgroup.procs", size_t{1} << 20);
  const char* p = text.c_str();
  for (;;) {
    char* end = nullptr;
    long pid = std::strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0) pids.push_back(static_cast<pid_t>(pid));
    p = end;
  }
  return pids;
}

bool Cgroup::populated() const {
  const std::string events = read_head(path_ + "/cgroup.events", 4096);
  // Unreadable: assume the worst.
  return events.empty() || events.find("populated 0") == std::string::npos;
}

Result<void> Cgroup::kill_all() {
  UniqueFd kill = open_in(path_, "cgroup.kill", O_WRONLY);
  if (kill) {
    killed_ = true;
    if (sys::write_all(kill.get(), "1", 1) < 0)
      return fail(Error::from_errno(errno, "write", path_ + "/cgroup.kill"));
    return {};
  }
  if (errno != ENOENT) return fail(Error::from_errno(errno, "open", path_ + "/cgroup.kill"));
  // Before Linux 5.14: one by one, until a round finds none. A member's pid
  // cannot be reused while it is in here; the window is between the read
  // and the kill of one that exits meanwhile, as with any kill(2).
  for (int round = 0; round < 100; ++round) {
    auto pids = members();
    if (pids.empty()) break;
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
  }
  return {};
}

bool Cgroup::wait_until_empty(std::chrono::milliseconds timeout) const {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  UniqueFd events = open_in(path_, "cgroup.events", O_RDONLY);
  if (!events) return !populated();
  for (;;) {
    char buf[256];
    ssize_t n = sys::retry_eintr([&] { return ::pread(events.get(), buf, sizeof buf - 1, 0); });
    if (n < 0) return false;
    buf[n] = '\0';
    if (std::string_view(buf, static_cast<size_t>(n)).find("populated 0") != std::string_view::npos)
      return true;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) return false;
    // The kernel notifies a change of cgroup.events as POLLPRI.
    struct pollfd p {
      events.get(), POLLPRI, 0
    };
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30))) < 0 && errno != EINTR)
      return false;
  }
}

namespace {

// Removes the cgroups below `dir`, deepest first (a daemonkit run inside
// the payload makes its own there, and may have been killed before it
// could remove it). Only directories: a cgroup's files cannot be removed.
void remove_children(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    remove_children(entry.path());
    ::rmdir(entry.path().c_str());
  }
}

}  // namespace

Result<void> Cgroup::remove() {
  procs_.reset();
  dir_.reset();
  remove_children(path_);
  if (::rmdir(path_.c_str()) < 0 && errno != ENOENT)
    return fail(Error::from_errno(errno, "remove cgroup", path_));
  return {};
}

}  // namespace daemonkit
