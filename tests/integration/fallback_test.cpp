// The kernel-without-pidfds path. The `nopidfd` preset builds the library with
// the sys layer's seam answering ENOSYS and runs the whole integration suite;
// these tests check that the seam is what that build really uses, and the
// lock-release wait that replaces poll() on a pidfd there.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "daemonkit/fd.hpp"
#include "daemonkit/pidfile.hpp"
#include "support.hpp"

using namespace dktest;

TEST(Fallback, ProcessHandlesAreWhatTheBuildPromises) {
  auto handle = daemonkit::Pidfd::open(::getpid());
  ASSERT_TRUE(handle) << handle.error().message();
#ifdef DAEMONKIT_SIMULATE_NO_PIDFD
  EXPECT_EQ(handle->fd(), -1) << "the nopidfd build must not use pidfds";
#else
  EXPECT_GE(handle->fd(), 0);
#endif
  EXPECT_FALSE(handle->has_exited());
}

TEST(Fallback, HasExitedSeesAChildsExitWithoutReapingIt) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    _exit(0);
  }
  ProcessGuard guard(child);
  auto handle = daemonkit::Pidfd::open(child);
  ASSERT_TRUE(handle);
  EXPECT_FALSE(handle->has_exited());
  ASSERT_TRUE(*handle->send_signal(SIGTERM));
  auto gone = handle->wait_for_exit(5000ms);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone);
}

TEST(Fallback, WaitForLockReleaseWakesWhenTheHolderExitsAndTimesOutOtherwise) {
  TempDir dir;
  const std::string path = dir / "held";
  write_file(path, "x\n");
  int locked[2], go[2];  // holder -> test, test -> holder
  ASSERT_EQ(::pipe(locked), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    int fd = ::open(path.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    ::fcntl(fd, F_SETLK, &fl);
    (void)!::write(locked[1], "l", 1);
    char c;
    (void)!::read(go[0], &c, 1);  // until told to go
    _exit(0);
  }
  ProcessGuard guard(holder);
  char c;
  ASSERT_EQ(::read(locked[0], &c, 1), 1);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto early = daemonkit::wait_for_lock_release(fd, 200ms);
  ASSERT_TRUE(early);
  EXPECT_FALSE(*early) << "the holder still runs";
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  auto released = daemonkit::wait_for_lock_release(fd, 5000ms);
  ASSERT_TRUE(released);
  EXPECT_TRUE(*released);
  ::close(fd);
  for (int fd2 : {locked[0], locked[1], go[0], go[1]}) ::close(fd2);
}
