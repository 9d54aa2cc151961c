// Never two copies, never a leftover, nothing silent: what running real
// daemons (postgres, redis, nginx, memcached, sshd) under daemonkit showed,
// checked on real processes through /proc.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>

#include "fixture.hpp"

using namespace dktest;

namespace {

class Reliability : public DaemonkitTest {
 protected:
  std::string log = dir / "out.log";

  CommandResult start(const std::vector<std::string>& options,
                      const std::vector<std::string>& program, RunOptions run_options = {}) {
    return start_daemon(options, program, std::move(run_options));
  }
  pid_t payload_of(pid_t supervisor) {
    pid_t p = 0;
    eventually([&] {
      auto kids = children_of(supervisor);
      p = kids.empty() ? 0 : kids[0];
      return p != 0;
    });
    return p;
  }
  // A shell loop whose command line names our directory (so TearDown sees
  // it if it is left), as `nobody`: setpriv changes its credentials, which
  // clears the parent-death signal, as `-u nobody` daemons do.
  std::vector<std::string> payload_as_nobody() {
    return {"/usr/bin/setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/bin/sh",
            "-c",
            "while :; do sleep 1; done",
            dir.path().string()};
  }
  // Kills the supervisor with SIGKILL and returns its payload, which lives on.
  pid_t kill_supervisor_keep_payload(std::vector<std::string> options = {},
                                     RunOptions run_options = {}) {
    auto r = start(options, payload_as_nobody(), std::move(run_options));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const pid_t supervisor = pid_in(pidfile);
    const pid_t payload = payload_of(supervisor);
    EXPECT_TRUE(eventually([&] { return read_status(payload)["Uid"].rfind("65534", 0) == 0; }));
    ProcessGuard(supervisor).kill_now();
    reap_children();
    EXPECT_TRUE(alive(payload)) << "the payload should outlive its supervisor here";
    return payload;
  }
  static bool has_setpriv() { return ::access("/usr/bin/setpriv", X_OK) == 0; }
};

// A start while a stop ends the payload of a killed supervisor waits for
// it: it never reports the stop as a running daemon, and one payload runs.
TEST_F(Reliability, AStartWhileAStopEndsAnOrphanStartsItsOwnPayload) {
  if (!has_setpriv()) GTEST_SKIP() << "no /usr/bin/setpriv";
  const std::vector<std::string> stubborn = {"/usr/bin/setpriv",
                                             "--reuid=nobody",
                                             "--regid=nogroup",
                                             "--clear-groups",
                                             "/bin/sh",
                                             "-c",
                                             "trap '' TERM; while :; do sleep 1; done",
                                             dir.path().string()};
  auto r = start({}, stubborn);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t orphan = payload_of(pid_in(pidfile));
  ASSERT_TRUE(eventually([&] { return read_status(orphan)["Uid"].rfind("65534", 0) == 0; }));
  ProcessGuard(pid_in(pidfile)).kill_now();
  ProcessGuard orphan_guard(orphan);
  auto stop = std::async(std::launch::async, [&] {
    return dk({"stop", "--pidfile", pidfile, "--timeout", "2"});
  });
  ::usleep(300 * 1000);  // the stop is waiting for the orphan to end
  auto second = start({}, {"/bin/sleep", "1000"});
  EXPECT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_EQ(second.out.find("already running"), std::string::npos) << second.describe();
  EXPECT_EQ(stop.get().exit_code, 0);
  EXPECT_TRUE(orphan_guard.exited());
  auto st = status();
  EXPECT_EQ(st.exit_code, 0) << st.describe();
  EXPECT_NE(st.out.find("/bin/sleep 1000"), std::string::npos) << st.describe();
}

// A payload that never stops writing cannot keep its supervisor from
// hearing `stop`: it stops in time, by its stop signal, the supervisor by
// itself.
TEST_F(Reliability, APayloadThatNeverStopsWritingIsStoppedInTime) {
  auto r = start({"--stdout", log, "--log-max-size", "1M", "--log-keep", "1"}, {"/usr/bin/yes"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(log + ".1"); }));
  auto stop = dk({"stop", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_EQ(stop.err.find("did not"), std::string::npos) << stop.describe();
}

// daemonkit inside daemonkit: the inner supervisor's cgroup, below the
// outer one's, goes with it even when it is killed before it removes it.
TEST_F(Reliability, NestedSupervisorsLeaveNoCgroup) {
  auto r =
      start({"--stdout", log}, {daemonkit_path(), "run", "--", "/bin/sh", "-c",
                                "trap '' TERM; while :; do sleep 0.2; done", dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string record = read_file(pidfile + ".state");
  const auto at = record.find("cgroup=");
  if (at == std::string::npos) GTEST_SKIP() << "no cgroup on this machine";
  const std::string cgroup = record.substr(at + 7, record.find('\n', at) - at - 7);
  ASSERT_TRUE(eventually([&] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cgroup, ec))
      if (e.is_directory()) return true;
    return false;
  })) << "the inner supervisor made no cgroup below "
      << cgroup;
  auto stop = dk({"stop", "--pidfile", pidfile, "--timeout", "1"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_FALSE(std::filesystem::exists(cgroup)) << read_file(log);
}

// The watchdog's SIGKILL (cgroup.kill of the payload's cgroup) leaves a
// cgroup that the next payload is never born into: the respawned payload
// runs (it used to be killed at birth).
TEST_F(Reliability, APayloadRespawnedAfterTheWatchdogKilledItsGroupRuns) {
  auto r = start(
      {"--notify", "--watchdog", "0.3", "--respawn", "--stdout", log},
      {"/bin/sh", "-c",
       "trap '' ABRT; " + payload_path("notifier") + " send=READY=1; while :; do sleep 0.1; done",
       dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t supervisor = pid_in(pidfile);
  const pid_t first = payload_of(supervisor);
  // SIGABRT is ignored; SIGKILL follows 5 s later, then the respawn.
  ASSERT_TRUE(eventually(
      [&] {
        auto kids = children_of(supervisor);
        return !kids.empty() && kids[0] != first;
      },
      15s))
      << read_file(log);
  const pid_t second = children_of(supervisor)[0];
  ProcessGuard second_guard(second);
  EXPECT_FALSE(second_guard.wait_exit(500ms)) << read_file(log);
  EXPECT_EQ(read_file(log).find("restart 2"), std::string::npos) << read_file(log);
}

// A supervisor of an older daemonkit (it locks the whole pidfile) cannot
// pass a signal on: `signal` says so and never signals it.
TEST_F(Reliability, SignalNeverReachesAnOlderSupervisor) {
  const std::string older = dir / "daemonkit";  // "stubborn" named like the old tool
  std::filesystem::copy_file(payload_path("stubborn"), older);
  auto r = run({older, pidfile});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessGuard holder(pid_in(pidfile));
  auto s = dk({"signal", "--pidfile", pidfile, "--signal", "USR1"});
  EXPECT_EQ(s.exit_code, 1) << s.describe();
  EXPECT_NE(s.err.find("older daemonkit"), std::string::npos) << s.describe();
  EXPECT_FALSE(holder.wait_exit(200ms)) << "the supervisor was signalled";
  holder.kill_now();
}

// The parent-death signal is gone once the payload changes credentials:
// the record (pid and start time) finds it again, and the next start ends
// it before its own payload runs. Never two copies.
TEST_F(Reliability, ThePayloadOfAKilledSupervisorIsEndedByTheNextStart) {
  if (!has_setpriv()) GTEST_SKIP() << "no /usr/bin/setpriv";
  const pid_t orphan = kill_supervisor_keep_payload({"--stdout", log});
  ProcessGuard orphan_guard(orphan);
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("its payload " + std::to_string(orphan)), std::string::npos)
      << st.describe();
  auto r = start({"--stdout", log}, payload_as_nobody());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(orphan_guard.exited()) << "two payloads run";
  const pid_t next = payload_of(pid_in(pidfile));
  EXPECT_NE(next, orphan);
  // One payload and its supervisor, nothing else of ours (once the start's
  // own intermediate process is gone).
  EXPECT_TRUE(eventually([&] {
    reap_children();
    return processes_mentioning(dir.path().string()).size() == 2U;
  })) << processes_mentioning(dir.path().string()).size();
  EXPECT_NE(read_file(log).find("payload (pid " + std::to_string(orphan) + ", "), std::string::npos)
      << read_file(log);
}

// The same through the process tree alone: where no cgroup can be made
// (here: cgroup.procs refused through the fault seam).
TEST_F(Reliability, WithoutACgroupTheNextStopStillEndsThePayloadOfAKilledSupervisor) {
#ifndef DAEMONKIT_FAULT_INJECTION
  GTEST_SKIP() << "needs the fault-injection seam to refuse the cgroup";
#endif
  if (!has_setpriv()) GTEST_SKIP() << "no /usr/bin/setpriv";
  RunOptions no_cgroup;
  no_cgroup.extra_env.push_back("DAEMONKIT_FAULTS=open:cgroup.procs=EACCES");
  const pid_t orphan = kill_supervisor_keep_payload({}, no_cgroup);
  ProcessGuard orphan_guard(orphan);
  EXPECT_EQ(read_file(pidfile + ".state").find("cgroup="), std::string::npos)
      << "the fault seam should have kept the payload out of any cgroup";
  auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("payload (pid " + std::to_string(orphan) + ", "), std::string::npos)
      << r.describe();
  EXPECT_TRUE(orphan_guard.wait_exit(5s));
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_EQ(status().exit_code, 3);
}

// It ignores SIGTERM, leaves its process group (empty, so that the group
// signal reaches nobody) and forks a child in a group and a grandchild in
// a session of their own: stop --timeout 1 leaves none of them, and says
// it had to SIGKILL.
TEST_F(Reliability, StopLeavesNothingThePayloadStartedWhateverGroupOrSessionItMovedTo) {
  auto r = start({"--stdout", log}, {payload_path("escaper"), dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(eventually([&] { return read_file(log).find("ready") != std::string::npos; }));
  ASSERT_EQ(processes_mentioning(dir.path().string()).size(), 4U) << "supervisor, 3 escapers";
  auto stop = dk({"stop", "--pidfile", pidfile, "--timeout", "1"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  reap_children();
  EXPECT_TRUE(eventually([&] {
    reap_children();
    return processes_mentioning(dir.path().string()).empty();
  }));
  EXPECT_NE(stop.err.find("did not exit within 1 s after SIGTERM; sent SIGKILL"), std::string::npos)
      << stop.describe();
  EXPECT_NE(read_file(log).find("did not exit within 1 s after SIGTERM; sent SIGKILL"),
            std::string::npos)
      << read_file(log);
}

// postgres wants SIGINT ("fast shutdown"): --stop-signal is what stop sends
// first, remembered by the daemon; stop --signal overrides it once.
TEST_F(Reliability, StopSendsTheDaemonsOwnStopSignal) {
  const std::string got = dir / "got";
  auto r = start({"--stop-signal", "INT"},
                 {"/bin/sh", "-c",
                  "trap 'echo INT > " + got + "; exit 0' INT; trap 'echo TERM > " + got +
                      "; exit 0' TERM; while :; do sleep 0.1; done"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto stop = dk({"stop", "--pidfile", pidfile});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_EQ(read_file(got), "INT\n");
  r = start({"--stop-signal", "INT"},
            {"/bin/sh", "-c",
             "trap 'echo INT > " + got + "; exit 0' INT; trap 'echo TERM > " + got +
                 "; exit 0' TERM; while :; do sleep 0.1; done"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  stop = dk({"stop", "--pidfile", pidfile, "--signal", "TERM"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_EQ(read_file(got), "TERM\n");
}

// `run` given SIGTERM (by systemd, docker stop) sends the daemon's stop
// signal; SIGINT stays SIGINT.
TEST_F(Reliability, RunSendsItsStopSignalWhenItGetsSigterm) {
  const std::string got = dir / "got";
  const std::string script = "trap 'echo INT > " + got + "; exit 0' INT; trap 'echo TERM > " + got +
                             "; exit 0' TERM; echo up > " + dir / "up" +
                             "; while :; do sleep 0.1; done";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(daemonkit_path().c_str(), "daemonkit", "run", "--stop-signal", "INT", "--", "/bin/sh",
            "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard run_guard(pid);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "up"); }));
  ::kill(pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(read_file(got), "INT\n");
}

// A record that cannot be written is said in the log (once per cause), and
// the daemon runs on.
TEST_F(Reliability, ARecordThatCannotBeWrittenIsLogged) {
#ifndef DAEMONKIT_FAULT_INJECTION
  GTEST_SKIP() << "needs the fault-injection seam to fill the disk";
#endif
  RunOptions full;
  full.extra_env.push_back("DAEMONKIT_FAULTS=write:.daemonkit-tmp=ENOSPC");
  auto r = start({"--stdout", log}, {"/bin/sleep", "1000"}, full);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually([&] {
    return read_file(log).find("cannot record the daemon's state: write '" + pidfile +
                               ".state': No space left on device") != std::string::npos;
  })) << read_file(log);
  size_t said = 0;
  for (size_t at = 0; (at = read_file(log).find("cannot record", at)) != std::string::npos; ++at)
    ++said;
  EXPECT_EQ(said, 1U) << read_file(log);
  EXPECT_EQ(status().exit_code, 0);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().rfind(".daemonkit-tmp", 0), std::string::npos)
        << "a temporary file was left: " << e.path();
}

// A supervisor that has not recorded its state (deleted, or a pidfile name
// too long for the old temporary name) is still a supervisor: its lock
// says so. reopen never signals a payload that dies of SIGHUP.
TEST_F(Reliability, ReopenNeverSignalsThePayloadEvenWithoutItsRecord) {
  pidfile = dir / (std::string(243, 'p') + ".pid");  // a 247-byte name
  auto r = start({"--stdout", log}, {"/bin/sleep", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t payload = payload_of(pid_in(pidfile));
  ProcessGuard payload_guard(payload);
  EXPECT_TRUE(std::filesystem::exists(pidfile + ".state")) << "the record was not written";
  std::filesystem::remove(pidfile + ".state");
  auto reopen = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(reopen.exit_code, 0) << reopen.describe();
  EXPECT_FALSE(payload_guard.wait_exit(300ms)) << "reopen killed the payload with SIGHUP";
  auto again = start({"--stdout", log}, {"/bin/sleep", "1000"});
  EXPECT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_NE(again.out.find("already running"), std::string::npos) << again.describe();
}

// A second start while the first waits for READY=1 returns only when the
// daemon is up, even after its binary was replaced (a package upgrade:
// /proc/PID/exe then ends in "(deleted)").
TEST_F(Reliability, ASecondStartWaitsForReadinessEvenAfterTheBinaryWasReplaced) {
  const std::string copy = dir / "daemonkit";
  std::filesystem::copy_file(daemonkit_path(), copy);
  const std::string ready_file = dir / "ready";
  std::vector<std::string> args = {copy,
                                   "start",
                                   "--pidfile",
                                   pidfile,
                                   "--notify",
                                   "--stdout",
                                   log,
                                   "--",
                                   payload_path("notifier"),
                                   "sleep=1500",
                                   "send=READY=1",
                                   "hang",
                                   "mark=" + dir.path().string()};
  auto first = std::async(std::launch::async,
                          [&] { return run(args, with_sanitizer_logs(dir.path(), {})); });
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) > 1; }));
  guards.emplace_back(lock_holder(pidfile));
  std::filesystem::remove(copy);
  std::filesystem::copy_file(daemonkit_path(), copy);  // the "new version"
  ASSERT_NE(read_file("/proc/" + std::to_string(lock_holder(pidfile)) + "/maps").find("(deleted)"),
            std::string::npos);
  auto second =
      start({"--notify", "--stdout", log}, {payload_path("notifier"), "send=READY=1", "hang"});
  EXPECT_EQ(second.exit_code, 0) << second.describe();
  // Up means: the record says so (written when READY=1 came).
  EXPECT_NE(read_file(pidfile + ".state").find("phase=running"), std::string::npos)
      << "the second start returned before the daemon was up";
  EXPECT_EQ(first.get().exit_code, 0);
}

// Every process a payload leaves is named, with no race: redis forks its
// background copy, exits, and the copy calls setsid a moment later.
TEST_F(Reliability, ProcessesLeftBehindAreAlwaysNamed) {
  for (int i = 0; i < 5; ++i) {
    auto r =
        start({"--stdout", log}, {"/bin/sh", "-c", "sleep 1000 & exit 0", dir.path().string()});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(pidfile); }));
    reap_children();
  }
  size_t named = 0;
  for (size_t at = 0;
       (at = read_file(log).find("processes the payload left behind: ", at)) != std::string::npos;
       ++at)
    ++named;
  EXPECT_EQ(named, 5U) << read_file(log);
  EXPECT_NE(read_file(log).find("killed 1 processes the payload left behind: "), std::string::npos);
  // Named as they were when frozen: "sleep", or "sh" if the fork had not
  // executed sleep yet.
  EXPECT_TRUE(read_file(log).find(" (sleep)") != std::string::npos ||
              read_file(log).find(" (sh)") != std::string::npos)
      << read_file(log);
  EXPECT_EQ(read_file(log).find("daemonized itself"), std::string::npos) << read_file(log);
}

// A payload that was killed (a crash, the OOM killer) did not daemonize
// itself, even if a process it forked had left its group (postgres puts each
// backend in a session of its own).
TEST_F(Reliability, AKilledPayloadIsNeverSaidToHaveDaemonizedItself) {
  auto r = start({"--stdout", log},
                 {"/bin/sh", "-c", "setsid sleep 1000 & exec sleep 1001", dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t payload = payload_of(pid_in(pidfile));
  ASSERT_TRUE(eventually([&] { return children_of(payload).size() == 1; }));
  const pid_t child = children_of(payload)[0];
  ASSERT_TRUE(eventually([&] {
    auto st = read_stat(child);
    return st && st->session == child &&
           read_file("/proc/" + std::to_string(child) + "/comm") == "sleep\n";
  })) << "the child never left for a session of its own";
  ::kill(payload, SIGKILL);
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) == 0; }));
  EXPECT_EQ(read_file(log).find("daemonized itself"), std::string::npos) << read_file(log);
  EXPECT_NE(read_file(log).find("killed 1 processes the payload left behind: " +
                                std::to_string(child) + " (sleep)"),
            std::string::npos)
      << read_file(log);
}

// Giving up is an ending, whatever the last run's status.
TEST_F(Reliability, GaveUpIsRecordedEvenWhenTheLastRunExitedZero) {
  auto r = start({"--respawn", "--max-restarts", "2"}, {"/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) == 0; }));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("gave up after 2 restarts in "), std::string::npos) << st.describe();
}

// Uptime is the payload's, the supervisor's own age apart; a dead daemon
// shows the lines that explain it.
TEST_F(Reliability, StatusShowsThePayloadsUptimeAndADeadDaemonsLogTail) {
  auto r = start({"--respawn", "--stdout", log},
                 {"/bin/sh", "-c", "echo started; sleep 1000", dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t first = payload_of(pid_in(pidfile));
  ::usleep(2200 * 1000);  // the supervisor ages; the next payload starts young
  ::kill(first, SIGKILL);
  ASSERT_TRUE(eventually([&] {
    auto kids = children_of(pid_in(pidfile));
    return !kids.empty() && kids[0] != first && status().exit_code == 0;
  }));
  auto j = dk({"status", "--pidfile", pidfile, "--json"});
  auto number = [&](const std::string& key) {
    auto at = j.out.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::atol(j.out.c_str() + at + key.size() + 3);
  };
  EXPECT_LT(number("uptime_seconds"), number("supervisor_uptime_seconds")) << j.describe();
  EXPECT_GE(number("supervisor_uptime_seconds"), 2) << j.describe();
  dk({"stop", "--pidfile", pidfile});

  r = start({"--stdout", log}, {"/bin/sh", "-c", "sleep 0.2; echo cannot bind port 80; exit 3"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) == 0; }));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("exited with 3"), std::string::npos) << st.describe();
  EXPECT_NE(st.out.find("cannot bind port 80"), std::string::npos) << st.describe();
}

// --ready-after: memcached, sshd and nginx "start" and die milliseconds later.
TEST_F(Reliability, ReadyAfterFailsAStartWhosePayloadDiesSoonAndLeavesNothing) {
  auto r = start({"--ready-after", "3"}, {"/bin/sh", "-c", "sleep 0.3; exit 64"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("exited with 64"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_FALSE(std::filesystem::exists(pidfile + ".state"));
  r = start({"--ready-after", "0.5"}, {"/bin/sleep", "1000"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(status().exit_code, 0);
  EXPECT_EQ(dk({"start", "--pidfile", pidfile, "--notify", "--ready-after", "1", "--", "/bin/true"})
                .exit_code,
            2);
}

// `signal` reaches the payload, never the supervisor; 7 when none runs.
TEST_F(Reliability, SignalReachesThePayloadNeverTheSupervisor) {
  const std::string got = dir / "got";
  auto r =
      start({"--respawn"},
            {"/bin/sh", "-c", "trap 'echo USR1 >> " + got + "' USR1; while :; do sleep 0.1; done"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t supervisor = pid_in(pidfile);
  auto s = dk({"signal", "--pidfile", pidfile, "--signal", "USR1"});
  EXPECT_EQ(s.exit_code, 0) << s.describe();
  EXPECT_TRUE(eventually([&] { return read_file(got) == "USR1\n"; })) << read_file(got);
  s = dk({"signal", "--pidfile", pidfile, "--signal", "USR1", "--group"});
  EXPECT_EQ(s.exit_code, 0) << s.describe();
  EXPECT_TRUE(eventually([&] { return read_file(got) == "USR1\nUSR1\n"; })) << read_file(got);
  // SIGKILL through `signal`: the payload dies, the supervisor respawns it.
  s = dk({"signal", "--pidfile", pidfile, "--signal", "KILL"});
  EXPECT_EQ(s.exit_code, 0) << s.describe();
  EXPECT_TRUE(alive(supervisor));
  EXPECT_EQ(dk({"signal", "--pidfile", pidfile}).exit_code, 2);
  dk({"stop", "--pidfile", pidfile});
  s = dk({"signal", "--pidfile", pidfile, "--signal", "USR1"});
  EXPECT_EQ(s.exit_code, 7) << s.describe();
}

// While the supervisor waits to respawn, no payload runs: 7.
TEST_F(Reliability, SignalWhileWaitingToRespawnExits7) {
  auto r = start({"--respawn"}, {"/bin/sh", "-c", "exit 1"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(eventually([&] { return status().exit_code == 150; }, 20s));
  auto s = dk({"signal", "--pidfile", pidfile, "--signal", "USR1"});
  EXPECT_EQ(s.exit_code, 7) << s.describe();
}

// A newline in a path is a value, never a key of the record.
TEST_F(Reliability, ANewlineInAPathCannotForgeTheRecord) {
  const std::string evil = dir / "a\nphase=ended\nended=FAKE\nstatus=FAKE";
  auto r = start({"--stdout", evil}, {"/bin/sleep", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto st = status();
  EXPECT_EQ(st.exit_code, 0) << st.describe();
  EXPECT_EQ(st.out.rfind("running (pid " + std::to_string(pid_in(pidfile)) + ")\n", 0), 0U)
      << st.describe();
  const std::string record = read_file(pidfile + ".state");
  EXPECT_EQ(record.find("\nended="), std::string::npos) << record;
  EXPECT_EQ(record.find("\nstatus="), std::string::npos) << record;
  EXPECT_NE(record.find("phase=running\n"), std::string::npos) << record;
}

}  // namespace

// `ps` shows the supervisor as daemonkit, with the command that started it.
TEST_F(Reliability, TheSupervisorShowsAsDaemonkitWithItsCommandLine) {
  auto r = start({}, {"/bin/sleep", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t supervisor = pid_in(pidfile);
  EXPECT_EQ(read_file("/proc/" + std::to_string(supervisor) + "/comm"), "daemonkit\n");
  std::string cmdline = read_file("/proc/" + std::to_string(supervisor) + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  EXPECT_NE(cmdline.find(" start --pidfile " + pidfile), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find("-- /bin/sleep 1000"), std::string::npos) << cmdline;
}
