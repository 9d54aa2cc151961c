// What the benchmark reads about processes and pidfiles, straight from the
// kernel: /proc, the pidfile's lock, pidfds. Nothing here trusts a tool's
// own word about its daemon.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bench {

// Monotonic time in nanoseconds.
std::int64_t now_ns();

// The number in a pidfile, when it holds one (> 1).
std::optional<pid_t> read_pid(const std::string& path);

// The pid holding a POSIX write lock on `path`, when one does.
std::optional<pid_t> lock_holder(const std::string& path);

// The process is alive (exists and is not a zombie).
bool alive(pid_t pid);

// /proc/PID/exe, or "" when it cannot be read.
std::string exe_of(pid_t pid);

// The parent of `pid`, from /proc/PID/stat.
std::optional<pid_t> parent_of(pid_t pid);

// The direct children of `pid`, from /proc/PID/task/*/children.
std::vector<pid_t> children_of(pid_t pid);

// `pid` and all its descendants, parents before children.
std::vector<pid_t> tree_of(pid_t pid);

struct Memory {
  long pss_kib = 0;
  long rss_kib = 0;
  long uss_kib = 0;  // private pages: what the process alone costs
};
// Pss, Rss and Private_Clean + Private_Dirty from /proc/PID/smaps_rollup.
std::optional<Memory> memory_of(pid_t pid);

// Voluntary plus involuntary context switches of all its threads, from
// /proc/PID/task/*/status; nullopt when the process is gone.
std::optional<long> context_switches(pid_t pid);

}  // namespace bench
