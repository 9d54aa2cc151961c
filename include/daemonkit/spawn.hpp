// daemonkit/spawn.hpp: starting a payload program, honestly.
//
// spawn() forks, applies the requested process attributes in the child and
// executes the program. It returns only once execve() succeeded (learned over
// a close-on-exec pipe that the kernel closes on a successful exec), so a
// missing program, a failing chdir or setuid is an error naming the step, the
// path and errno, never a child that silently dies.
//
// The child starts with default signal dispositions, an empty signal mask,
// only descriptors 0, 1 and 2, and (by default) its own process group and
// SIGKILL as its parent-death signal, so it cannot outlive a supervisor that
// is killed. The code between fork and exec is async-signal-safe
// (src/spawn/child.cpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/fd.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

struct SpawnOptions {
  std::filesystem::path program;  // executed as is (resolve it first, see find_program)
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // the whole environment, NAME=VALUE
  // Descriptors that become the child's 0, 1, 2; -1 keeps ours.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::filesystem::path chroot;             // empty: none (needs root)
  std::filesystem::path working_directory;  // empty: unchanged; inside chroot if set
  std::optional<mode_t> umask;
  std::optional<Credentials> credentials;
  std::optional<int> nice;  // absolute niceness
  std::vector<ResourceLimit> limits;
  std::optional<int> oom_score_adj;  // -1000..1000
  bool no_new_privs = false;
  bool new_process_group = true;      // the child leads a process group of its own
  int parent_death_signal = SIGKILL;  // 0: none
  // Make the child's group the foreground group of the terminal on its
  // standard input, if that is a terminal (for `run` on a terminal).
  bool take_terminal = false;
  // If set, NAME=<the child's own pid> is added to the environment (what
  // systemd does for WATCHDOG_PID), filled in by the child itself.
  std::string pid_variable;
  // A cgroup for the child (-1: none), its directory and its cgroup.procs
  // open for writing: the child is born there (Linux 5.7), or else moves
  // itself there first; either way everything it ever forks is there too.
  int cgroup_dir = -1;
  int cgroup_procs = -1;
};

struct Child {
  pid_t pid = 0;
  Pidfd handle;  // never reused: signal and wait through it
};

// Starts the program; see the file comment. Errors from exec (ENOENT,
// EACCES, ENOEXEC) have ErrorKind::not_installed.
Result<Child> spawn(const SpawnOptions& options);

// Sends `signo` to the child's process group (it must lead one). Safe as
// long as the child is not reaped: its pid, which is the group's id, cannot
// be reused before. Returns false when the group no longer exists.
Result<bool> signal_group(const Child& child, int signo);

// Reaps the child if it has exited and returns its wait status; nullopt
// while it runs.
Result<std::optional<int>> try_reap(const Child& child);

// Reaps exited children other than `keep` (orphans reparented to a
// subreaper or to pid 1), stopping when `keep` is the next exited child:
// reap it first (try_reap), then call again. Never blocks; returns how many
// were reaped.
int reap_others(pid_t keep);

// The children of `pid` (all its threads'), from /proc.
std::vector<pid_t> child_processes(pid_t pid);

// A process found below another one, held by a pidfd.
struct Descendant {
  Pidfd process;
  pid_t pgid = 0;
  std::string name;  // /proc/PID/comm
};

// Freezes the process tree below `root`: every live descendant (zombies
// are dead already; `except` is skipped too) gets SIGSTOP, parents before
// their children, so none can fork meanwhile, until a walk finds nothing
// new. Each is held by a pidfd opened before it was confirmed to be the
// child of its parent, so a pid reused meanwhile is never touched. Returns
// them, to name and then SIGKILL. `root` itself is not stopped: stop it
// first (and it must not be reaping others meanwhile) when it is not the
// caller, or orphans that reach it during the walk are found by the next
// round.
std::vector<Descendant> stop_descendants(pid_t root, pid_t except = 0);

// Every live process whose process group is `pgid` and that started no
// earlier than `since_ticks` (clock ticks after boot, as in /proc/PID/stat),
// each held by a pidfd opened before its group was confirmed. A group id
// cannot be handed out again while a member lives, so these are that
// group's members even after its leader is gone.
std::vector<Descendant> group_members(pid_t pgid, unsigned long long since_ticks = 0);

// If standard input is a terminal, makes our process group its foreground
// group again (after a payload that had it ended).
void reclaim_terminal();

// Makes this process a child subreaper: orphans among its descendants
// become its children (so it can reap and account for them).
Result<void> become_child_subreaper();

// After the child's group was sent SIGKILL: reaps members that became our
// children (see become_child_subreaper) until no process of group `pgid` is
// left, or `timeout` passes. Returns whether the group is gone.
bool wait_for_group_gone(pid_t pgid, std::chrono::milliseconds timeout);

// "exited with 3", "killed by SIGSEGV" (with " (core dumped)").
std::string describe_exit(int wait_status);
// The shell's convention: the exit status, or 128 + the signal number.
int exit_code_of(int wait_status);

// Resolves PROGRAM like a shell does: a name containing '/' is taken as is
// (relative to the current directory), anything else is searched in `path`
// (a $PATH-style list). The result must be an executable regular file;
// otherwise the error has ErrorKind::not_installed and names the program.
// With `root` set, paths are looked up inside that directory and the result
// is the path inside it.
Result<std::filesystem::path> find_program(const std::string& program, std::string_view path,
                                           const std::filesystem::path& root = {});

}  // namespace daemonkit
