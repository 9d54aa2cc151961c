#include "daemonkit/output.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "sys/fs_credentials.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

namespace {

// Runs `op` with the file-system credentials of `as`, when given, and with
// the caller's own again afterwards.
template <class Op>
auto as_user(const std::optional<Credentials>& as, const std::filesystem::path& path, Op op)
    -> decltype(op()) {
  sys::FsCredentials guard;
  if (as && guard.assume(as->uid, as->gid, as->groups.data(), as->groups.size()) < 0)
    return fail(Error::from_errno(
        errno, "take on the file credentials of user " + as->user + " for", path));
  return op();
}

// The error for a failed open of `path` with O_NOFOLLOW|O_NONBLOCK: a
// symbolic link and a FIFO without a reader say so.
Error open_error(int e, const char* op, const std::filesystem::path& path) {
  if (e == ELOOP)
    if (const char* why = sys::refused_symlink(path.c_str())) return Error::because(op, path, why);
  struct stat st {};
  if (e == ENXIO && ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
    Error err = Error::from_errno(e, op, path);
    err.detail = "is a FIFO with no reader";
    return err;
  }
  return Error::from_errno(e, op, path);
}

}  // namespace

Result<OutputFile> OutputFile::open(std::filesystem::path path, std::optional<Rotation> rotation,
                                    std::optional<Credentials> as) {
  OutputFile f(std::move(path), rotation, std::move(as));
  if (auto r = as_user(f.as_, f.path_, [&] { return f.open_current(); }); !r)
    return fail(std::move(r).error());
  return f;
}

Result<void> OutputFile::open_current() {
  // O_NOFOLLOW: never through a link planted at the path. O_NONBLOCK: a
  // FIFO without a reader is an error at once (ENXIO), not a wait, and a
  // full one refuses a write instead of blocking it.
  int fd = sys::retry_eintr([&] {
    return sys::open(path_.c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
                     0644);
  });
  if (fd < 0) return fail(open_error(errno, "open", path_));
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    int e = errno;
    ::close(fd);
    return fail(Error::from_errno(e, "stat", path_));
  }
  fd_.reset(fd);
  regular_ = S_ISREG(st.st_mode);
  size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
  return {};
}

Result<void> OutputFile::write(std::string_view data) {
  if (rotation_ && regular_ && size_ > 0 && size_ + data.size() > rotation_->max_size) {
    if (auto r = rotate(); !r) return r;
  }
  if (sys::write_all(fd_.get(), data.data(), data.size()) < 0)
    return fail(Error::from_errno(errno, "write", path_));
  size_ += data.size();
  return {};
}

Result<void> OutputFile::reopen() {
  return as_user(as_, path_, [&] { return replace_current(); });
}

Result<void> OutputFile::replace_current() {
  UniqueFd old = std::move(fd_);
  if (auto r = open_current(); !r) {  // changes nothing else when it fails
    fd_ = std::move(old);
    return r;
  }
  return {};
}

Result<void> OutputFile::rotate() {
  if (!regular_) return {};
  return as_user(as_, path_, [&]() -> Result<void> {
    if (auto r = rotate_names(); !r) return r;
    return replace_current();
  });
}

Result<void> OutputFile::rotate_names() {
  const unsigned keep = rotation_ ? rotation_->keep : 5;
  auto numbered = [&](unsigned n) { return path_.string() + "." + std::to_string(n); };
  if (keep == 0) {
    if (::unlink(path_.c_str()) < 0 && errno != ENOENT)
      return fail(Error::from_errno(errno, "remove", path_));
    return {};
  }
  if (::unlink(numbered(keep).c_str()) < 0 && errno != ENOENT)
    return fail(Error::from_errno(errno, "remove", numbered(keep)));
  for (unsigned n = keep; n > 1; --n) {
    if (::rename(numbered(n - 1).c_str(), numbered(n).c_str()) < 0 && errno != ENOENT)
      return fail(Error::from_errno(errno, "rename", numbered(n - 1)));
  }
  if (::rename(path_.c_str(), numbered(1).c_str()) < 0 && errno != ENOENT)
    return fail(Error::from_errno(errno, "rename", path_));
  return {};
}

Result<UniqueFd> open_input(const std::filesystem::path& path,
                            const std::optional<Credentials>& as) {
  return as_user(as, path, [&]() -> Result<UniqueFd> {
    // O_NONBLOCK only for the open: a FIFO would wait there for a writer.
    UniqueFd fd(sys::retry_eintr(
        [&] { return sys::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); }));
    if (!fd) return fail(Error::from_errno(errno, "open standard input", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail(Error::from_errno(errno, "stat", path));
    if (S_ISDIR(st.st_mode)) return fail(Error::from_errno(EISDIR, "open standard input", path));
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0)
      return fail(Error::from_errno(errno, "clear O_NONBLOCK of", path));
    return fd;
  });
}

std::string format_syslog(Level level, std::string_view tag, pid_t pid, std::string_view line,
                          std::time_t when) {
  struct tm tm {};
  ::localtime_r(&when, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
  constexpr int kFacilityDaemon = 3 << 3;
  std::string out = "<" + std::to_string(kFacilityDaemon | static_cast<int>(level)) + ">";
  out += stamp;
  out += ' ';
  out += tag;
  out += '[' + std::to_string(pid) + "]: ";
  out += line;
  return out;
}

Result<SyslogWriter> SyslogWriter::open(std::string tag, std::filesystem::path socket) {
  SyslogWriter w(std::move(tag), std::move(socket));
  if (auto r = w.connect(); !r) return fail(std::move(r).error());
  return w;
}

Result<void> SyslogWriter::connect() {
  UniqueFd fd(sys::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail(Error::from_errno(errno, "socket", socket_));
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  const std::string& p = socket_.native();
  if (p.size() >= sizeof sa.sun_path)
    return fail(Error::because("connect", socket_, "path too long"));
  std::memcpy(sa.sun_path, p.c_str(), p.size() + 1);
  if (sys::retry_eintr([&] {
        return ::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&sa), sizeof sa);
      }) < 0)
    return fail(Error::from_errno(errno, "connect to syslog at", socket_));
  fd_ = std::move(fd);
  return {};
}

Result<void> SyslogWriter::send(Level level, pid_t pid, std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  const std::string msg = format_syslog(level, tag_, pid, line, std::time(nullptr));
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ && ::send(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL) >= 0) return {};
    if (attempt == 0 && (!fd_ || errno == ECONNREFUSED || errno == ENOTCONN || errno == ENOENT)) {
      if (auto r = connect(); !r) return r;
      continue;
    }
    break;
  }
  return fail(Error::from_errno(errno, "send to syslog at", socket_));
}

}  // namespace daemonkit
