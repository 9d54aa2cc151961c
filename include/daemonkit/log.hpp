// daemonkit/log.hpp: one small logging API over three sinks.
//
// - StderrSink: lines on standard error; with "<N>" syslog-priority prefixes
//   when standard error is connected to journald ($JOURNAL_STREAM names it),
//   so the journal records each line's priority.
// - SyslogSink: syslog(3), facility daemon.
// - FileSink: appends to a file; reopen() opens the path again, so after
//   logrotate renamed the file the next lines go to a new one (call it on
//   SIGHUP).
// Each message is one line written with one write(2), so lines from several
// processes appending to one file never interleave. Messages are written as
// given, without timestamps; the caller decides what a line holds.
// Logging never throws and never fails the caller: a sink that cannot write
// drops the line.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "daemonkit/fd.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// Syslog priorities (same numbers as <syslog.h>).
enum class Level { emerg = 0, alert, crit, err, warning, notice, info, debug };

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(Level level, std::string_view line) = 0;
  // Reopens whatever the sink writes to; a no-op for most sinks.
  virtual Result<void> reopen() { return {}; }
};

class StderrSink final : public Sink {
 public:
  // Detects journald from $JOURNAL_STREAM ("DEV:INODE" of our stderr).
  StderrSink();
  explicit StderrSink(bool priority_prefixes) : prefixes_(priority_prefixes) {}
  void write(Level level, std::string_view line) override;
  [[nodiscard]] bool priority_prefixes() const noexcept { return prefixes_; }

 private:
  bool prefixes_ = false;
};

class SyslogSink final : public Sink {
 public:
  explicit SyslogSink(std::string ident);
  ~SyslogSink() override;
  SyslogSink(const SyslogSink&) = delete;
  SyslogSink& operator=(const SyslogSink&) = delete;
  void write(Level level, std::string_view line) override;

 private:
  std::string ident_;  // openlog keeps the pointer
};

class FileSink final : public Sink {
 public:
  // Opens (creating, mode 0644 less the umask) `path` for appending. A line
  // that cannot be written is counted, and the next write that works first
  // says "N log lines lost: write 'PATH': CAUSE".
  static Result<std::unique_ptr<FileSink>> open(std::filesystem::path path);
  void write(Level level, std::string_view line) override;
  // Opens the path anew and switches to it; on failure keeps the old file.
  Result<void> reopen() override;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  FileSink(std::filesystem::path path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
  std::uint64_t lost_lines_ = 0;  // not written since the last line that was
  int lost_errno_ = 0;
};

namespace detail {
inline void append(std::string& out, std::string_view s) {
  out += s;
}
inline void append(std::string& out, const char* s) {
  out += s;
}
inline void append(std::string& out, const std::string& s) {
  out += s;
}
inline void append(std::string& out, char c) {
  out += c;
}
inline void append(std::string& out, const std::filesystem::path& p) {
  out += p.native();
}
template <class T>
requires(std::is_arithmetic_v<T> && !std::same_as<T, char> &&
         !std::same_as<T, bool>) void append(std::string& out, T value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec == std::errc()) out.append(buf, end);
}
}  // namespace detail

class Logger {
 public:
  // Starts with a StderrSink.
  Logger();
  explicit Logger(std::unique_ptr<Sink> sink) : sink_(std::move(sink)) {}

  void set_sink(std::unique_ptr<Sink> sink) { sink_ = std::move(sink); }
  [[nodiscard]] Sink& sink() noexcept { return *sink_; }
  // Messages above `level` are dropped (default: info).
  void set_level(Level level) noexcept { level_ = level; }
  Result<void> reopen() { return sink_->reopen(); }

  void write(Level level, std::string_view line) {
    if (level <= level_) sink_->write(level, line);
  }
  // Concatenates strings and numbers: log.info("started with pid ", pid).
  template <class... Args>
  void log(Level level, const Args&... args) {
    if (level > level_) return;
    std::string line;
    (detail::append(line, args), ...);
    sink_->write(level, line);
  }
  template <class... Args>
  void error(const Args&... args) {
    log(Level::err, args...);
  }
  template <class... Args>
  void warning(const Args&... args) {
    log(Level::warning, args...);
  }
  template <class... Args>
  void notice(const Args&... args) {
    log(Level::notice, args...);
  }
  template <class... Args>
  void info(const Args&... args) {
    log(Level::info, args...);
  }
  template <class... Args>
  void debug(const Args&... args) {
    log(Level::debug, args...);
  }

 private:
  std::unique_ptr<Sink> sink_;
  Level level_ = Level::info;
};

}  // namespace daemonkit
