#include "sys/fs_credentials.hpp"

#include <fcntl.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "support.hpp"

using daemonkit::sys::FsCredentials;

namespace {

constexpr std::uint64_t kDacOverride = std::uint64_t{1} << 1;  // CAP_DAC_OVERRIDE

std::uint64_t effective_capabilities() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("CapEff:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
  return 0;
}

class AsNobody : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
    pw_ = ::getpwnam("nobody");
    if (pw_ == nullptr) GTEST_SKIP() << "no user 'nobody'";
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    dktest::write_file(secret_, "root only\n");
    ASSERT_EQ(::chmod(secret_.c_str(), 0600), 0);
  }
  // What nobody cannot do (and root can): open a root-only file.
  bool can_open_secret() const {
    int fd = ::open(secret_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  }
  dktest::TempDir dir_;
  std::string secret_ = dir_ / "secret";
  struct passwd* pw_ = nullptr;
};

TEST_F(AsNobody, FileOperationsAreCheckedAsTheUserUntilRestored) {
  const gid_t groups[] = {pw_->pw_gid};
  {
    FsCredentials as;
    ASSERT_EQ(as.assume(pw_->pw_uid, pw_->pw_gid, groups, 1), 0) << std::strerror(errno);
    EXPECT_EQ(static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))), pw_->pw_uid);
    EXPECT_EQ(effective_capabilities() & kDacOverride, 0U);
    EXPECT_FALSE(can_open_secret());
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(::getuid(), 0U) << "only the file-system ids change";
    EXPECT_EQ(::geteuid(), 0U);
  }
  EXPECT_EQ(::setfsuid(static_cast<uid_t>(-1)), 0);
  EXPECT_NE(effective_capabilities() & kDacOverride, 0U);
  EXPECT_TRUE(can_open_secret());
  EXPECT_EQ(::getgroups(0, nullptr), 0) << "root's groups back";
}

// SECBIT_NO_SETUID_FIXUP turns off the kernel's clearing of the file
// capabilities on setfsuid(): the guard must clear them itself.
TEST_F(AsNobody, CapabilitiesAreDroppedEvenWithoutTheKernelsFixup) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) < 0) _exit(10);
    FsCredentials as;
    if (as.assume(pw_->pw_uid, pw_->pw_gid, nullptr, 0) < 0) _exit(11);
    if ((effective_capabilities() & kDacOverride) != 0) _exit(12);
    if (can_open_secret()) _exit(13);
    as.restore();
    if (!can_open_secret()) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 securebits, 11 assume, 12 capability kept, "
                                       "13 secret opened, 14 not restored";
}

}  // namespace
