#include "daemonkit/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sys/sys.hpp"

namespace daemonkit {

namespace {

// Writes `line` plus a newline with one write(2): appends stay whole.
// False (errno set) when it could not be written.
bool write_line(int fd, std::string_view prefix, std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::string buf;
  buf.reserve(prefix.size() + line.size() + 1);
  buf += prefix;
  buf += line;
  buf += '\n';
  return sys::write_all(fd, buf.data(), buf.size()) >= 0;
}

}  // namespace

StderrSink::StderrSink() {
  // systemd sets JOURNAL_STREAM=DEV:INO for the stream it gave us; if our
  // stderr is still that stream, the journal understands "<N>" prefixes.
  const char* js = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (js == nullptr || ::fstat(2, &st) < 0) return;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == st.st_dev && ino == st.st_ino)
    prefixes_ = true;
}

void StderrSink::write(Level level, std::string_view line) {
  char prefix[8] = "";
  size_t n = 0;
  if (prefixes_) {
    prefix[n++] = '<';
    prefix[n++] = static_cast<char>('0' + static_cast<int>(level));
    prefix[n++] = '>';
  }
  write_line(2, std::string_view(prefix, n), line);
}

SyslogSink::SyslogSink(std::string ident) : ident_(std::move(ident)) {
  ::openlog(ident_.c_str(), LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

SyslogSink::~SyslogSink() {
  ::closelog();
}

void SyslogSink::write(Level level, std::string_view line) {
  ::syslog(LOG_DAEMON | static_cast<int>(level), "%.*s", static_cast<int>(line.size()),
           line.data());
}

Result<std::unique_ptr<FileSink>> FileSink::open(std::filesystem::path path) {
  int fd = sys::retry_eintr([&] {
    return sys::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  });
  if (fd < 0) return fail(Error::from_errno(errno, "open log file", path));
  return std::unique_ptr<FileSink>(new FileSink(std::move(path), UniqueFd(fd)));
}

void FileSink::write(Level /*level*/, std::string_view line) {
  // Lines that could not be written (a full disk) leave a trace in the
  // place of the gap once writing works again.
  if (lost_lines_ > 0) {
    const std::string notice = std::to_string(lost_lines_) + " log line" +
                               (lost_lines_ == 1 ? "" : "s") + " lost: write '" + path_.string() +
                               "': " + std::strerror(lost_errno_);
    if (!write_line(fd_.get(), "", notice)) {
      ++lost_lines_;
      lost_errno_ = errno;
      return;
    }
    lost_lines_ = 0;
  }
  if (!write_line(fd_.get(), "", line)) {
    ++lost_lines_;
    lost_errno_ = errno;
  }
}

Result<void> FileSink::reopen() {
  auto fresh = open(path_);
  if (!fresh) return fail(std::move(fresh).error());
  fd_ = std::move((*fresh)->fd_);
  return {};
}

Logger::Logger() : sink_(std::make_unique<StderrSink>()) {}

}  // namespace daemonkit
