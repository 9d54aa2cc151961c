// daemonkit/output.hpp: where a captured output stream goes.
//
// - LineBuffer cuts a byte stream into lines (a partial line waits for its
//   end; one longer than the limit is cut into pieces of at most the limit,
//   each ended by a newline, so every piece is a complete line).
// - OutputFile appends to a file that can be reopened (after logrotate
//   renamed it) and, optionally, rotated by size: PATH becomes PATH.1, older
//   ones shift up, at most `keep` are kept. Rotation never splits a line: it
//   happens before a line that would take a non-empty file past the size, so
//   a line longer than the size fills a file alone. Only regular files are
//   rotated. Given a user's credentials, it does all of that (open, create,
//   reopen, rename, unlink) with that user's power over files and no more;
//   it never follows a symbolic link at PATH, and never waits for a FIFO's
//   reader or for room in it.
// - SyslogWriter sends each line as one RFC 3164 datagram,
//   "<PRI>Mmm dd hh:mm:ss TAG[PID]: line", facility daemon, to /dev/log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/detach.hpp"
#include "daemonkit/fd.hpp"
#include "daemonkit/log.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

class LineBuffer {
 public:
  // `max_line` counts the newline: a piece is at most that long (at least 2).
  explicit LineBuffer(size_t max_line = size_t{64} * 1024)
      : max_line_(max_line < 2 ? 2 : max_line) {}

  // Calls emit(line) for each complete line in `data` (with its newline),
  // keeping a trailing partial line for later. A line longer than the limit
  // goes out in pieces of max_line - 1 bytes and a newline (the last piece
  // is what remains, with the line's own newline), so every emitted piece
  // is a whole line of at most max_line bytes.
  template <class Emit>
  void feed(std::string_view data, Emit&& emit) {
    while (!data.empty()) {
      // Bytes of this line that still fit in one piece, before its newline.
      const size_t room = max_line_ - 1 - partial_.size();
      const size_t nl = data.find('\n');
      const size_t length = nl == std::string_view::npos ? data.size() : nl;
      if (length > room) {  // too long for one piece: cut it here
        partial_.append(data.substr(0, room));
        partial_ += '\n';
        emit(std::string_view(partial_));
        partial_.clear();
        data.remove_prefix(room);
        continue;
      }
      if (nl == std::string_view::npos) {
        partial_.append(data);  // may still end within the limit
        return;
      }
      if (partial_.empty()) {
        emit(data.substr(0, nl + 1));
      } else {
        partial_.append(data.substr(0, nl + 1));
        emit(std::string_view(partial_));
        partial_.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  // Emits a waiting partial line, if any, ended by a newline (the stream
  // ended without one): the next output starts on a line of its own.
  template <class Emit>
  void flush(Emit&& emit) {
    if (partial_.empty()) return;
    partial_ += '\n';
    emit(std::string_view(partial_));
    partial_.clear();
  }
  [[nodiscard]] bool empty() const noexcept { return partial_.empty(); }

 private:
  size_t max_line_;
  std::string partial_;  // never longer than max_line_ - 1
};

class OutputFile {
 public:
  struct Rotation {
    std::uint64_t max_size = 0;  // bytes
    unsigned keep = 5;           // rotated files kept (PATH.1 .. PATH.keep)
  };

  // Opens `path` for appending (creating it 0644 less the umask), as the
  // user `as` when given (see sys/fs_credentials.hpp): the file is then
  // created owned by that user, and whatever that user could not open
  // cannot be opened. The credentials are kept for reopen() and rotate().
  // Errors that name `path`: a symbolic link there ("is a symbolic link,
  // refusing to follow it"), a FIFO with no reader ("is a FIFO with no
  // reader"; never a wait for one), or the errno of the failing call.
  // The descriptor is non-blocking: a full FIFO makes write() fail with
  // EAGAIN rather than wait.
  static Result<OutputFile> open(std::filesystem::path path,
                                 std::optional<Rotation> rotation = std::nullopt,
                                 std::optional<Credentials> as = std::nullopt);

  // Appends `data` (a line, or any chunk when not rotating), rotating first
  // if it would take a non-empty file past the size. A write that fails
  // (a full disk, EPIPE from a FIFO whose reader left, EAGAIN from a full
  // one) is an error; it never waits.
  Result<void> write(std::string_view data);
  // Opens the path anew (keeps the old file on failure).
  Result<void> reopen();
  // Rotates now (regular files only): renames and removals as the user.
  Result<void> rotate();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] bool rotating() const noexcept { return rotation_.has_value(); }

 private:
  OutputFile(std::filesystem::path path, std::optional<Rotation> rotation,
             std::optional<Credentials> as)
      : path_(std::move(path)), rotation_(rotation), as_(std::move(as)) {}
  // These three expect the caller to have taken on as_ already.
  Result<void> open_current();
  Result<void> replace_current();
  Result<void> rotate_names();

  std::filesystem::path path_;
  std::optional<Rotation> rotation_;
  std::optional<Credentials> as_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
  bool regular_ = false;
};

// Opens `path` for reading, as a payload's standard input, as the user `as`
// when given (like OutputFile::open). A FIFO opens at once, without waiting
// for a writer; the descriptor is blocking again afterwards. A directory is
// an error (EISDIR): it opens, but no read of it would work.
Result<UniqueFd> open_input(const std::filesystem::path& path,
                            const std::optional<Credentials>& as = std::nullopt);

class SyslogWriter {
 public:
  // Checks that `socket` accepts datagrams now (a clear error otherwise).
  static Result<SyslogWriter> open(std::string tag, std::filesystem::path socket = "/dev/log");
  // Sends one line (a trailing newline is dropped); reconnects once if the
  // syslog daemon was restarted.
  Result<void> send(Level level, pid_t pid, std::string_view line);

 private:
  SyslogWriter(std::string tag, std::filesystem::path socket)
      : tag_(std::move(tag)), socket_(std::move(socket)) {}
  Result<void> connect();
  std::string tag_;
  std::filesystem::path socket_;
  UniqueFd fd_;
};

// RFC 3164 datagram text for `line` (no newline), at local time `when`.
std::string format_syslog(Level level, std::string_view tag, pid_t pid, std::string_view line,
                          std::time_t when);

}  // namespace daemonkit
