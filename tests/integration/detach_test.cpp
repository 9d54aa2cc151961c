// detach() paths beyond heartbeat's: no readiness, early exit, failures
// reported by the body, credentials and standard streams.
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support.hpp"

using namespace dktest;

namespace {

class Detach : public ::testing::Test {
 protected:
  TempDir dir;
  std::string pidfile = dir / "probe.pid";
  std::vector<ProcessGuard> guards;

  CommandResult probe(const std::string& mode, const std::string& arg = "") {
    std::vector<std::string> args = {payload_path("probe"), mode, pidfile};
    if (!arg.empty()) args.push_back(arg);
    return run(args);
  }
  pid_t started_pid(const CommandResult& r) {
    if (r.out.rfind("started ", 0) != 0) return 0;
    pid_t pid = std::stoi(r.out.substr(8));
    guards.emplace_back(pid);
    return pid;
  }
  void TearDown() override {
    guards.clear();
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
  }
};

TEST_F(Detach, NoReadinessWithinTheTimeoutKillsTheDaemonAndRemovesThePidfile) {
  auto r = probe("never-ready", "0.3");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("not ready within 300 ms"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Detach, BodyThatReturnsWithoutReportingFailsTheStart) {
  auto r = probe("exit-early");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("exited before it was ready"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

TEST_F(Detach, FailureReportedByTheBodyReachesTheCaller) {
  auto r = probe("fail");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("failed: bind '127.0.0.1:1': Address already in use"), std::string::npos)
      << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Detach, StandardStreamsComeFromTheConfiguredPaths) {
  write_file(dir / "in", "input\n");
  auto r = probe("stdio", dir.path().string());
  pid_t pid = started_pid(r);
  ASSERT_GT(pid, 1) << r.describe();
  auto fds = fd_targets(pid);
  EXPECT_EQ(fds[0], dir / "in");
  EXPECT_EQ(fds[1], dir / "out");
  EXPECT_EQ(fds[2], dir / "err");
  EXPECT_EQ(read_file(dir / "out"), "to stdout\n");
  EXPECT_EQ(read_file(dir / "err"), "to stderr\n");
}

TEST_F(Detach, MissingStdinFailsNamingThePathAndLeavesNothing) {
  auto r = probe("stdio", (dir / "nowhere"));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("open standard input '" + (dir / "nowhere/in") + "'"), std::string::npos)
      << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Detach, SwitchesToTheRequestedUserAndGroups) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  struct passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user 'nobody' here";
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto r = probe("as-user", "nobody");
  pid_t pid = started_pid(r);
  ASSERT_GT(pid, 1) << r.describe();
  auto status = read_status(pid);
  const std::string uid = std::to_string(nobody->pw_uid);
  const std::string gid = std::to_string(nobody->pw_gid);
  EXPECT_EQ(status["Uid"], uid + "\t" + uid + "\t" + uid + "\t" + uid);
  EXPECT_EQ(status["Gid"], gid + "\t" + gid + "\t" + gid + "\t" + gid);
  EXPECT_EQ(status["Groups"].find('0'), std::string::npos)
      << "root's group must be gone: " << status["Groups"];
}

TEST_F(Detach, UnknownUserIsAUsageError) {
  auto r = probe("as-user", "no-such-user-daemonkit");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.out.find("no such user"), std::string::npos) << r.describe();
}

}  // namespace
