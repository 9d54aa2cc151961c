// Hostile conditions: no descriptors to spare, a full filesystem, a storm of
// signals while the daemon starts. Each must end in a clear error or a
// consistent daemon, and never in something left behind.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "support.hpp"

using namespace dktest;

namespace {

size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(Faults, TooFewDescriptorsGiveOneClearLineAndLeaveNothing) {
  if (::access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "prlimit(1) not installed";
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own and fails first";
#endif
  // How many descriptors are free depends on what the test runner passes
  // down; walk the limit up from where the dynamic loader itself fails.
  TempDir dir;
  int clear_errors = 0;
  for (int limit = 3; limit <= 12; ++limit) {
    SCOPED_TRACE(limit);
    auto r = run({"/usr/bin/prlimit", "--nofile=" + std::to_string(limit), heartbeat_path(),
                  "start", "--pidfile", dir / "hb.pid", "--log", dir / "hb.log"});
    if (r.exit_code == 127) continue;  // the loader could not open a library: not ours yet
    if (r.exit_code == 0) {
      run({heartbeat_path(), "stop", "--pidfile", dir / "hb.pid"});
      break;  // enough descriptors from here on
    }
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_EQ(count_lines(r.err), 1U) << r.describe();
    EXPECT_NE(r.err.find("Too many open files"), std::string::npos) << r.describe();
    EXPECT_FALSE(std::filesystem::exists(dir / "hb.pid"));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
    ++clear_errors;
  }
  EXPECT_GT(clear_errors, 0) << "no limit made start run out of descriptors";
}

TEST(Faults, AFullFilesystemGivesOneClearLineAndLeavesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tiny tmpfs";
  TempDir dir;
  const std::string full = dir / "full";
  std::filesystem::create_directory(full);
  if (::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  write_file(full + "/filler", std::string(128 * 1024, 'x'));  // fills it up
  for (const auto& tool : {heartbeat_path(), daemonkit_path()}) {
    std::vector<std::string> args = {tool, "start", "--pidfile", full + "/x.pid"};
    if (tool == heartbeat_path())
      args.insert(args.end(), {"--log", dir / "hb.log"});
    else
      args.insert(args.end(), {"--", "/bin/sleep", "1000"});
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_EQ(count_lines(r.err), 1U) << r.describe();
    EXPECT_NE(r.err.find("write '" + full + "/x.pid': No space left on device"), std::string::npos)
        << r.describe();
    EXPECT_FALSE(std::filesystem::exists(full + "/x.pid"));
  }
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  ::umount2(full.c_str(), MNT_DETACH);
}

// Signals are blocked from the fork until the daemon's handlers are in
// place: a storm of SIGHUP and then SIGTERM at the moment its pid appears
// ends in a clean stop, not in a daemon killed half-way with its pidfile.
TEST(Faults, ASignalStormDuringStartUpEndsInACleanStop) {
  TempDir dir;
  const std::string pidfile = dir / "hb.pid";
  CommandResult started;
  std::thread starter([&] {
    started = run({heartbeat_path(), "start", "--pidfile", pidfile, "--log", dir / "hb.log",
                   "--interval", "0.05"});
  });
  pid_t pid = 0;
  ASSERT_TRUE(eventually([&] { return (pid = pid_in(pidfile)) > 1; }, 10s));
  ProcessGuard guard(pid);
  for (int i = 0; i < 10000; ++i) ::kill(pid, SIGHUP);
  ::kill(pid, SIGTERM);
  starter.join();
  EXPECT_TRUE(started.exit_code == 0 || started.exit_code == 1) << started.describe();
  EXPECT_TRUE(guard.wait_exit(10s)) << "the daemon did not stop on SIGTERM";
  EXPECT_FALSE(std::filesystem::exists(pidfile)) << "a clean stop removes the pidfile";
  auto status = run({heartbeat_path(), "status", "--pidfile", pidfile});
  EXPECT_EQ(status.exit_code, 3) << status.describe();
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

}  // namespace
