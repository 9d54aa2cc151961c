// The heartbeat daemon, started for real and inspected through /proc.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "support.hpp"

using namespace dktest;

namespace {

size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

class Heartbeat : public ::testing::Test {
 protected:
  TempDir dir;
  std::string pidfile = dir / "hb.pid";
  std::string log = dir / "hb.log";
  std::vector<ProcessGuard> guards;

  CommandResult hb(std::vector<std::string> args, RunOptions options = {}) {
    args.insert(args.begin(), heartbeat_path());
    return run(args, with_sanitizer_logs(std::move(options)));
  }
  RunOptions with_sanitizer_logs(RunOptions options) {
    return dktest::with_sanitizer_logs(dir.path(), std::move(options));
  }
  std::vector<std::string> with_files(std::vector<std::string> args) {
    args.insert(args.end(), {"--pidfile", pidfile, "--log", log, "--interval", "0.05"});
    return args;
  }
  // Starts the daemon, checks that start returned only once it was up, and
  // guards its pid.
  pid_t start_daemon() {
    auto r = hb(with_files({"start"}));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    pid_t pid = pid_in(pidfile);
    EXPECT_GT(pid, 1) << "pidfile: '" << read_file(pidfile) << "'";
    if (pid > 1) guards.emplace_back(pid);
    return pid;
  }

  void TearDown() override {
    // Kill what the test started (by pid), then make sure nothing else that
    // belongs to this test's directory survived.
    guards.clear();
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
    expect_no_sanitizer_reports(dir.path());
  }
};

TEST_F(Heartbeat, StartReturnsOnlyWhenTheDaemonIsUpAndHoldsTheLock) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  // Checked right after start returned, with no waiting: all must be true now.
  EXPECT_TRUE(alive(pid));
  EXPECT_EQ(read_file(pidfile), std::to_string(pid) + "\n");
  EXPECT_EQ(lock_holder(pidfile), pid);
  EXPECT_EQ(read_file(log).rfind("Daemon started with pid " + std::to_string(pid) + "\n", 0), 0U)
      << read_file(log);
}

TEST_F(Heartbeat, DaemonIsDetachedAsTheRecipeSays) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  auto st = read_stat(pid);
  ASSERT_TRUE(st);
  EXPECT_NE(st->session, pid) << "the daemon must not be a session leader";
  EXPECT_NE(st->pgrp, ::getpgrp());
  EXPECT_NE(st->session, ::getsid(0));
  EXPECT_EQ(st->tty_nr, 0) << "no controlling terminal";
  EXPECT_TRUE(st->ppid == 1 || st->ppid == ::getpid()) << "parent is init or the subreaper";

  auto status = read_status(pid);
  EXPECT_EQ(status["SigBlk"], "0000000000000000");
  EXPECT_EQ(status["SigIgn"], "0000000000000000");
  EXPECT_EQ(status["Umask"], "0022");
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd"), "/");

  // Only: stdio on /dev/null, the pidfile, the log, the self-pipe's two ends.
  auto fds = fd_targets(pid);
  EXPECT_EQ(fds[0], "/dev/null");
  EXPECT_EQ(fds[1], "/dev/null");
  EXPECT_EQ(fds[2], "/dev/null");
  int pipes = 0, others = 0;
  bool has_pidfile = false, has_log = false;
  for (const auto& [fd, target] : fds) {
    if (fd <= 2) continue;
    if (target == pidfile)
      has_pidfile = true;
    else if (target == log)
      has_log = true;
    else if (target.rfind("pipe:", 0) == 0)
      ++pipes;
    else
      ++others;
  }
  EXPECT_TRUE(has_pidfile);
  EXPECT_TRUE(has_log);
  EXPECT_EQ(pipes, 2);
  EXPECT_EQ(others, 0) << "unexpected descriptors leaked into the daemon";
}

TEST_F(Heartbeat, InheritedDescriptorsAndSignalStateDoNotLeakIn) {
  // Give `start` an extra open descriptor, a blocked and an ignored signal.
  std::string leak = dir / "leak";
  int extra = ::open(leak.c_str(), O_WRONLY | O_CREAT, 0644);  // no O_CLOEXEC: inherited
  ASSERT_GE(extra, 0);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  auto old_usr2 = ::signal(SIGUSR2, SIG_IGN);
  pid_t pid = start_daemon();
  ::signal(SIGUSR2, old_usr2);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ::close(extra);
  ASSERT_GT(pid, 1);
  auto status = read_status(pid);
  EXPECT_EQ(status["SigBlk"], "0000000000000000");
  EXPECT_EQ(status["SigIgn"], "0000000000000000");
  for (const auto& [fd, target] : fd_targets(pid))
    EXPECT_NE(target, leak) << "inherited descriptor " << fd << " leaked into the daemon";
}

TEST_F(Heartbeat, NoControllingTerminalWhenStartedFromAPseudoTerminal) {
  Pty pty;
  ASSERT_GE(pty.slave, 0);
  RunOptions o;
  o.stdin_fd = pty.slave;
  o.new_session = true;  // the pty becomes start's controlling terminal
  auto r = hb(with_files({"start"}), o);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  pid_t pid = pid_in(pidfile);
  ASSERT_GT(pid, 1);
  guards.emplace_back(pid);
  auto st = read_stat(pid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->tty_nr, 0);
  EXPECT_NE(st->session, pid);
  for (const auto& [fd, target] : fd_targets(pid))
    EXPECT_EQ(target.find("/dev/pts"), std::string::npos) << "fd " << fd << " -> " << target;
}

// A caller with closed standard descriptors must not trick the daemon into
// holding its lock on descriptor 0-2 (redirecting it would drop the lock).
TEST_F(Heartbeat, ClosedStandardDescriptorsInTheCallerDoNotCostTheLock) {
  for (std::vector<int> closed : {std::vector<int>{0}, {0, 1}, {0, 1, 2}}) {
    SCOPED_TRACE(closed.size());
    RunOptions o;
    o.close_fds = closed;
    auto r = hb(with_files({"start"}), o);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    pid_t pid = pid_in(pidfile);
    ASSERT_GT(pid, 1);
    guards.emplace_back(pid);
    EXPECT_EQ(lock_holder(pidfile), pid);
    EXPECT_EQ(hb({"status", "--pidfile", pidfile}).exit_code, 0);
    r = hb(with_files({"start"}));
    EXPECT_NE(r.out.find("already running (pid " + std::to_string(pid) + ")"), std::string::npos)
        << r.describe();
    r = hb({"stop", "--pidfile", pidfile});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(guards.back().exited());
  }
}

TEST_F(Heartbeat, RelativePidfileIsTakenFromTheCallersDirectory) {
  RunOptions o;
  o.cwd = dir.path().string();
  auto r = hb({"start", "--pidfile", "rel.pid", "--log", "rel.log", "--interval", "0.05"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  pid_t pid = pid_in(dir / "rel.pid");
  ASSERT_GT(pid, 1);
  guards.emplace_back(pid);
  EXPECT_EQ(lock_holder(dir / "rel.pid"), pid);
  EXPECT_NE(read_file(dir / "rel.log").find("Daemon started"), std::string::npos);
  r = hb({"stop", "--pidfile", "rel.pid"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(dir / "rel.pid"));
}

TEST_F(Heartbeat, LogsAliveLinesAtTheInterval) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  ASSERT_TRUE(eventually([&] { return count_lines(read_file(log)) >= 4; }));
  std::string text = read_file(log);
  size_t second_line = text.find('\n') + 1;
  EXPECT_EQ(text.compare(second_line, 14, "Daemon Alive! "), 0) << text;
  // ctime format: "Www Mmm dd hh:mm:ss yyyy"
  std::string line = text.substr(second_line, text.find('\n', second_line) - second_line);
  EXPECT_EQ(line.size(), 14U + 24U) << line;
}

TEST_F(Heartbeat, StatusShowsCommandMemoryAndTheLogsLastLines) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  ASSERT_TRUE(eventually([&] { return count_lines(read_file(log)) >= 3; }));
  auto r = hb({"status", "--pidfile", pidfile, "--log", log});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("  command: " + heartbeat_path() + " start"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KiB resident"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    Daemon Alive! "), std::string::npos) << r.out;
  r = hb({"status", "--pidfile", pidfile, "--log", log, "--json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("{\"state\":\"running\",\"exit_code\":0,\"pid\":" + std::to_string(pid), 0),
            0U)
      << r.out;
  EXPECT_EQ(hb({"start", "--pidfile", pidfile, "--json"}).exit_code, 2) << "status only";
}

// Without --log, status shows the log the running daemon writes (its own
// --log), not the default path, whoever else writes there.
TEST_F(Heartbeat, StatusWithoutLogShowsTheRunningDaemonsLog) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  ASSERT_TRUE(eventually([&] { return count_lines(read_file(log)) >= 2; }));
  auto r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("  log:     " + log + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    Daemon Alive! "), std::string::npos) << r.out;
  r = hb({"status", "--pidfile", pidfile, "--json"});
  EXPECT_NE(r.out.find("\"log\":\"" + log + "\""), std::string::npos) << r.out;
}

// Its command line and its log's path are the daemon's own text: status
// shows control characters and invalid UTF-8 in them escaped, and --json
// stays valid UTF-8.
TEST_F(Heartbeat, StatusEscapesControlCharactersInTheCommandAndTheLogPath) {
  const std::string odd_log = dir / "a\tb\x1b[2J\xff.log";
  auto r = hb({"start", "--pidfile", pidfile, "--log", odd_log, "--interval", "0.05"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const pid_t pid = pid_in(pidfile);
  ASSERT_GT(pid, 1);
  guards.emplace_back(pid);
  ASSERT_TRUE(eventually([&] { return count_lines(read_file(odd_log)) >= 2; }));
  r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string shown = dir.path().string() + "/a\\tb\\x1b[2J\\xff.log";
  EXPECT_NE(r.out.find(" --log " + shown + " --interval"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  log:     " + shown + "\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find_first_of("\t\x1b\xff"), std::string::npos) << r.out;
  r = hb({"status", "--pidfile", pidfile, "--json"});
  EXPECT_NE(r.out.find("\"log\":\"" + dir.path().string() + "/a\\tb\\u001b[2J\\ufffd.log\""),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find_first_of("\t\x1b\xff"), std::string::npos) << r.out;
}

TEST_F(Heartbeat, StatusReportsRunningThenNotRunningAfterStop) {
  EXPECT_EQ(hb({"status", "--pidfile", pidfile}).exit_code, 3);
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  auto r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find(std::to_string(pid)), std::string::npos) << r.out;
  r = hb({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 3) << r.describe();
}

TEST_F(Heartbeat, StopReturnsOnlyOnceTheDaemonIsGoneAndRemovesThePidfile) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  ProcessGuard& daemon = guards.back();
  auto r = hb({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(daemon.exited()) << "stop returned while the daemon still ran";
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  // A second stop is a stop of a stopped daemon: success.
  r = hb({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("not running"), std::string::npos) << r.describe();
}

TEST_F(Heartbeat, StartOfARunningDaemonSucceedsAndStartsNothing) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  auto r = hb(with_files({"start"}));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("already running (pid " + std::to_string(pid) + ")"), std::string::npos)
      << r.describe();
  EXPECT_EQ(pid_in(pidfile), pid);
  EXPECT_EQ(processes_mentioning(dir.path().string()).size(), 1U);
}

TEST_F(Heartbeat, TwentyConcurrentStartsMakeOneDaemon) {
  std::vector<std::thread> threads;
  std::vector<CommandResult> results(20);
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] { results[i] = hb(with_files({"start"})); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto running = processes_mentioning(dir.path().string());
  for (pid_t p : running) guards.emplace_back(p);
  ASSERT_EQ(running.size(), 1U);
  EXPECT_EQ(pid_in(pidfile), running[0]);
  EXPECT_EQ(lock_holder(pidfile), running[0]);
}

TEST_F(Heartbeat, PidfileLeftByAKilledDaemonDoesNotBlockStart) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  guards.back().kill_now();
  auto r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 1) << "dead, pidfile remains\n" << r.describe();
  pid_t second = start_daemon();
  ASSERT_GT(second, 1);
  EXPECT_NE(second, pid);
  EXPECT_EQ(hb({"status", "--pidfile", pidfile}).exit_code, 0);
}

// `stop` removes a stale pidfile under its lock; a `start` at that moment
// must not take the stopping process for a running daemon.
TEST_F(Heartbeat, StopAndStartRacingOnAStalePidfileNeverClaimAPhantomDaemon) {
  for (int i = 0; i < 15; ++i) {
    pid_t pid = start_daemon();
    ASSERT_GT(pid, 1);
    guards.back().kill_now();
    CommandResult stop_result, start_result;
    std::thread stopper([&] { stop_result = hb({"stop", "--pidfile", pidfile}); });
    start_result = hb(with_files({"start"}));
    stopper.join();
    EXPECT_EQ(stop_result.exit_code, 0) << stop_result.describe();
    EXPECT_EQ(start_result.exit_code, 0) << start_result.describe();
    EXPECT_EQ(start_result.out.find("already running"), std::string::npos)
        << "iteration " << i << ": " << start_result.describe();
    for (pid_t p : processes_mentioning(dir.path().string())) guards.emplace_back(p);
    auto status = hb({"status", "--pidfile", pidfile});
    if (status.exit_code == 0) {
      EXPECT_EQ(lock_holder(pidfile), pid_in(pidfile));
      EXPECT_TRUE(alive(pid_in(pidfile)));
    } else {
      EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
    }
    hb({"stop", "--pidfile", pidfile});
  }
}

TEST_F(Heartbeat, StopOfAKilledDaemonRemovesItsStalePidfile) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  guards.back().kill_now();
  auto r = hb({"stop", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_EQ(hb({"status", "--pidfile", pidfile}).exit_code, 3);
}

TEST_F(Heartbeat, MissingPidfileDirectoryFailsWithOneLineAndLeavesNothing) {
  std::string bad = dir / "missing/hb.pid";
  auto r = hb({"start", "--pidfile", bad, "--log", log});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1U) << r.describe();
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.describe();
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  EXPECT_FALSE(std::filesystem::exists(bad));
}

TEST_F(Heartbeat, MissingLogDirectoryFailsWithOneLineAndLeavesNothing) {
  std::string bad = dir / "missing/hb.log";
  auto r = hb({"start", "--pidfile", pidfile, "--log", bad});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1U) << r.describe();
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.describe();
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  EXPECT_FALSE(std::filesystem::exists(pidfile)) << "the pidfile must not be left behind";
}

TEST_F(Heartbeat, SymlinkedPidfileIsRefusedAndItsTargetUntouched) {
  std::string target = dir / "precious";
  write_file(target, "keep me\n");
  ASSERT_EQ(::symlink(target.c_str(), pidfile.c_str()), 0);
  auto r = hb(with_files({"start"}));
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("'" + pidfile + "': is a symbolic link, refusing to follow it"),
            std::string::npos)
      << r.describe();
  EXPECT_EQ(read_file(target), "keep me\n");
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  EXPECT_NE(hb({"status", "--pidfile", pidfile}).exit_code, 0);
}

// Pidfiles that must never lead to a signal. The process named by "an
// unrelated pid" must survive stop, status and reload.
TEST_F(Heartbeat, HostilePidfilesSignalNothing) {
  pid_t stranger = ::fork();
  ASSERT_GE(stranger, 0);
  if (stranger == 0) {
    for (;;) ::pause();
  }
  ProcessGuard stranger_guard(stranger);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"one", "1\n"},
      {"garbage", "garbage\n"},
      {"empty", ""},
      {"huge", std::string(1 << 20, '7') + "\n"},
      {"spaces", " 123 \n"},
      {"unrelated", std::to_string(stranger) + "\n"},
      {"self", std::to_string(::getpid()) + "\n"},
  };
  for (const auto& [name, content] : cases) {
    SCOPED_TRACE(name);
    write_file(pidfile, content);
    auto r = hb({"stop", "--pidfile", pidfile, "--timeout", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("not running"), std::string::npos) << r.describe();
    r = hb({"status", "--pidfile", pidfile});
    EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 3) << r.describe();
    r = hb({"reload", "--pidfile", pidfile});
    EXPECT_EQ(r.exit_code, 7) << r.describe();
    EXPECT_TRUE(alive(stranger));
    std::filesystem::remove(pidfile);
  }
  EXPECT_FALSE(stranger_guard.exited());
}

// -1 and 0 would make kill() hit every process or our own group: run them
// where a mistake cannot hurt, a new pid namespace and session, with a
// canary that must survive.
TEST_F(Heartbeat, PidfilesHoldingMinusOneOrZeroSignalNothingInsideANamespace) {
  if (::access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "unshare(1) not installed";
  for (const char* content : {"-1", "0", "-0", "-99999999999999999999"}) {
    SCOPED_TRACE(content);
    write_file(pidfile, std::string(content) + "\n");
    std::string hbp = heartbeat_path();
    std::string script =
        "sleep 1000 & canary=$!; "
        "\"$0\" stop --pidfile \"$1\" --timeout 1; echo stop=$?; "
        "\"$0\" status --pidfile \"$1\"; echo status=$?; "
        "\"$0\" reload --pidfile \"$1\"; echo reload=$?; "
        "kill -0 $canary && echo canary=alive; kill -9 $canary";
    auto r = run({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--", "/usr/bin/setsid",
                  "/bin/sh", "-c", script, hbp, pidfile});
    if (r.exit_code != 0 && r.out.empty())
      GTEST_SKIP() << "cannot create a pid namespace here: " << r.err;
    EXPECT_NE(r.out.find("stop=0"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("status=3"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("reload=7"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("canary=alive"), std::string::npos) << r.describe();
  }
}

TEST_F(Heartbeat, StopEscalatesToSigkillForADaemonThatIgnoresSigterm) {
  auto r = run({payload_path("stubborn"), pidfile}, with_sanitizer_logs({}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  pid_t pid = pid_in(pidfile);
  ASSERT_GT(pid, 1);
  guards.emplace_back(pid);
  EXPECT_EQ(read_status(pid)["SigIgn"], "0000000000004000");  // SIGTERM ignored
  auto begin = std::chrono::steady_clock::now();
  r = hb({"stop", "--pidfile", pidfile, "--timeout", "0.3"});
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("SIGKILL"), std::string::npos) << r.describe();
  EXPECT_TRUE(guards.back().exited());
  EXPECT_GE(took, std::chrono::milliseconds(300)) << "stop must wait --timeout before SIGKILL";
  // The daemon is the process itself: no supervisor needs time to sweep a
  // group, so SIGKILL follows the timeout (it used to come 2 s later).
  EXPECT_LT(took, std::chrono::milliseconds(1800)) << "SIGKILL must follow --timeout";
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

// A stopped daemon (SIGSTOP) is resumed by stop, so it ends by SIGTERM as
// usual instead of waiting out the timeout in state T.
TEST_F(Heartbeat, StopOfAStoppedDaemonResumesItAndEndsItBySigterm) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  ASSERT_TRUE(eventually([&] { return read_status(pid)["State"].rfind("T", 0) == 0; }));
  auto r = hb({"stop", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.err.find("SIGKILL"), std::string::npos)
      << "it was resumed, not killed: " << r.describe();
  EXPECT_TRUE(guards.back().exited());
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

TEST_F(Heartbeat, TwentyRestartsInARowKeepExactlyOneDaemon) {
  pid_t previous = start_daemon();
  ASSERT_GT(previous, 1);
  for (int i = 0; i < 20; ++i) {
    auto r = hb(with_files({"restart"}));
    ASSERT_EQ(r.exit_code, 0) << "restart " << i << ": " << r.describe();
    pid_t now = pid_in(pidfile);
    ASSERT_GT(now, 1);
    guards.emplace_back(now);
    EXPECT_NE(now, previous);
    EXPECT_FALSE(alive(previous)) << "restart " << i << " left the old daemon";
    EXPECT_EQ(lock_holder(pidfile), now);
    previous = now;
  }
  EXPECT_EQ(processes_mentioning(dir.path().string()).size(), 1U);
}

TEST_F(Heartbeat, ReloadReopensTheLogSoRotationWorks) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  std::string rotated = dir / "hb.log.1";
  ASSERT_EQ(::rename(log.c_str(), rotated.c_str()), 0);
  auto r = hb({"reload", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually([&] { return read_file(log).find("Daemon Alive!") != std::string::npos; }))
      << "no new log at the original path after reload";
  EXPECT_TRUE(alive(pid));
  EXPECT_EQ(pid_in(pidfile), pid);
}

TEST_F(Heartbeat, ReloadOfAStoppedDaemonExitsSeven) {
  auto r = hb({"reload", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 7) << r.describe();
}

TEST_F(Heartbeat, RunStaysInTheForegroundAndStopsOnSigterm) {
  std::string sock_path = dir / "notify.sock";
  int sock = dktest::bind_datagram_socket(sock_path);
  ASSERT_GE(sock, 0);

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::execl(heartbeat_path().c_str(), "heartbeat", "run", "--pidfile", pidfile.c_str(),
            "--interval", "0.05", static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard guard(pid);
  char buf[256] = {};
  struct timeval tv {
    10, 0
  };
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = ::recv(sock, buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0) << "no READY=1 from run";
  EXPECT_NE(std::string(buf).find("READY=1"), std::string::npos) << buf;
  EXPECT_NE(std::string(buf).find("MAINPID=" + std::to_string(pid)), std::string::npos) << buf;
  EXPECT_EQ(pid_in(pidfile), pid);
  EXPECT_EQ(lock_holder(pidfile), pid);
  auto r = hb({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();

  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  n = ::recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  buf[n] = '\0';
  EXPECT_NE(std::string(buf).find("STOPPING=1"), std::string::npos) << buf;
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  ::close(sock);
}

TEST_F(Heartbeat, RunRefusesALockedPidfileNamingTheHolder) {
  pid_t pid = start_daemon();
  ASSERT_GT(pid, 1);
  auto r = hb({"run", "--pidfile", pidfile, "--interval", "0.05"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find(std::to_string(pid)), std::string::npos) << r.describe();
}

TEST_F(Heartbeat, UsageErrorsExitTwoWithAUsageLine) {
  for (auto args : std::vector<std::vector<std::string>>{{},
                                                         {"frobnicate"},
                                                         {"start", "--bogus"},
                                                         {"start", "--interval", "0"},
                                                         {"start", "--interval", "soon"},
                                                         {"stop", "--pidfile"},
                                                         {"start", "extra", "args"}}) {
    auto r = hb(args);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_NE(r.err.find("Usage: heartbeat"), std::string::npos) << r.describe();
    EXPECT_TRUE(r.out.empty());
  }
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Heartbeat, HelpAndVersionGoToStandardOutput) {
  auto r = hb({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"start", "stop", "restart", "status", "reload", "run", "--pidfile",
                           "--log", "--interval", "--timeout"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  r = hb({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("heartbeat ", 0), 0U) << r.out;
}

}  // namespace
