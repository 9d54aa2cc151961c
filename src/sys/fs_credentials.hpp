// src/sys/fs_credentials.hpp: acting on files as another user, for a while.
//
// The root supervisor creates, opens, rotates and reads its payload's output
// files in directories that may belong to the payload's user. Whoever owns
// such a directory can put a symbolic link, a hard link or a FIFO where root
// will look. Rather than check each kind of trap (and lose the race between
// a check and its use), the supervisor does those file operations with the
// user's own file-system credentials: the kernel then allows exactly what
// the user could do, and nothing that would take root's power.
//
// Why not a helper process that drops privileges for good and passes the
// descriptor back? It would be the choice for a threaded caller; for a
// single-threaded one, which the supervisor and the status command are, a
// fork for every reopen and rotation buys nothing this guard does not give.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace daemonkit::sys {

// While a switch is in effect, the calling thread's file-system credentials
// are another user's: fsuid, fsgid and supplementary groups, and none of the
// capabilities that override file permissions or ownership
// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, CAP_FSETID,
// CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_MAC_OVERRIDE) in the effective set.
// Every path lookup, open, creation, rename and unlink is then checked as
// for that user, and files are created owned by that user. The real,
// effective and saved ids stay, so no other process gains any power over
// this one, and the way back is always open to root.
//
// setfsuid() away from 0 clears those capabilities by itself, unless
// SECBIT_NO_SETUID_FIXUP is set: so they are cleared explicitly too, and
// every step is read back before the switch counts as done.
//
// A side effect of the kernel's: any change of the fsuid marks the process
// not dumpable (no core dump; /proc/PID owned by root) and clears its own
// parent-death signal, for good. Harmless for a root supervisor, which has
// neither; a caller that relies on either must not use this guard.
//
// Not async-signal-safe (it allocates). Supplementary groups belong to the
// whole process (glibc sets them in every thread): single-threaded callers
// only.
class FsCredentials {
 public:
  FsCredentials() = default;
  ~FsCredentials() { restore(); }
  FsCredentials(const FsCredentials&) = delete;
  FsCredentials& operator=(const FsCredentials&) = delete;

  // Takes on `uid`, `gid` and `groups[0..count)`. Returns 0, or -1 with
  // errno (EPERM when a step did not take effect); on failure nothing stays
  // changed. Needs CAP_SETUID and CAP_SETGID (root).
  int assume(uid_t uid, gid_t gid, const gid_t* groups, size_t count);
  // Goes back to the credentials that assume() replaced; nothing when no
  // switch is in effect. Aborts the process if they cannot be restored:
  // going on with another user's credentials would make every later file
  // operation fail or succeed in ways no one could see.
  void restore() noexcept;
  [[nodiscard]] bool active() const noexcept { return active_; }

 private:
  bool active_ = false;
  uid_t saved_fsuid_ = 0;
  gid_t saved_fsgid_ = 0;
  std::vector<gid_t> saved_groups_;
  std::uint32_t saved_effective_[2] = {0, 0};  // capability sets, 64 bits
};

}  // namespace daemonkit::sys
