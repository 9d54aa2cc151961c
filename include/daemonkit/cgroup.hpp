// daemonkit/cgroup.hpp: a cgroup (v2) of a payload's own, so that nothing it
// starts can escape, even its supervisor's death.
//
// A process can leave its process group and its session, and once its
// supervisor is gone it can leave the process tree too (it is given to
// init). It cannot leave its cgroup: only a writer of the cgroup.procs files
// above it (root) can move it. So when the machine has a cgroup v2 hierarchy
// we may write to, the payload gets a cgroup of its own, created below ours;
// everything it forks is born there, and `cgroup.kill` ends all of it at
// once. Without one (no v2 hierarchy, a read-only one in a container, no
// permission) the callers fall back to the process tree; see spawn.hpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/fd.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

class Cgroup {
 public:
  // Creates a new cgroup named PREFIX-<random 64 bits> below this
  // process's own cgroup in the v2 hierarchy (never an existing one: pids
  // repeat across pid namespaces). nullopt (not an error) when there is no
  // such hierarchy, or it may not be written: the caller then does without.
  static std::optional<Cgroup> create(const std::string& prefix);
  // An existing cgroup at `path` (another supervisor's, from its record);
  // nullopt when it is not a cgroup (any more).
  static std::optional<Cgroup> open(const std::string& path);

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // The cgroup's directory, open: what a child is born into (clone3's
  // CLONE_INTO_CGROUP).
  [[nodiscard]] int dir_fd() const noexcept { return dir_.get(); }
  // cgroup.procs, open for writing: what a child writes "0" to, to join
  // (kernels before 5.7).
  [[nodiscard]] int procs_fd() const noexcept { return procs_.get(); }

  // The processes in it now.
  [[nodiscard]] std::vector<pid_t> members() const;
  [[nodiscard]] bool populated() const;
  // SIGKILLs every process in it (cgroup.kill; before Linux 5.14, each
  // member in turn, until none is left).
  Result<void> kill_all();
  // Whether cgroup.kill was used on it: the kernel (6.18 here) then kills
  // a child born into it with CLONE_INTO_CGROUP as if the kill were still
  // going on, so such a cgroup is not born into again (make a new one).
  [[nodiscard]] bool was_killed() const noexcept { return killed_; }
  // Waits until no process is left in it (woken by the kernel's
  // cgroup.events notification, no polling), or `timeout` passes; returns
  // whether it is empty.
  bool wait_until_empty(std::chrono::milliseconds timeout) const;
  // Removes the (empty) cgroup and any left below it; the object is not
  // usable afterwards.
  Result<void> remove();

 private:
  Cgroup(std::string path, UniqueFd dir, UniqueFd procs)
      : path_(std::move(path)), dir_(std::move(dir)), procs_(std::move(procs)) {}
  std::string path_;
  UniqueFd dir_;
  UniqueFd procs_;
  bool killed_ = false;
};

}  // namespace daemonkit
