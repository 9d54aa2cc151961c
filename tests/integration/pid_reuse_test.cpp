// A daemon killed by SIGKILL leaves its pidfile; later its pid goes to some
// other process. The pidfile is then true about the past and false about the
// present: stop, status and reload must believe the lock, not the number,
// and leave that process alone.
#include <unistd.h>

#include <gtest/gtest.h>

#include "support.hpp"

using namespace dktest;

namespace {

class PidReuse : public ::testing::TestWithParam<std::string> {
 protected:
  TempDir dir;
  const std::string pidfile = dir / "x.pid";

  bool is_heartbeat() const { return GetParam() == "heartbeat"; }
  CommandResult tool(std::vector<std::string> args) {
    args.insert(args.begin(), is_heartbeat() ? heartbeat_path() : daemonkit_path());
    args.insert(args.begin() + 2, {"--pidfile", pidfile});
    return run(args, with_sanitizer_logs(dir.path(), {}));
  }
  CommandResult start() {
    if (is_heartbeat()) return tool({"start", "--log", dir / "hb.log"});
    return tool({"start", "--", "/bin/sleep", "1000"});
  }
  void TearDown() override {
    tool({"stop", "--timeout", "1"});
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
    expect_no_sanitizer_reports(dir.path());
  }
};

TEST_P(PidReuse, AStalePidfileWhosePidWentToAnotherProcessSignalsNothing) {
  // A daemon, killed outright: its pidfile stays, naming it.
  auto r = start();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t dead = pid_in(pidfile);
  ASSERT_GT(dead, 1);
  {
    std::vector<ProcessGuard> daemon;
    daemon.emplace_back(dead);
    for (pid_t child : children_of(dead)) daemon.emplace_back(child);
    daemon[0].kill_now();
    for (auto& d : daemon) ASSERT_TRUE(d.wait_exit(5s)) << "pid " << d.pid();
  }
  // (The guards reaped it: we are its subreaper.) Its pid is free again.
  ASSERT_FALSE(std::filesystem::exists("/proc/" + std::to_string(dead)));
  ASSERT_EQ(pid_in(pidfile), dead);

  // Its pid goes to a process of ours that has nothing to do with it.
  std::string why;
  const pid_t stranger = start_with_pid(dead, {"/bin/sleep", "1000"}, why);
  if (stranger == 0) GTEST_SKIP() << "cannot get pid " << dead << " back: " << why;
  ProcessGuard stranger_guard(stranger);
  ASSERT_EQ(stranger, dead);
  // Asleep, not merely executed (a loaded machine may still be loading it).
  ASSERT_TRUE(eventually([&] {
    auto s = read_stat(stranger);
    return read_file("/proc/" + std::to_string(stranger) + "/comm") == "sleep\n" && s &&
           s->state == 'S';
  }));

  // status: the daemon is dead and its pidfile remains (1), not "running".
  r = tool({"status"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.out.find("running (pid"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("dead (pid " + std::to_string(dead) + ")"), std::string::npos)
      << r.describe();
  // reload (and reopen): not running, 7.
  r = tool({"reload", "--timeout", "1"});
  EXPECT_EQ(r.exit_code, 7) << r.describe();
  if (!is_heartbeat()) {
    r = tool({"reopen"});
    EXPECT_EQ(r.exit_code, 7) << r.describe();
  }
  // stop: not running (0), and the stale pidfile is cleared away.
  r = tool({"stop", "--timeout", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("not running"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));

  // The stranger got no signal that ends or stops it.
  EXPECT_FALSE(stranger_guard.exited());
  // (Runnable for a moment is no harm: asleep again, not stopped or dead.)
  EXPECT_TRUE(eventually([&] {
    auto st = read_stat(stranger);
    return st && st->state == 'S';
  })) << "the stranger must sleep on, neither stopped nor dead";

  // A new start works, and the pidfile names the new daemon.
  r = start();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(pid_in(pidfile), stranger);
  EXPECT_EQ(lock_holder(pidfile), pid_in(pidfile));
  r = tool({"stop"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(stranger_guard.exited()) << "stopping the new daemon must not touch the stranger";
}

INSTANTIATE_TEST_SUITE_P(Tools, PidReuse, ::testing::Values("daemonkit", "heartbeat"),
                         [](const auto& info) { return info.param; });

}  // namespace
