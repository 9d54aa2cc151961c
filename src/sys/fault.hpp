// src/sys/fault.hpp: the fault-injection seam of the sys layer.
//
// Only in a build configured with DAEMONKIT_FAULT_INJECTION=ON (the dev, asan
// and nopidfd presets; never the release preset, never by default). There the
// wrappers in sys.hpp ask `injected()` before each call, and it answers from
// the plan in the environment variable DAEMONKIT_FAULTS, read once when the
// program is loaded:
//
//   DAEMONKIT_FAULTS=RULE[,RULE...]
//   RULE = CALL[:MATCH]=ERRNO[@NTH][%EVERY][*COUNT]
//
// CALL is open, write, pwrite, ftruncate, fork, socket or socketpair. MATCH,
// if given, is a substring of the path the call is about (for write, pwrite
// and ftruncate: the path of the descriptor, from /proc/self/fd). ERRNO is a
// name such as EINTR, EACCES, EMFILE, ENOSPC, EAGAIN, or a number. Counting
// the calls that match from 1, call NTH (default 1) fails with ERRNO instead
// of being made, and so does every EVERY-th call after it (default 1: each
// one), COUNT failures in all (default: no limit). Calls are counted per
// process; a forked child goes on from its parent's count. An unreadable
// plan ends the program at once with exit status 2 and a message.
//
// Examples: "open:/app.pid=EINTR%2" (every open of app.pid is interrupted
// once: calls 1, 3, 5, ...), "write:/out.log=ENOSPC*1" (the first write to
// out.log finds the disk full), "fork=EAGAIN@3" (the third fork along a
// line of processes fails, and every later one).
//
// Async-signal-safe: the plan is parsed before main, then only read.
#pragma once

namespace daemonkit::sys::fault {

enum class Call : unsigned char { open, write, pwrite, ftruncate, fork, socket, socketpair };

#ifdef DAEMONKIT_FAULT_INJECTION
// The errno with which this call must fail, or 0 to make it. `path` may be
// nullptr; `fd` is used to find the path when it is not given (-1: none).
int injected(Call call, const char* path, int fd) noexcept;
#else
constexpr int injected(Call /*call*/, const char* /*path*/, int /*fd*/) noexcept {
  return 0;
}
#endif

}  // namespace daemonkit::sys::fault
