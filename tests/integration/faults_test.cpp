// Hostile conditions: no descriptors to spare, a full filesystem, a storm of
// signals while the daemon starts, and syscalls made to fail on purpose
// (interrupted, refused, out of descriptors, disk full, no fork). Each must
// end in a clear error or a consistent daemon, and never in something left
// behind.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <tuple>

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

// --- Syscalls failing on purpose -------------------------------------------
//
// A build with the fault-injection seam (DAEMONKIT_FAULT_INJECTION: the dev,
// asan and nopidfd presets) makes the calls that $DAEMONKIT_FAULTS names
// fail with the errno it names (src/sys/fault.hpp). Root cannot be refused
// a file and a real disk is rarely full; this can.

class Injected : public ::testing::Test {
 protected:
  TempDir dir;
  const std::string pidfile = dir / "x.pid";
  const std::string out = dir / "out.log";
  const std::string hb_log = dir / "hb.log";

  void SetUp() override {
#ifndef DAEMONKIT_FAULT_INJECTION
    GTEST_SKIP() << "built without the fault-injection seam (DAEMONKIT_FAULT_INJECTION=ON in "
                    "the dev, asan and nopidfd presets; never in release)";
#endif
  }
  void TearDown() override {
    if (std::filesystem::exists(pidfile)) plain({daemonkit_path(), "stop", "--pidfile", pidfile});
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
    expect_no_sanitizer_reports(dir.path());
  }
  // Runs a command with DAEMONKIT_FAULTS=`plan`.
  CommandResult faulty(const std::string& plan, const std::vector<std::string>& argv) {
    RunOptions o = with_sanitizer_logs(dir.path(), {});
    o.extra_env.push_back("DAEMONKIT_FAULTS=" + plan);
    return run(argv, o);
  }
  CommandResult plain(const std::vector<std::string>& argv) {
    return run(argv, with_sanitizer_logs(dir.path(), {}));
  }
  std::vector<std::string> dk_start(std::vector<std::string> program,
                                    std::vector<std::string> options = {}) {
    std::vector<std::string> args = {daemonkit_path(), "start", "--pidfile", pidfile};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), program.begin(), program.end());
    return args;
  }
  std::vector<std::string> hb_start() {
    return {heartbeat_path(), "start", "--pidfile", pidfile, "--log", hb_log, "--interval", "0.05"};
  }
  // A failed start: one line naming the cause, the exit code, nothing left.
  void expect_clean_failure(const CommandResult& r, int code, const std::string& line) {
    EXPECT_EQ(r.exit_code, code) << r.describe();
    EXPECT_EQ(count_lines(r.err), 1U) << r.describe();
    EXPECT_NE(r.err.find(line), std::string::npos) << "expected: " << line << "\n" << r.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile)) << r.describe();
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty()) << r.describe();
  }
};

// Every call on the way is interrupted once (calls 1, 3, 5, ... fail with
// EINTR): opening and writing the pidfile, opening and writing the log.
// Each is retried, so the start succeeds, and so does the stop.
TEST_F(Injected, InterruptedCallsAreRetriedAndTheDaemonStarts) {
  const std::string pidfile_calls =
      "open:/x.pid=EINTR%2,ftruncate:/x.pid=EINTR%2,pwrite:/x.pid=EINTR%2,";
  {
    SCOPED_TRACE("daemonkit");
    auto r = faulty(pidfile_calls + "open:/out.log=EINTR%2,write:/out.log=EINTR%2",
                    dk_start({"/bin/sh", "-c", "seq 1 500; exec sleep 1000"}, {"--stdout", out}));
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    pid_t supervisor = pid_in(pidfile);
    ProcessGuard guard(supervisor);
    EXPECT_EQ(lock_holder(pidfile), supervisor);
    EXPECT_TRUE(eventually([&] { return read_file(out).find("\n500\n") != std::string::npos; }))
        << read_file(out);
    EXPECT_EQ(count_lines(read_file(out)), 500U) << "no line lost, none twice";
    r = faulty(pidfile_calls, {daemonkit_path(), "stop", "--pidfile", pidfile});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(guard.wait_exit(5s));
    EXPECT_FALSE(std::filesystem::exists(pidfile));
  }
  {
    SCOPED_TRACE("heartbeat");
    auto r = faulty(pidfile_calls + "open:/hb.log=EINTR%2,write:/hb.log=EINTR%2", hb_start());
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    pid_t daemon = pid_in(pidfile);
    ProcessGuard guard(daemon);
    EXPECT_EQ(lock_holder(pidfile), daemon);
    EXPECT_TRUE(eventually([&] {
      return read_file(hb_log).find("Daemon Alive!") != std::string::npos;
    })) << read_file(hb_log);
    EXPECT_NE(read_file(hb_log).find("Daemon started with pid " + std::to_string(daemon)),
              std::string::npos);
    r = faulty(pidfile_calls, {heartbeat_path(), "stop", "--pidfile", pidfile});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(guard.wait_exit(5s));
    EXPECT_FALSE(std::filesystem::exists(pidfile));
  }
}

// The pidfile cannot be opened (refused, or no descriptor left) or written
// (disk full): the start says so naming the path and the errno, exits with
// the contract's code (4 for a privilege error), and leaves nothing.
TEST_F(Injected, PidfileFailuresAreReportedWithPathAndCauseAndLeaveNothing) {
  struct Case {
    std::string plan;
    int code;
    std::string cause;
  };
  const Case cases[] = {
      {"open:/x.pid=EACCES", 4, "open '" + pidfile + "': Permission denied"},
      {"open:/x.pid=EMFILE", 1, "open '" + pidfile + "': Too many open files"},
      {"pwrite:/x.pid=ENOSPC", 1, "write '" + pidfile + "': No space left on device"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plan);
    auto r = faulty(c.plan, dk_start({"/bin/sleep", "1000"}));
    expect_clean_failure(r, c.code, "daemonkit: cannot start: " + c.cause);
    r = faulty(c.plan, hb_start());
    expect_clean_failure(r, c.code, "heartbeat: cannot start: " + c.cause);
  }
  // stop cannot open the pidfile: it fails saying so, and signals nothing.
  auto started = plain(dk_start({"/bin/sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.describe();
  const pid_t supervisor = pid_in(pidfile);
  ProcessGuard guard(supervisor);
  auto stopped = faulty("open:/x.pid=EMFILE", {daemonkit_path(), "stop", "--pidfile", pidfile});
  EXPECT_EQ(stopped.exit_code, 1) << stopped.describe();
  EXPECT_NE(stopped.err.find("daemonkit: cannot stop: open '" + pidfile + "': Too many open files"),
            std::string::npos)
      << stopped.describe();
  EXPECT_FALSE(guard.exited());
  EXPECT_EQ(lock_holder(pidfile), supervisor);
  EXPECT_EQ(plain({daemonkit_path(), "stop", "--pidfile", pidfile}).exit_code, 0);
  EXPECT_TRUE(guard.wait_exit(5s));

  // status cannot read the pidfile: "unknown" (4), naming it.
  write_file(pidfile, "12345\n");
  auto r = faulty("open:/x.pid=EACCES", {daemonkit_path(), "status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 4) << r.describe();
  EXPECT_NE(r.err.find("open '" + pidfile + "': Permission denied"), std::string::npos)
      << r.describe();
  std::filesystem::remove(pidfile);
}

// The log cannot be opened: the daemon has locked and written its pidfile by
// then, and must remove it again before the caller hears of the failure.
TEST_F(Injected, LogThatCannotBeOpenedIsReportedWithPathAndCauseAndLeavesNothing) {
  for (const auto& [error, code, text] :
       {std::tuple<std::string, int, std::string>{"EACCES", 4, "Permission denied"},
        {"EMFILE", 1, "Too many open files"}}) {
    SCOPED_TRACE(error);
    auto r = faulty("open:/out.log=" + error, dk_start({"/bin/sleep", "1000"}, {"--stdout", out}));
    expect_clean_failure(r, code, "daemonkit: cannot start: open '" + out + "': " + text);
    r = faulty("open:/hb.log=" + error, hb_start());
    expect_clean_failure(r, code,
                         "heartbeat: cannot start: open log file '" + hb_log + "': " + text);
  }
}

// The disk is full for a moment while the payload writes: its output is
// dropped (it must not block), and once writing works again the log says,
// in the place of the gap, how much was lost and why.
TEST_F(Injected, OutputLostToAFullDiskIsToldInTheLog) {
  auto r = faulty(
      "write:/out.log=ENOSPC*3",
      dk_start({"/bin/sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done"},
               {"--stdout", out}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessGuard guard(pid_in(pidfile));
  const std::string notice = "daemonkit: lost up to ";
  const std::string cause = " bytes of output: write '" + out + "': No space left on device\n";
  ASSERT_TRUE(eventually([&] {
    std::string text = read_file(out);
    auto at = text.find(cause);
    return at != std::string::npos && text.find("\nline", at) != std::string::npos;
  })) << read_file(out);
  const std::string text = read_file(out);
  EXPECT_EQ(text.rfind(notice, 0), 0U) << "the first lines were lost: the notice comes first\n"
                                       << text;
  EXPECT_EQ(text.find("line 0\n"), std::string::npos) << text;
  EXPECT_EQ(plain({daemonkit_path(), "stop", "--pidfile", pidfile}).exit_code, 0);
}

// The library's log file: lines lost to a full disk are counted, and the
// first line written again is preceded by how many were lost and why.
TEST_F(Injected, LogLinesLostToAFullDiskAreToldInTheLog) {
  auto r = faulty("write:/hb.log=ENOSPC*2", hb_start());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessGuard guard(pid_in(pidfile));
  const std::string notice = "2 log lines lost: write '" + hb_log + "': No space left on device\n";
  ASSERT_TRUE(eventually([&] {
    std::string text = read_file(hb_log);
    return text.rfind(notice, 0) == 0 &&
           text.find("Daemon Alive!", notice.size()) != std::string::npos;
  })) << read_file(hb_log);
  EXPECT_EQ(read_file(hb_log).find("Daemon started"), std::string::npos)
      << "the first line was lost, not written late";
  EXPECT_EQ(plain({heartbeat_path(), "stop", "--pidfile", pidfile}).exit_code, 0);
}

// fork fails where the supervisor starts the payload (the third fork along
// start -> first child -> supervisor), then where it restarts it (the
// fourth): named in start's message, then in status.
TEST_F(Injected, FailedForkIsReportedAndLeavesNothing) {
  auto r = faulty("fork=EAGAIN@3", dk_start({"/bin/sleep", "1000"}));
  expect_clean_failure(r, 1,
                       "daemonkit: cannot start: fork to execute '/bin/sleep': Resource "
                       "temporarily unavailable");

  r = faulty("fork=EAGAIN@4", dk_start({"/bin/true"}, {"--respawn"}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessGuard guard(pid_in(pidfile));
  EXPECT_TRUE(guard.wait_exit(10s)) << "the supervisor must give up when it cannot fork";
  auto st = plain({daemonkit_path(), "status", "--pidfile", pidfile});
  EXPECT_EQ(st.exit_code, 1) << st.describe();
  EXPECT_NE(st.out.find("cannot restart: fork to execute '/bin/true': Resource temporarily "
                        "unavailable"),
            std::string::npos)
      << st.describe();
  reap_children();
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  // And a later start works as usual.
  r = plain(dk_start({"/bin/sleep", "1000"}));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(plain({daemonkit_path(), "stop", "--pidfile", pidfile}).exit_code, 0);
}

// Only a test build reads $DAEMONKIT_FAULTS: there a plan it cannot read
// stops the program at once; an installed (release) build ignores it.
TEST(Faults, OnlyABuildWithTheSeamReadsTheFaultPlan) {
  TempDir dir;
  RunOptions o;
  o.extra_env.push_back("DAEMONKIT_FAULTS=open=ENOTANERRNO");
  auto r = run({daemonkit_path(), "status", "--pidfile", dir / "x.pid"}, o);
#ifdef DAEMONKIT_FAULT_INJECTION
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("DAEMONKIT_FAULTS: cannot use the rule 'open=ENOTANERRNO'"),
            std::string::npos)
      << r.describe();
#else
  EXPECT_EQ(r.exit_code, 3) << "a build without the seam must not read DAEMONKIT_FAULTS\n"
                            << r.describe();
#endif
}

}  // namespace
