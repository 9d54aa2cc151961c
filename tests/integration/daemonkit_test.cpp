// The daemonkit command's promises, checked on real processes through /proc.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <sstream>
#include <thread>

#include "fixture.hpp"

using namespace dktest;

namespace {

class Daemonkit : public DaemonkitTest {
 protected:
  // `daemonkit start --pidfile P OPTIONS -- PROGRAM...`; guards supervisor and payload.
  struct Started {
    CommandResult result;
    pid_t supervisor = 0;
    pid_t payload = 0;
  };
  Started start(std::vector<std::string> options, std::vector<std::string> program) {
    std::vector<std::string> args = {"start", "--pidfile", pidfile};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), program.begin(), program.end());
    Started s;
    s.result = dk(args);
    s.supervisor = pid_in(pidfile);
    if (s.result.exit_code == 0 && s.supervisor > 1) {
      guards.emplace_back(s.supervisor);
      auto kids = children_of(s.supervisor);
      if (!kids.empty()) {
        s.payload = kids[0];
        guards.emplace_back(s.payload);
      }
    }
    return s;
  }
  std::vector<std::string> sleeper() { return {"/bin/sleep", "1000"}; }
};

TEST_F(Daemonkit, StartReturnsWithTheSupervisorHoldingTheLockAndThePayloadRunning) {
  auto s = start({}, sleeper());
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  ASSERT_GT(s.supervisor, 1);
  EXPECT_EQ(lock_holder(pidfile), s.supervisor);
  ASSERT_GT(s.payload, 1) << "no payload under the supervisor";
  EXPECT_TRUE(alive(s.payload));
  EXPECT_EQ(read_file("/proc/" + std::to_string(s.payload) + "/comm"), "sleep\n");
  auto sup = read_stat(s.supervisor);
  ASSERT_TRUE(sup);
  EXPECT_TRUE(sup->ppid == 1 || sup->ppid == ::getpid());
  EXPECT_NE(sup->session, s.supervisor);
  EXPECT_EQ(sup->tty_nr, 0);
  auto st = status();
  EXPECT_EQ(st.exit_code, 0) << st.describe();
  EXPECT_NE(st.out.find(std::to_string(s.supervisor)), std::string::npos);
}

TEST_F(Daemonkit, PayloadIsDetachedLeadsItsGroupAndInheritsNothing) {
  int extra = ::open((dir / "leak").c_str(), O_WRONLY | O_CREAT, 0644);  // inherited
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  auto old_usr2 = ::signal(SIGUSR2, SIG_IGN);
  auto s = start({}, sleeper());
  ::signal(SIGUSR2, old_usr2);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ::close(extra);
  ASSERT_GT(s.payload, 1) << s.result.describe();
  auto st = read_stat(s.payload);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pgrp, s.payload) << "leads a process group of its own";
  EXPECT_NE(st->session, s.payload) << "never a session leader";
  EXPECT_EQ(st->tty_nr, 0);
  EXPECT_EQ(st->ppid, s.supervisor);
  auto status = read_status(s.payload);
  EXPECT_EQ(status["SigBlk"], "0000000000000000");
  EXPECT_EQ(status["SigIgn"], "0000000000000000");
  EXPECT_EQ(status["Umask"], "0022");
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(s.payload) + "/cwd"), "/");
  // The payload's own start-up (the loader, sleep reading its locale) opens
  // files for a moment: look once sleep(1) is asleep, with one listing (a
  // second one could catch such a moment); an inherited descriptor stays.
  const std::string wchan = "/proc/" + std::to_string(s.payload) + "/wchan";
  EXPECT_TRUE(
      eventually([&] { return read_file(wchan).find("nanosleep") != std::string::npos; }, 3s))
      << "wchan: " << read_file(wchan);
  auto fds = fd_targets(s.payload);
  EXPECT_EQ(fds.size(), 3U) << "only 0, 1 and 2";
  for (const auto& [fd, target] : fds) EXPECT_EQ(target, "/dev/null") << fd;
  for (const auto& [fd, target] : fd_targets(s.supervisor))
    EXPECT_EQ(target.find("leak"), std::string::npos) << "supervisor fd " << fd;
}

TEST_F(Daemonkit, StopEndsSupervisorPayloadAndEverythingInItsGroup) {
  auto s = start({}, {"/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return children_of(s.payload).size() == 2; }));
  std::vector<ProcessGuard> helpers;
  for (pid_t c : children_of(s.payload)) helpers.emplace_back(c);
  auto r = dk({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (auto& g : guards) EXPECT_TRUE(g.exited()) << "pid " << g.pid() << " outlived stop";
  for (auto& h : helpers)
    EXPECT_TRUE(h.exited()) << "forked helper " << h.pid() << " outlived stop";
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_EQ(status().exit_code, 3);
}

TEST_F(Daemonkit, StopEscalatesToSigkillAfterTheTimeoutAndWaits) {
  auto s = start({}, {"/bin/sh", "-c", "trap '' TERM; exec sleep 1000"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return read_status(s.payload)["SigIgn"] == "0000000000004000"; }))
      << "payload ignores SIGTERM";
  auto begin = std::chrono::steady_clock::now();
  auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "0.5"});
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 2500ms) << "the supervisor sweeps the group at the timeout";
  for (auto& g : guards) EXPECT_TRUE(g.exited());
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

TEST_F(Daemonkit, StopSignalIsWhatThePayloadGroupGets) {
  std::string marker = dir / "got-int";
  auto s = start({}, {"/bin/sh", "-c",
                      "trap 'echo int > " + marker +
                          "; exit 0' INT; "
                          "trap '' TERM; while :; do sleep 0.05; done"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return read_status(s.payload)["SigCgt"] != "0000000000000000"; }));
  auto r = dk({"stop", "--pidfile", pidfile, "--signal", "INT", "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(read_file(marker), "int\n");
}

TEST_F(Daemonkit, KillingTheSupervisorTakesThePayloadAlongAndStartWorksAgain) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  guards[0].kill_now();  // the supervisor, by SIGKILL
  EXPECT_TRUE(guards[1].wait_exit(5000ms)) << "payload outlived its supervisor";
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  auto again = start({}, sleeper());
  EXPECT_EQ(again.result.exit_code, 0) << again.result.describe();
  EXPECT_GT(again.payload, 1);
  EXPECT_EQ(status().exit_code, 0);
}

TEST_F(Daemonkit, PayloadKilledWithoutRespawnEndsTheDaemonAndStatusSaysWhy) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  guards[1].kill_now();
  EXPECT_TRUE(guards[0].wait_exit(5000ms)) << "the supervisor must end with its payload";
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("killed by SIGKILL"), std::string::npos) << st.describe();
  EXPECT_TRUE(std::filesystem::exists(pidfile));
  auto again = start({}, sleeper());
  EXPECT_EQ(again.result.exit_code, 0) << again.result.describe();
}

TEST_F(Daemonkit, PayloadExitingZeroRemovesThePidfile) {
  auto s = start({}, {"/bin/sh", "-c", "sleep 0.2"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  ASSERT_GT(s.supervisor, 1);
  EXPECT_TRUE(guards[0].wait_exit(5000ms));
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_EQ(status().exit_code, 3);
}

TEST_F(Daemonkit, PayloadExitingNonZeroLeavesThePidfileAndTheReason) {
  auto s = start({}, {"/bin/sh", "-c", "sleep 0.2; exit 78"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_TRUE(guards[0].wait_exit(5000ms));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("exited with 78"), std::string::npos) << st.describe();
}

TEST_F(Daemonkit, FailuresBeforeTheStartAreOneLineAndLeaveNothing) {
  struct Case {
    std::vector<std::string> options;
    std::vector<std::string> program;
    std::string needle;
    int code;
  };
  const std::string missing = dir / "missing/out.log";
  for (const auto& c : std::vector<Case>{
           {{}, {"no-such-program-dk"}, "no-such-program-dk", 5},
           {{}, {dir / "no/such/path"}, "no/such/path", 5},
           {{"--stdout", missing}, sleeper(), missing, 1},
           {{"--stdin", dir / "nope"}, sleeper(), dir / "nope", 1},
       }) {
    SCOPED_TRACE(c.needle);
    auto s = start(c.options, c.program);
    EXPECT_EQ(s.result.exit_code, c.code) << s.result.describe();
    EXPECT_EQ(std::count(s.result.err.begin(), s.result.err.end(), '\n'), 1) << s.result.describe();
    EXPECT_NE(s.result.err.find(c.needle), std::string::npos) << s.result.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }
  // A non-executable file is "not installed" too.
  write_file(dir / "plain", "#!/bin/sh\n");
  auto s = start({}, {dir / "plain"});
  EXPECT_EQ(s.result.exit_code, 5) << s.result.describe();
  // A missing pidfile directory.
  auto r = dk({"start", "--pidfile", dir / "none/dk.pid", "--", "/bin/sleep", "1000"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find(dir / "none/dk.pid"), std::string::npos) << r.describe();
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Daemonkit, TwentyConcurrentStartsMakeOneDaemon) {
  std::vector<std::thread> threads;
  std::vector<CommandResult> results(20);
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] {
      results[i] = dk({"start", "--pidfile", pidfile, "--", "/bin/sleep", "1000"});
    });
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r.exit_code, 0) << r.describe();
  // Supervisors mention the pidfile on their command line: exactly one.
  auto supervisors = processes_mentioning(pidfile);
  for (pid_t p : supervisors) guards.emplace_back(p);
  ASSERT_EQ(supervisors.size(), 1U);
  EXPECT_EQ(pid_in(pidfile), supervisors[0]);
  EXPECT_EQ(lock_holder(pidfile), supervisors[0]);
  auto payloads = children_of(supervisors[0]);
  for (pid_t p : payloads) guards.emplace_back(p);
  EXPECT_EQ(payloads.size(), 1U);
}

// A second start while the first one's payload has not yet sent READY=1
// returns only once it has (start promise 1), not at once.
TEST_F(Daemonkit, SecondStartWaitsForTheFirstDaemonToBeReady) {
  const std::vector<std::string> args = {"start",     "--pidfile",    pidfile,
                                         "--notify",  "--",           payload_path("notifier"),
                                         "sleep=800", "send=READY=1", "hang"};
  CommandResult first;
  std::thread starter([&] { first = dk(args); });
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) > 1; }));
  guards.emplace_back(lock_holder(pidfile));
  auto second = dk(args);
  const bool ready_when_second_returned = std::filesystem::exists(pidfile + ".state");
  starter.join();
  EXPECT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_TRUE(ready_when_second_returned) << "the second start returned before READY=1";
  EXPECT_NE(second.out.find("already running (pid " + std::to_string(pid_in(pidfile)) + ")"),
            std::string::npos)
      << second.describe();
  for (pid_t p : children_of(pid_in(pidfile))) guards.emplace_back(p);
}

// When that first daemon dies before it is ready, the second start does not
// report it as running: it tries for itself (here failing the same way).
TEST_F(Daemonkit, SecondStartDoesNotReportADaemonThatDiedBeforeReady) {
  const std::vector<std::string> args = {"start",     "--pidfile", pidfile,
                                         "--notify",  "--",        payload_path("notifier"),
                                         "sleep=500", "exit=78"};
  CommandResult first;
  std::thread starter([&] { first = dk(args); });
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) > 1; }));
  auto second = dk(args);
  starter.join();
  EXPECT_EQ(first.exit_code, 1) << first.describe();
  EXPECT_EQ(second.exit_code, 1) << second.describe();
  EXPECT_NE(second.err.find("exited with 78 before it was ready"), std::string::npos)
      << second.describe();
  EXPECT_EQ(dk({"status", "--pidfile", pidfile}).exit_code, 3);
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

// A second start waits for the first daemon's record to say it is up (it
// wakes as the record is replaced). When the record is deleted from outside
// meanwhile, the daemon's lock is all there is to go by: the second start
// says it runs, a second later, rather than wait out --ready-timeout.
TEST_F(Daemonkit, SecondStartGoesByTheLockWhenTheFirstDaemonsRecordIsDeleted) {
  const std::vector<std::string> args = {"start",
                                         "--pidfile",
                                         pidfile,
                                         "--notify",
                                         "--ready-timeout",
                                         "60",
                                         "--",
                                         payload_path("notifier"),
                                         "hang"};
  CommandResult first;
  std::thread starter([&] { first = dk(args); });
  // Recorded twice while starting: when the lock is taken, then with the
  // payload's pid. Deleted after the second time, it stays deleted.
  const std::string record = pidfile + ".state";
  ASSERT_TRUE(eventually([&] { return read_file(record).find("\npayload=") != std::string::npos; }))
      << read_file(record);
  const pid_t supervisor = lock_holder(pidfile);
  ASSERT_GT(supervisor, 1);
  guards.emplace_back(supervisor);
  for (pid_t p : children_of(supervisor)) guards.emplace_back(p);
  std::filesystem::remove(record);
  auto second = dk(args);
  EXPECT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_NE(second.out.find("already running (pid " + std::to_string(supervisor) + ")"),
            std::string::npos)
      << second.describe();
  EXPECT_EQ(dk({"stop", "--pidfile", pidfile}).exit_code, 0);
  starter.join();
  EXPECT_EQ(first.exit_code, 1) << first.describe();
}

TEST_F(Daemonkit, StartOfARunningDaemonSucceedsAndStartsNothing) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1);
  auto again = dk({"start", "--pidfile", pidfile, "--", "/bin/sleep", "1000"});
  EXPECT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_NE(again.out.find("already running (pid " + std::to_string(s.supervisor) + ")"),
            std::string::npos)
      << again.describe();
  EXPECT_EQ(children_of(s.supervisor), std::vector<pid_t>{s.payload});
}

TEST_F(Daemonkit, ReloadReopensRenamedLogsAndPassesSighupOn) {
  std::string log = dir / "out.log";
  auto s = start({"--stdout", log},
                 {"/bin/sh", "-c", "trap 'echo hup' HUP; echo up; while :; do sleep 0.05; done"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return read_file(log) == "up\n"; }));
  ASSERT_TRUE(eventually([&] { return read_status(s.payload)["SigCgt"] != "0000000000000000"; }));
  ASSERT_EQ(::rename(log.c_str(), (dir / "out.log.1").c_str()), 0);
  auto r = dk({"reload", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually([&] { return read_file(log) == "hup\n"; }))
      << "new file: '" << read_file(log) << "', old: '" << read_file(dir / "out.log.1") << "'";
  EXPECT_TRUE(alive(s.payload));
}

TEST_F(Daemonkit, ReopenReopensLogsWithoutSignallingThePayload) {
  std::string log = dir / "out.log";
  // No HUP handler: a SIGHUP would kill it.
  auto s = start({"--stdout", log}, {"/bin/sh", "-c", "echo one; read x < /dev/stdin; sleep 1000"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return read_file(log) == "one\n"; }));
  ASSERT_EQ(::rename(log.c_str(), (dir / "out.log.1").c_str()), 0);
  auto r = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually([&] { return std::filesystem::exists(log); }));
  EXPECT_TRUE(alive(s.payload)) << "reopen must not signal the payload";
  EXPECT_EQ(status().exit_code, 0);
}

TEST_F(Daemonkit, ReloadAndReopenOfAStoppedDaemonExitSeven) {
  EXPECT_EQ(dk({"reload", "--pidfile", pidfile}).exit_code, 7);
  EXPECT_EQ(dk({"reopen", "--pidfile", pidfile}).exit_code, 7);
}

TEST_F(Daemonkit, NotifyStartWaitsForReadyAndHidesTheOuterSocket) {
  std::string out = dir / "out.log";
  auto begin = std::chrono::steady_clock::now();
  auto s = start({"--notify", "--stdout", out},
                 {payload_path("notifier"), "sleep=400", "send=STATUS=warm|READY=1", "hang"});
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_GE(took, 400ms) << "start returned before READY=1";
  EXPECT_NE(read_file(out).find("NOTIFY_SOCKET=@daemonkit-notify/"), std::string::npos)
      << read_file(out);
  auto st = status();
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_NE(st.out.find("warm"), std::string::npos) << st.describe();
}

TEST_F(Daemonkit, NotifyAcceptsReadinessFromAProcessThePayloadStarted) {
  std::string out = dir / "out.log";
  auto s = start({"--notify", "--ready-timeout", "10", "--stdout", out},
                 {payload_path("notifier"), "child-send=READY=1", "hang"});
  EXPECT_EQ(s.result.exit_code, 0) << s.result.describe() << "--- log:\n" << read_file(out);
}

// Sends `text` to the abstract socket `address` ("@name") from a child that
// takes `uid` first, and returns the child's pid. With `stay`, the child
// then waits to be killed; else it exits at once. Async-signal-safe after
// the fork: the test has a thread running.
pid_t send_from_child(const std::string& address, const std::string& text, uid_t uid, bool stay) {
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address.data(), std::min(address.size(), sizeof sa.sun_path - 1));
  sa.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address.size());
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (::setgid(uid) != 0 || ::setuid(uid) != 0) _exit(71);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::sendto(fd, text.data(), text.size(), 0,
                         reinterpret_cast<const struct sockaddr*>(&sa), len) < 0)
    _exit(72);
  if (stay)
    for (;;) ::pause();
  _exit(0);
}

TEST_F(Daemonkit, NotificationsFromOutsideThePayloadAreIgnored) {
  // The socket's name is no secret: /proc/net/unix shows it to every user.
  // A running process outside the payload's tree is refused by its
  // lineage; one that has already exited cannot be traced, and counts only
  // when it ran as root or as the payload's user.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to send as another user";
  std::string out = dir / "out.log";
  std::string go = dir / "go";
  auto started = std::async(std::launch::async, [&] {
    return start({"--notify", "--ready-timeout", "20", "--stdout", out},
                 {"/bin/sh", "-c",
                  "while [ ! -e " + go + " ]; do sleep 0.05; done; exec " +
                      payload_path("notifier") + " send=READY=1 hang"});
  });
  struct Go {
    std::string path;
    ~Go() { write_file(path, ""); }  // lets the start end, whatever happens
  } let_go{go};
  // The payload's address, once it has executed (before that, a plain
  // fork's child has the supervisor's environment).
  pid_t supervisor = 0;
  std::string address;
  ASSERT_TRUE(eventually([&] {
    supervisor = lock_holder(pidfile);
    auto kids = supervisor > 0 ? children_of(supervisor) : std::vector<pid_t>{};
    if (kids.empty()) return false;
    std::istringstream environ(read_file("/proc/" + std::to_string(kids[0]) + "/environ"));
    for (std::string v; std::getline(environ, v, '\0');)
      if (v.rfind("NOTIFY_SOCKET=", 0) == 0) address = v.substr(14);
    return !address.empty();
  }));
  ASSERT_EQ(address.rfind("@daemonkit-notify/", 0), 0u) << address;

  // The supervisor is stopped while they send, so that the second sender is
  // gone, reaped, when it reads the datagram.
  struct Continue {
    pid_t pid;
    ~Continue() { ::kill(pid, SIGCONT); }  // on any way out
  } resume{supervisor};
  ASSERT_EQ(::kill(supervisor, SIGSTOP), 0);
  ASSERT_TRUE(eventually([&] {
    auto st = read_stat(supervisor);
    return st && st->state == 'T';
  }));
  ProcessGuard stranger(send_from_child(address, "STATUS=stranger\nREADY=1", 0, true));
  pid_t other_user = send_from_child(address, "STATUS=forged\nREADY=1", 65534, false);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(other_user, &wstatus, 0), other_user);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;
  ASSERT_EQ(::kill(supervisor, SIGCONT), 0);
  // Datagrams are read in order: both are judged before the payload's own.
  write_file(go, "");
  auto s = started.get();
  EXPECT_EQ(s.result.exit_code, 0) << s.result.describe();
  auto st = status();
  EXPECT_EQ(st.out.find("stranger"), std::string::npos) << st.describe();
  EXPECT_EQ(st.out.find("forged"), std::string::npos) << st.describe();
  const std::string log = read_file(out);
  EXPECT_NE(
      log.find("ignored a notification from pid " + std::to_string(stranger.pid()) + " (uid 0)"),
      std::string::npos)
      << log;
  EXPECT_NE(
      log.find("ignored a notification from pid " + std::to_string(other_user) + " (uid 65534)"),
      std::string::npos)
      << log;
}

TEST_F(Daemonkit, PayloadDyingBeforeReadyFailsTheStartAtOnceNamingItsStatus) {
  auto begin = std::chrono::steady_clock::now();
  auto s = start({"--notify", "--ready-timeout", "20"},
                 {payload_path("notifier"), "sleep=100", "exit=3"});
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(s.result.exit_code, 1) << s.result.describe();
  EXPECT_NE(s.result.err.find("exited with 3"), std::string::npos) << s.result.describe();
  EXPECT_LT(took, 5s) << "must not wait for the ready timeout";
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Daemonkit, ReadyTimeoutFailsTheStartAndLeavesNothing) {
  auto s =
      start({"--notify", "--ready-timeout", "0.5"}, {payload_path("notifier"), "hang", dir / "x"});
  EXPECT_EQ(s.result.exit_code, 1) << s.result.describe();
  EXPECT_NE(s.result.err.find("not ready within 0.5 s"), std::string::npos) << s.result.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(eventually([&] { return processes_mentioning(dir.path().string()).empty(); }, 2s));
}

TEST_F(Daemonkit, ConfirmedReloadReturnsOnlyAfterReloadingThenReady) {
  auto s = start({"--notify", "--reload-notify"},
                 {payload_path("notifier"), "send=READY=1", "confirm-reload"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  auto begin = std::chrono::steady_clock::now();
  auto r = dk({"reload", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 100ms) << "returned before READY=1";
}

TEST_F(Daemonkit, ConfirmedReloadFailsOnSilenceAndOnDeath) {
  auto s = start({"--notify", "--reload-notify"},
                 {payload_path("notifier"), "ignore-hup", "send=READY=1", "hang"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  auto r = dk({"reload", "--pidfile", pidfile, "--timeout", "0.3"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("no confirmation within 0.3 s"), std::string::npos) << r.describe();
  dk({"stop", "--pidfile", pidfile});
  // A payload that dies of the SIGHUP.
  s = start({"--notify", "--reload-notify"}, {payload_path("notifier"), "send=READY=1", "hang"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("killed by SIGHUP"), std::string::npos) << r.describe();
}

TEST_F(Daemonkit, RespawnRestartsAKilledPayloadUntilStopped) {
  auto s = start({"--respawn"}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  guards[1].kill_now();
  pid_t next = 0;
  ASSERT_TRUE(eventually([&] {
    auto kids = children_of(s.supervisor);
    next = kids.empty() ? 0 : kids[0];
    return next != 0 && next != s.payload;
  }));
  guards.emplace_back(next);
  // 0 once the new payload runs (it was recorded when it had executed).
  EXPECT_TRUE(eventually([&] { return status().exit_code == 0; })) << status().describe();
  EXPECT_EQ(pid_in(pidfile), s.supervisor) << "the supervisor stays; the pidfile names it";
  auto r = dk({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (auto& g : guards) EXPECT_TRUE(g.exited());
}

TEST_F(Daemonkit, StatusCountsTheRestartsThatHappenedNotOneStillWaiting) {
  std::string log = dir / "out.log";
  auto s = start({"--respawn", "--stdout", log}, {"/bin/sh", "-c", "echo run; exit 1"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  // Delays grow 100, 200, 400, 800, 1600, 3200 ms: once the sixth is
  // announced, five restarts have happened and the sixth waits 3.2 s.
  ASSERT_TRUE(eventually([&] { return read_file(log).find("(restart 6)") != std::string::npos; }))
      << read_file(log);
  auto st = status();
  // No payload runs while the sixth restart waits: "restarting", 150.
  EXPECT_EQ(st.exit_code, 150) << st.describe();
  EXPECT_EQ(st.out.rfind("restarting (pid ", 0), 0U) << st.describe();
  EXPECT_NE(st.out.find("exited with 1; restart 6 in "), std::string::npos) << st.describe();
  EXPECT_NE(st.out.find("restarts: 5\n"), std::string::npos) << st.describe();
  auto json = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_NE(json.out.find("\"restarts\":5"), std::string::npos) << json.describe();
}

TEST_F(Daemonkit, MaxRestartsGivesUpOnACrashLoopAndStatusSaysSo) {
  std::string log = dir / "out.log";
  auto s = start({"--respawn", "--max-restarts", "2", "--stdout", log},
                 {"/bin/sh", "-c", "echo run; exit 1"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_TRUE(guards[0].wait_exit(10s));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("gave up after 2 restarts"), std::string::npos) << st.describe();
  std::istringstream lines(read_file(log));
  int runs = 0;
  for (std::string line; std::getline(lines, line);) runs += line == "run";
  EXPECT_EQ(runs, 3) << "N + 1 runs in all:\n" << read_file(log);
}

TEST_F(Daemonkit, NoRespawnOnListedStatus) {
  auto s = start({"--respawn", "--no-respawn-on", "78"}, {"/bin/sh", "-c", "sleep 0.1; exit 78"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_TRUE(guards[0].wait_exit(10s));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("exited with 78"), std::string::npos) << st.describe();
}

TEST_F(Daemonkit, WatchdogKillsAPayloadThatStopsPingingAndStatusSaysSo) {
  std::string out = dir / "out.log";
  auto s =
      start({"--notify", "--watchdog", "0.3", "--stdout", out},
            {payload_path("notifier"), "send=READY=1", "sleep=100", "send=WATCHDOG=1", "hang"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_NE(read_file(out).find("WATCHDOG_USEC=300000"), std::string::npos) << read_file(out);
  EXPECT_NE(read_file(out).find("WATCHDOG_PID=" + std::to_string(s.payload)), std::string::npos)
      << read_file(out);
  EXPECT_TRUE(guards[0].wait_exit(10s));
  auto st = status();
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("watchdog timeout"), std::string::npos) << st.describe();
}

TEST_F(Daemonkit, WatchdogPingsKeepThePayloadAlive) {
  auto s = start({"--notify", "--watchdog", "0.3"},
                 {payload_path("notifier"), "send=READY=1", "ping=50"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_FALSE(guards[1].wait_exit(1000ms)) << "killed although it pinged";
  EXPECT_EQ(status().exit_code, 0);
}

TEST_F(Daemonkit, LogRotationKeepsWholeLinesAndTheRequestedNumberOfFiles) {
  std::string log = dir / "out.log";
  auto s = start({"--stdout", log, "--log-max-size", "1K", "--log-keep", "2"},
                 {"/bin/sh", "-c",
                  "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxx; "
                  "i=$((i+1)); done; exec sleep 1000"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return read_file(log).find("line-199-") != std::string::npos; }));
  EXPECT_TRUE(std::filesystem::exists(log + ".1"));
  EXPECT_TRUE(std::filesystem::exists(log + ".2"));
  EXPECT_FALSE(std::filesystem::exists(log + ".3"));
  for (const auto& f : {log, log + ".1", log + ".2"}) {
    std::string text = read_file(f);
    EXPECT_LE(text.size(), 1024U) << f;
    EXPECT_EQ(text.back(), '\n') << f;
    EXPECT_EQ(text.rfind("line-", 0), 0U) << f;
  }
}

TEST_F(Daemonkit, IdleSupervisorNeverWakesUp) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  auto switches = [&] {
    auto st = read_status(s.supervisor);
    return st["voluntary_ctxt_switches"] + "/" + st["nonvoluntary_ctxt_switches"];
  };
  std::this_thread::sleep_for(100ms);  // let start-up settle
  auto before = switches();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(switches(), before) << "the supervisor woke up while idle";
}

TEST_F(Daemonkit, RunExitsWithThePayloadsStatus) {
  auto r = dk({"run", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.describe();
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  r = dk({"run", "--", "/bin/sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGSEGV) << r.describe();
  r = dk({"run", "--", "no-such-program-dk"});
  EXPECT_EQ(r.exit_code, 5) << r.describe();
}

TEST_F(Daemonkit, RunForwardsSigtermToTheGroupAndExits143) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::execl(daemonkit_path().c_str(), "daemonkit", "run", "--pidfile", pidfile.c_str(), "--",
            "/bin/sleep", "1000", static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard guard(pid);
  ASSERT_TRUE(eventually([&] { return lock_holder(pidfile) == pid && !children_of(pid).empty(); }));
  ProcessGuard payload(children_of(pid)[0]);
  EXPECT_EQ(status().exit_code, 0);
  ::kill(pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 143);
  EXPECT_TRUE(payload.exited());
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

TEST_F(Daemonkit, RunForwardsReadinessToTheOuterNotifySocket) {
  std::string path = dir / "outer.sock";
  int sock = dktest::bind_datagram_socket(path);
  ASSERT_GE(sock, 0);
  RunOptions o;
  o.extra_env.push_back("NOTIFY_SOCKET=" + path);
  auto r = dk({"run", "--notify", "--", payload_path("notifier"), "send=READY=1", "exit=0"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("NOTIFY_SOCKET=@daemonkit-notify/"), std::string::npos)
      << "the payload must see the private socket, never the outer one\n"
      << r.describe();
  std::string received;
  char buf[256];
  for (ssize_t n; (n = ::recv(sock, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
    received.append(buf, static_cast<size_t>(n)) += '|';
  ::close(sock);
  size_t readies = 0;
  for (size_t at = 0; (at = received.find("READY=1", at)) != std::string::npos; ++at) ++readies;
  EXPECT_EQ(readies, 1U) << "the outer manager hears READY=1 once: " << received;
  EXPECT_NE(received.find("MAINPID="), std::string::npos) << received;
}

TEST_F(Daemonkit, HostilePidfilesSignalNothing) {
  pid_t stranger = ::fork();
  ASSERT_GE(stranger, 0);
  if (stranger == 0) {
    for (;;) ::pause();
  }
  ProcessGuard stranger_guard(stranger);
  for (const std::string& content :
       {std::string("1\n"), std::string("garbage\n"), std::string(""),
        std::string(1 << 20, '9') + "\n", std::to_string(stranger) + "\n"}) {
    write_file(pidfile, content);
    auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("not running"), std::string::npos) << r.describe();
    EXPECT_NE(status().exit_code, 0);
    EXPECT_EQ(dk({"reload", "--pidfile", pidfile}).exit_code, 7);
    EXPECT_EQ(dk({"reopen", "--pidfile", pidfile}).exit_code, 7);
    EXPECT_TRUE(alive(stranger));
    std::filesystem::remove(pidfile);
  }
}

TEST_F(Daemonkit, RestartReplacesTheDaemon) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1);
  for (int i = 0; i < 5; ++i) {
    auto r = dk({"restart", "--pidfile", pidfile, "--", "/bin/sleep", "1000"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    pid_t sup = pid_in(pidfile);
    guards.emplace_back(sup);
    for (pid_t c : children_of(sup)) guards.emplace_back(c);
    EXPECT_EQ(lock_holder(pidfile), sup);
  }
  EXPECT_TRUE(guards[0].exited());
  EXPECT_TRUE(guards[1].exited());
}

}  // namespace

namespace {

// Regressions found by review, each reproduced first.

TEST_F(Daemonkit, PayloadRunningAsAnotherUserDiesWithItsSupervisor) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for --user";
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto s = start({"--user", "nobody"}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  guards[0].kill_now();
  EXPECT_TRUE(guards[1].wait_exit(5000ms))
      << "the credential change must not clear the parent-death signal";
  auto again = start({"--user", "nobody"}, sleeper());
  EXPECT_EQ(again.result.exit_code, 0) << again.result.describe();
  EXPECT_EQ(children_of(again.supervisor).size(), 1U);
}

TEST_F(Daemonkit, StopOfAHungSupervisorStillEndsThePayloadsGroup) {
  auto s = start({}, {"/bin/sh", "-c", "sleep 300 & exec sleep 301"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return !children_of(s.payload).empty(); }));
  ProcessGuard helper(children_of(s.payload)[0]);
  ::kill(s.supervisor, SIGSTOP);  // it can no longer do its part
  auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "0.3"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(guards[0].exited());
  EXPECT_TRUE(guards[1].wait_exit(5000ms)) << "payload survived";
  EXPECT_TRUE(helper.wait_exit(5000ms)) << "the payload's forked helper survived stop";
}

TEST_F(Daemonkit, ConcurrentReloadsAndReopensAreAllAnswered) {
  auto s = start({"--notify", "--reload-notify"},
                 {payload_path("notifier"), "send=READY=1", "confirm-reload"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  for (int round = 0; round < 5; ++round) {
    CommandResult a, b, c;
    std::thread t1([&] { a = dk({"reload", "--pidfile", pidfile, "--timeout", "5"}); });
    std::thread t2([&] { b = dk({"reload", "--pidfile", pidfile, "--timeout", "5"}); });
    std::thread t3([&] { c = dk({"reopen", "--pidfile", pidfile}); });
    t1.join();
    t2.join();
    t3.join();
    EXPECT_EQ(a.exit_code, 0) << "round " << round << ": " << a.describe();
    EXPECT_EQ(b.exit_code, 0) << "round " << round << ": " << b.describe();
    EXPECT_EQ(c.exit_code, 0) << "round " << round << ": " << c.describe();
  }
  EXPECT_TRUE(alive(s.payload));
}

TEST_F(Daemonkit, RunUsesTheContractsDefaultsForDirectoryUmaskAndStderr) {
  RunOptions o;
  o.cwd = dir.path().string();
  mode_t old_mask = ::umask(077);  // inherited by run: it must not leak through
  auto r = dk({"run", "--", "/bin/sh", "-c", "umask; pwd"}, o);
  ::umask(old_mask);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "0022\n/\n");
  auto out = dir / "out.log";
  r = dk({"run", "--stdout", out, "--", "/bin/sh", "-c", "echo o; echo e >&2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(read_file(out), "o\n");
  EXPECT_EQ(r.err, "e\n") << "under run, --stderr defaults to run's own";
}

TEST_F(Daemonkit, ReadinessFromADescendantThatLeftTheSessionIsAccepted) {
  auto s = start({"--notify", "--ready-timeout", "10"},
                 {"/bin/sh", "-c",
                  "(setsid " + payload_path("notifier") + " sleep=100 send=READY=1 mark=" +
                      dir.path().string() + " hang &); exec sleep 1000"});
  EXPECT_EQ(s.result.exit_code, 0) << s.result.describe();
  auto r = dk({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  // The setsid'd notifier came back to the supervisor; it must be gone too.
  // (Found by this test's directory on its command line: other tests run
  // notifiers of their own at the same time.)
  EXPECT_TRUE(eventually([&] {
    for (pid_t p : processes_mentioning("mark=" + dir.path().string()))
      if (alive(p)) return false;
    return true;
  }));
}

TEST_F(Daemonkit, RunWithRespawnStoppedBetweenTwoRunsExits143) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(daemonkit_path().c_str(), "daemonkit", "run", "--respawn", "--", "/bin/sh", "-c",
            "exit 4", static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard guard(pid);
  // Let it fail a few times, so that it sits in a backoff delay.
  std::this_thread::sleep_for(400ms);
  ::kill(pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 143);
}

}  // namespace

namespace {

TEST_F(Daemonkit, ChrootRunsAStaticPayloadInsideWithFilesOpenedOutside) {
  if (::geteuid() != 0) GTEST_SKIP() << "--chroot needs root";
  if (!std::filesystem::exists(payload_path("static_payload")))
    GTEST_SKIP() << "no static payload in this build (sanitizer runtimes cannot be static)";
  const std::string root = dir / "root";
  std::filesystem::create_directories(root + "/bin");
  std::filesystem::create_directories(root + "/work");
  std::filesystem::copy_file(payload_path("static_payload"), root + "/bin/payload");
  const std::string out = dir / "out.log";  // the caller's path, outside the root
  auto s = start({"--chroot", root, "--chdir", "/work", "--stdout", out}, {"/bin/payload", "1000"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(s.payload) + "/root"), root);
  EXPECT_TRUE(eventually([&] { return read_file(out) == "cwd=/work host-visible=no\n"; }))
      << read_file(out);
}

TEST_F(Daemonkit, StopSweepsAForkedHelperThatIgnoresSigterm) {
  std::string ready = dir / "helper-ready";
  auto s = start({}, {"/bin/sh", "-c",
                      "(trap '' TERM; touch " + ready + "; exec sleep 1000) & exec sleep 1001"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(ready); }));
  ASSERT_TRUE(eventually([&] { return !children_of(s.payload).empty(); }));
  ProcessGuard helper(children_of(s.payload)[0]);
  ASSERT_TRUE(eventually([&] {  // SIGTERM (bit 15) ignored; sh's & also ignores INT, QUIT
    return (std::stoull(read_status(helper.pid())["SigIgn"], nullptr, 16) & 0x4000) != 0;
  }));
  auto begin = std::chrono::steady_clock::now();
  auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(helper.exited()) << "the helper ignored SIGTERM and outlived stop";
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 4s)
      << "once the payload is gone, what remains of its group gets SIGKILL at once";
}

}  // namespace

namespace {

// JSON checked by Python's parser (the test command installs python3).
bool valid_json(const std::string& text) {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    ADD_FAILURE() << "no /usr/bin/python3 to check the JSON with (apt-get install python3)";
    return false;
  }
  TempDir d;
  write_file(d / "x.json", text);
  return run({"/usr/bin/python3", "-c", "import json,sys; json.load(open(sys.argv[1]))",
              d / "x.json"})
             .exit_code == 0;
}

TEST_F(Daemonkit, StatusShowsThePayloadItsMemoryAndTheLogsLastLines) {
  std::string log = dir / "out.log";
  auto s = start({"--stdout", log, "--notify"},
                 {payload_path("notifier"), "send=STATUS=serving \"all\"|READY=1", "hang"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  auto r = status();
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("running (pid " + std::to_string(s.supervisor) + "): serving \"all\"\n", 0),
            0U)
      << r.out;
  EXPECT_NE(
      r.out.find("payload: pid " + std::to_string(s.payload) + ": " + payload_path("notifier")),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("KiB resident"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    pid=" + std::to_string(s.payload)), std::string::npos)
      << "the log's last lines\n"
      << r.out;
  auto j = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_TRUE(valid_json(j.out)) << j.out;
  EXPECT_NE(j.out.find("\"payload_pid\":" + std::to_string(s.payload)), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"status\":\"serving \\\"all\\\"\""), std::string::npos) << j.out;
  dk({"stop", "--pidfile", pidfile});
  j = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_EQ(j.exit_code, 3);
  EXPECT_EQ(j.out, "{\"state\":\"not running\",\"exit_code\":3,\"pid\":0}\n");
}

TEST_F(Daemonkit, StatusJsonOfADeadDaemonSaysWhy) {
  auto s = start({}, {"/bin/sh", "-c", "sleep 0.1; exit 78"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_TRUE(guards[0].wait_exit(5000ms));
  auto j = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_TRUE(valid_json(j.out)) << j.out;
  EXPECT_NE(j.out.find("\"ended\":\"exited with 78\""), std::string::npos) << j.out;
}

}  // namespace

namespace {

// Found by black-box testing, each reproduced first.

TEST_F(Daemonkit, StartWorksForACallerThatIgnoresSigchld) {
  RunOptions o;
  o.ignore_signals = {SIGCHLD};
  auto r = dk({"start", "--pidfile", pidfile, "--", "/bin/sleep", "1000"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  pid_t sup = pid_in(pidfile);
  ASSERT_GT(sup, 1);
  guards.emplace_back(sup);
  for (pid_t c : children_of(sup)) guards.emplace_back(c);
  EXPECT_EQ(lock_holder(pidfile), sup);
  auto h =
      run({heartbeat_path(), "start", "--pidfile", dir / "hb.pid", "--log", dir / "hb.log"}, o);
  EXPECT_EQ(h.exit_code, 0) << h.describe();
  if (pid_t hb = pid_in(dir / "hb.pid"); hb > 1) guards.emplace_back(hb);
}

TEST_F(Daemonkit, StopEndsAGrandchildThatLeftTheSession) {
  const std::string marker = "1000." + std::to_string(::getpid());
  auto s =
      start({}, {"/bin/sh", "-c", "setsid sh -c 'sleep " + marker + " & wait' & exec sleep 1001"});
  ASSERT_GT(s.payload, 1) << s.result.describe();
  ASSERT_TRUE(eventually([&] { return !processes_mentioning(marker).empty(); }));
  std::vector<ProcessGuard> escaped;
  for (pid_t p : processes_mentioning(marker)) escaped.emplace_back(p);
  auto r = dk({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (auto& e : escaped) EXPECT_TRUE(e.exited()) << "pid " << e.pid() << " outlived stop";
}

TEST_F(Daemonkit, ReopenSignalsNothingEvenWithAVeryLongPidfileName) {
  const std::string long_pidfile = dir / std::string(250, 'p');
  auto r = dk({"start", "--pidfile", long_pidfile, "--stdout", dir / "o.log", "--", "/bin/sh", "-c",
               "while :; do sleep 0.05; done"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  pid_t sup = pid_in(long_pidfile);
  ASSERT_GT(sup, 1);
  guards.emplace_back(sup);
  pid_t payload = children_of(sup).at(0);
  guards.emplace_back(payload);
  r = dk({"reopen", "--pidfile", long_pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(guards.back().wait_exit(300ms)) << "reopen killed a payload without a HUP handler";
  dk({"stop", "--pidfile", long_pidfile});
}

TEST_F(Daemonkit, StatusSaysWhyToUsersWhoCanReadThePidfile) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0)
    GTEST_SKIP() << "needs root and setpriv(1) to ask as another user";
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto s = start({}, {"/bin/sh", "-c", "exit 78"});
  ASSERT_EQ(s.result.exit_code, 0) << s.result.describe();
  EXPECT_TRUE(guards[0].wait_exit(5000ms));
  auto r = run({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                daemonkit_path(), "status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("exited with 78"), std::string::npos) << r.describe();
}

TEST_F(Daemonkit, ThePidfileIsLockedForFlockUsersToo) {
  auto s = start({}, sleeper());
  ASSERT_GT(s.payload, 1) << s.result.describe();
  auto r = run({"/usr/bin/flock", "-n", pidfile, "/bin/true"});
  EXPECT_NE(r.exit_code, 0) << "flock(1) must find the pidfile locked";
  dk({"stop", "--pidfile", pidfile});
  // And a pidfile someone else holds with flock is taken.
  pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::execl("/usr/bin/flock", "flock", (dir / "held.pid").c_str(), "/bin/sleep", "1000",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard guard(holder);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "held.pid"); }));
  std::this_thread::sleep_for(100ms);  // flock(1) creates the file, then locks it
  r = dk({"run", "--pidfile", dir / "held.pid", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("is locked by another process"), std::string::npos) << r.describe();
  for (pid_t c : children_of(holder)) guards.emplace_back(c);
}

}  // namespace
