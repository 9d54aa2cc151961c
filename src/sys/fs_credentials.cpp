#include "sys/fs_credentials.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace daemonkit::sys {

namespace {

// The capabilities that let their holder past file permissions and
// ownership: the kernel's CAP_FS_MASK.
constexpr std::uint64_t bit(int cap) {
  return std::uint64_t{1} << cap;
}
constexpr std::uint64_t kFsCaps = bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) |
                                  bit(CAP_DAC_READ_SEARCH) | bit(CAP_FOWNER) | bit(CAP_FSETID) |
                                  bit(CAP_LINUX_IMMUTABLE) | bit(CAP_MKNOD) | bit(CAP_MAC_OVERRIDE);

struct Caps {
  __user_cap_data_struct data[2]{};
};

int get_caps(Caps& caps) noexcept {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(::syscall(SYS_capget, &header, caps.data));
}

int set_caps(const Caps& caps) noexcept {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(::syscall(SYS_capset, &header, caps.data));
}

std::uint64_t effective(const Caps& caps) noexcept {
  return caps.data[0].effective | (std::uint64_t{caps.data[1].effective} << 32);
}

void set_effective(Caps& caps, std::uint64_t set) noexcept {
  caps.data[0].effective = static_cast<std::uint32_t>(set);
  caps.data[1].effective = static_cast<std::uint32_t>(set >> 32);
}

// setfsuid/setfsgid answer the previous id whatever happens; an invalid id
// (-1) changes nothing, so it reads the current one.
uid_t current_fsuid() noexcept {
  return static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));
}
gid_t current_fsgid() noexcept {
  return static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
}

// The supplementary groups, sorted (the kernel keeps them sorted, but does
// not promise it), or false.
bool current_groups(std::vector<gid_t>& out) {
  int n = ::getgroups(0, nullptr);
  if (n < 0) return false;
  out.resize(static_cast<size_t>(n));
  n = ::getgroups(n, out.data());
  if (n < 0) return false;
  out.resize(static_cast<size_t>(n));
  std::sort(out.begin(), out.end());
  return true;
}

}  // namespace

int FsCredentials::assume(uid_t uid, gid_t gid, const gid_t* groups, size_t count) {
  if (active_) restore();
  Caps caps;
  if (get_caps(caps) < 0 || !current_groups(saved_groups_)) return -1;
  saved_fsuid_ = current_fsuid();
  saved_fsgid_ = current_fsgid();
  saved_effective_[0] = caps.data[0].effective;
  saved_effective_[1] = caps.data[1].effective;
  active_ = true;  // from here on, restore() undoes whatever took effect

  auto give_up = [this](int e) {
    restore();
    errno = e;
    return -1;
  };
  // Groups first, then the group id, then the user id: the last step is
  // the one that takes away the capabilities.
  if (::setgroups(count, groups) < 0) return give_up(errno);
  std::vector<gid_t> want(groups, groups + count);
  std::sort(want.begin(), want.end());
  std::vector<gid_t> now;
  if (!current_groups(now) || now != want) return give_up(EPERM);
  ::setfsgid(gid);
  if (current_fsgid() != gid) return give_up(EPERM);
  ::setfsuid(uid);
  if (current_fsuid() != uid) return give_up(EPERM);
  // The kernel's fixup has cleared these already, unless
  // SECBIT_NO_SETUID_FIXUP is set; never rely on it.
  if (get_caps(caps) < 0) return give_up(errno);
  set_effective(caps, effective(caps) & ~kFsCaps);
  if (set_caps(caps) < 0) return give_up(errno);
  if (get_caps(caps) < 0) return give_up(errno);
  if ((effective(caps) & kFsCaps) != 0) return give_up(EPERM);
  return 0;
}

void FsCredentials::restore() noexcept {
  if (!active_) return;
  active_ = false;
  // The user id first: going back to 0 gives the capabilities back (the
  // kernel raises them again, or capset below does).
  ::setfsuid(saved_fsuid_);
  Caps caps;
  bool ok = current_fsuid() == saved_fsuid_ && get_caps(caps) == 0;
  if (ok) {
    caps.data[0].effective = saved_effective_[0];
    caps.data[1].effective = saved_effective_[1];
    ok = set_caps(caps) == 0 && get_caps(caps) == 0 &&
         caps.data[0].effective == saved_effective_[0] &&
         caps.data[1].effective == saved_effective_[1];
  }
  ::setfsgid(saved_fsgid_);
  ok = ok && current_fsgid() == saved_fsgid_;
  ok = ok && ::setgroups(saved_groups_.size(), saved_groups_.data()) == 0;
  try {
    std::vector<gid_t> now;
    ok = ok && current_groups(now) && now == saved_groups_;
  } catch (...) {
    ok = false;
  }
  if (!ok) std::abort();
}

}  // namespace daemonkit::sys
