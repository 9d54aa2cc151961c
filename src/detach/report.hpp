// src/detach/report.hpp: what the daemon tells the original process.
//
// A fixed-size, trivially copyable record sent as one SOCK_SEQPACKET
// message, so the child can build it without allocating and the caller
// receives it whole or not at all. decode() treats its input as untrusted.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "daemonkit/error.hpp"

namespace daemonkit::detail {

struct Report {
  static constexpr std::uint32_t kMagic = 0x646b7270;  // "dkrp"
  enum class Kind : std::uint8_t { forked = 1, ready, already_running, failed };

  std::uint32_t magic = kMagic;
  Kind kind = Kind::failed;
  std::uint8_t error_kind = 0;  // ErrorKind, with kind == failed
  std::int32_t code = 0;        // errno, with kind == failed
  std::int32_t pid = 0;         // daemon pid or lock holder
  char op[64] = {};
  char subject[1024] = {};
  char detail[256] = {};
};

// Async-signal-safe builders (they only copy bytes).
Report make_report(Report::Kind kind, pid_t pid) noexcept;
Report make_failure(const char* op, const char* subject, int code, const char* detail = nullptr,
                    ErrorKind kind = ErrorKind::failure) noexcept;
// Sends one report; never raises SIGPIPE. Returns 0 or -1. With
// `passed_fd` >= 0, the descriptor travels along (SCM_RIGHTS).
int send_report(int fd, const Report& report, int passed_fd = -1) noexcept;

// Receives one message into `buf` (which should be one byte larger than a
// Report, so that an oversized message shows); a descriptor sent along is
// stored in *passed (close-on-exec). Returns recvmsg's result.
ssize_t receive_report(int fd, std::span<std::byte> buf, int* passed);

// Validates raw bytes: exact size, magic, known kind, NUL-terminated text.
std::optional<Report> decode_report(std::span<const std::byte> bytes);
// The error a failure report describes.
Error error_from(const Report& report);

}  // namespace daemonkit::detail
