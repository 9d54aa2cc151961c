#include "daemonkit/pidfile.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "support.hpp"

using daemonkit::parse_pid;

TEST(ParsePid, AcceptsDigitsWithOrWithoutNewline) {
  EXPECT_EQ(parse_pid("1234\n", 32768), 1234);
  EXPECT_EQ(parse_pid("1234", 32768), 1234);
  EXPECT_EQ(parse_pid("2\n", 32768), 2);
  EXPECT_EQ(parse_pid("32768\n", 32768), 32768);
}

TEST(ParsePid, RejectsPidsThatWouldTurnKillIntoAMassacre) {
  EXPECT_FALSE(parse_pid("-1\n", 32768));
  EXPECT_FALSE(parse_pid("0\n", 32768));
  EXPECT_FALSE(parse_pid("1\n", 32768));
  EXPECT_FALSE(parse_pid("-1234\n", 32768));
}

TEST(ParsePid, RejectsGarbageSignsSpacesAndOverflow) {
  for (const char* text : {"", "\n", "abc", "12a", "+12", " 12", "12 ", "12\n\n", "1 2", "0x10",
                           "32769", "99999999999", "18446744073709551615", "4294967295", "12\r\n"})
    EXPECT_FALSE(parse_pid(text, 32768)) << "accepted '" << text << "'";
}

TEST(ParsePid, RejectsAMegabyteOfDigits) {
  std::string huge(1 << 20, '9');
  EXPECT_FALSE(parse_pid(huge, 32768));
}

TEST(PidMax, IsWithinTheKernelsBounds) {
  auto m = daemonkit::pid_max();
  EXPECT_GT(m, 1);
  EXPECT_LE(m, 4194304);
}

namespace {

// Locks `path` in a child (type and length as given), writes the child's
// pid into it, and returns the child, which waits on the pipe `hold` for EOF.
pid_t lock_in_child(const std::string& path, short type, off_t length, const int hold[2]) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::close(hold[1]);
  int fd = ::open(path.c_str(), type == F_WRLCK ? O_RDWR : O_RDONLY);
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_len = length;
  if (fd < 0 || ::fcntl(fd, F_SETLK, &fl) < 0) _exit(1);
  char c;
  (void)!::read(hold[0], &c, 1);
  _exit(0);
}

}  // namespace

// The mark that says "a supervisor holds this" is a write lock of a length
// of its own: a read lock of that length (anyone who can read the pidfile
// can take one) is no supervisor.
TEST(PidfileInfo, OnlyAWriteLockOfTheSupervisorsLengthMarksASupervisor) {
  dktest::TempDir dir;
  const std::string path = dir / "x.pid";
  for (short type : {F_WRLCK, F_RDLCK}) {
    for (off_t length : {off_t{0}, off_t{1} << 62}) {
      int hold[2];
      ASSERT_EQ(::pipe(hold), 0);
      dktest::write_file(path, "");
      const pid_t child = lock_in_child(path, type, length, hold);
      ASSERT_GT(child, 0);
      dktest::write_file(path, std::to_string(child) + "\n");
      ASSERT_TRUE(dktest::eventually([&] {
        auto info = daemonkit::inspect_pidfile(path);
        return info && info->lock == daemonkit::PidfileInfo::Lock::locked;
      }));
      auto info = daemonkit::inspect_pidfile(path);
      ASSERT_TRUE(info);
      EXPECT_EQ(info->supervisor, type == F_WRLCK && length == (off_t{1} << 62))
          << "type " << type << " length " << length;
      ::close(hold[1]);
      ::close(hold[0]);
      ::waitpid(child, nullptr, 0);
    }
  }
}

// A daemon writes its pid a moment after it took the lock: a look in that
// moment waits for the write (the kernel reports it) and names the holder.
TEST(PidfileInfo, AHolderThatWritesItsPidAMomentLaterIsNamed) {
  dktest::TempDir dir;
  const std::string path = dir / "x.pid";
  dktest::write_file(path, "");
  int locked[2], go[2];
  ASSERT_EQ(::pipe(locked), 0);
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(locked[0]);
    ::close(go[1]);
    int fd = ::open(path.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || ::fcntl(fd, F_SETLK, &fl) < 0) _exit(1);
    (void)!::write(locked[1], "x", 1);
    char c;
    (void)!::read(go[0], &c, 1);  // written when the parent looks
    const std::string pid = std::to_string(::getpid()) + "\n";
    (void)!::pwrite(fd, pid.data(), pid.size(), 0);
    (void)!::read(go[0], &c, 1);  // EOF: the parent is done
    _exit(0);
  }
  ::close(locked[1]);
  ::close(go[0]);
  char c;
  ASSERT_EQ(::read(locked[0], &c, 1), 1);
  // Named only after the look began (or, on a slow machine, before: the
  // answer is the same).
  std::thread writer([&] { (void)!::write(go[1], "x", 1); });
  auto info = daemonkit::inspect_pidfile(path);
  writer.join();
  ASSERT_TRUE(info);
  EXPECT_EQ(info->lock, daemonkit::PidfileInfo::Lock::locked);
  EXPECT_EQ(info->holder, child);
  EXPECT_EQ(info->recorded, std::optional<pid_t>(child));
  // A start in that moment finds it taken by that pid.
  auto taken = daemonkit::LockedPidfile::acquire(path);
  ASSERT_TRUE(taken);
  ASSERT_TRUE(std::holds_alternative<daemonkit::LockedPidfile::Taken>(*taken));
  EXPECT_EQ(std::get<daemonkit::LockedPidfile::Taken>(*taken).holder, child);
  ::close(go[1]);
  ::close(locked[0]);
  ::waitpid(child, nullptr, 0);
}

// A lock holder that the file never names (anyone who can read a pidfile
// can take a read lock) is reported as it is, after a bounded wait.
TEST(PidfileInfo, AHolderTheFileNeverNamesIsReportedAsItIs) {
  dktest::TempDir dir;
  const std::string path = dir / "x.pid";
  dktest::write_file(path, std::to_string(::getpid()) + "\n");
  int hold[2];
  ASSERT_EQ(::pipe(hold), 0);
  const pid_t child = lock_in_child(path, F_RDLCK, 0, hold);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(dktest::eventually([&] { return dktest::lock_holder(path) == child; }));
  auto info = daemonkit::inspect_pidfile(path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->lock, daemonkit::PidfileInfo::Lock::locked);
  EXPECT_EQ(info->holder, child);
  EXPECT_EQ(info->recorded, std::optional<pid_t>(::getpid()));
  ::close(hold[1]);
  ::close(hold[0]);
  ::waitpid(child, nullptr, 0);
}
