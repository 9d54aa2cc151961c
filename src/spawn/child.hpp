// src/spawn/child.hpp: what the payload's child does between fork and exec.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace daemonkit::detail {

struct SpawnLimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

// Prepared before fork; the child only reads it.
struct SpawnPlan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int stdio[3] = {-1, -1, -1};  // sources for 0, 1, 2 (each >= 3, or -1)
  const char* chroot = nullptr;
  const char* working_directory = nullptr;
  bool set_umask = false;
  mode_t umask = 022;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  bool set_nice = false;
  int nice = 0;
  const SpawnLimit* limits = nullptr;
  size_t limit_count = 0;
  const char* oom_score_adj = nullptr;  // decimal text, written to /proc/self/oom_score_adj
  bool no_new_privs = false;
  bool new_process_group = true;
  int parent_death_signal = 0;
  pid_t parent = 0;  // the parent's pid, to detect that it already died
  bool take_terminal = false;
  int status_fd = -1;        // close-on-exec; receives a SpawnFailure if a step fails
  int cgroup_procs = -1;     // a cgroup's cgroup.procs, open for writing: join it first
  char* pid_slot = nullptr;  // room for 11 bytes inside an envp entry, or nullptr
};

// Sent by the child when a step fails; the pipe closes without data when
// execve succeeds.
struct SpawnFailure {
  std::uint32_t step = 0;   // a SpawnStep
  std::int32_t code = 0;    // errno
  std::uint32_t index = 0;  // which limit, for kStepLimit
};

enum SpawnStep : std::uint32_t {
  kStepParentDied,
  kStepCgroup,
  kStepProcessGroup,
  kStepTerminal,
  kStepOomScore,
  kStepLimit,
  kStepNice,
  kStepChroot,
  kStepChdir,
  kStepGroups,
  kStepSetgid,
  kStepSetuid,
  kStepNoNewPrivs,
  kStepStdio,
  kStepExec,
  kStepCount
};

// Never returns.
[[noreturn]] void run_spawn_child(const SpawnPlan& plan) noexcept;

}  // namespace daemonkit::detail
