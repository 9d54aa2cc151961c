// Log capture end to end: syslog datagrams, logrotate with `reopen`, FIFOs
// as output files, and lines longer than the 64 KiB a record may hold.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <thread>

#include "fixture.hpp"

using namespace dktest;

namespace {

class Logs : public DaemonkitTest {
 protected:
  CommandResult start(const std::vector<std::string>& options,
                      const std::vector<std::string>& program, RunOptions run_options = {}) {
    return start_daemon(options, program, std::move(run_options));
  }
};

// Reads what is there from a non-blocking descriptor, waiting up to
// `timeout` for `needle` to appear.
std::string read_until(int fd, const std::string& needle, std::chrono::milliseconds timeout) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    ::poll(&p, 1, 50);
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// /dev/log belongs to the machine; the test gets its own in a private mount
// namespace: a fresh /dev with the real device nodes bound back in, and a
// stand-in syslog daemon listening at /dev/log.
TEST_F(Logs, SyslogSendsOutputAndErrorLinesAsRfc3164Datagrams) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private mount namespace";
  const std::string script = R"(
    set -e
    D=$1; DK=$2; SINK=$3
    mkdir -p "$D/olddev"
    mount --bind /dev "$D/olddev"
    mount -t tmpfs -o mode=755 tmpfs /dev
    for n in null zero full random urandom; do
      touch "/dev/$n"; mount --bind "$D/olddev/$n" "/dev/$n"
    done
    "$SINK" /dev/log "$D/messages" 2 &
    sink=$!
    i=0; while [ ! -e "$D/messages.ready" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
    set +e
    "$DK" run --syslog mytag -- /bin/sh -c 'echo to-out; echo to-err >&2'
    echo "run=$?"
    wait $sink
    echo "sink=$?"
  )";
  auto r = run({"/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                script, "sh", dir.path().string(), daemonkit_path(), payload_path("syslog_sink")});
  if (r.out.empty()) GTEST_SKIP() << "cannot make a private mount namespace here: " << r.err;
  EXPECT_NE(r.out.find("run=0"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("sink=0"), std::string::npos) << r.describe();
  const std::string messages = read_file(dir / "messages");
  // <facility daemon (3) * 8 + priority>Mmm dd hh:mm:ss TAG[PID]: line
  std::regex info(R"(<30>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d mytag\[(\d+)\]: to-out)");
  std::regex err(R"(<27>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d mytag\[(\d+)\]: to-err)");
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(messages, a, info)) << messages;
  ASSERT_TRUE(std::regex_search(messages, b, err)) << messages;
  EXPECT_EQ(a[1], b[1]) << "both lines carry the payload's pid";
  EXPECT_EQ(messages.find("to-out\n"), messages.rfind("to-out\n")) << "sent once";
}

// Debian's logrotate renames the file three times while a payload writes as
// fast as it can; its postrotate calls `daemonkit reopen`. The payload has no
// SIGHUP handler and must survive; no line may be lost or doubled.
TEST_F(Logs, LogrotateWithReopenLosesNoLine) {
  const std::string logrotate = "/usr/sbin/logrotate";
  if (::access(logrotate.c_str(), X_OK) != 0) GTEST_SKIP() << "logrotate is not installed";
  if (::geteuid() != 0) GTEST_SKIP() << "logrotate's config must belong to root";
  const std::string log = dir / "app.log";
  const std::string conf = dir / "logrotate.conf";
  write_file(conf, log + " {\n  rotate 5\n  nocompress\n  missingok\n  postrotate\n    " +
                       daemonkit_path() + " reopen --pidfile " + pidfile + "\n  endscript\n}\n");
  constexpr int kLines = 60000;
  auto r = run({daemonkit_path(), "start", "--pidfile", pidfile, "--stdout", log, "--",
                payload_path("counter"), std::to_string(kLines), "2000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessGuard supervisor(static_cast<pid_t>(std::atol(read_file(pidfile).c_str())));
  for (int i = 0; i < 3; ++i) {
    // Between logrotate's rename and the reopen the file does not exist.
    ASSERT_TRUE(eventually([&] {
      std::error_code ec;
      auto size = std::filesystem::file_size(log, ec);
      return !ec && size > 4096;
    })) << "rotation "
        << i;
    auto lr = run({logrotate, "-f", "-s", dir / "logrotate.state", conf});
    ASSERT_EQ(lr.exit_code, 0) << lr.describe();
  }
  ASSERT_TRUE(supervisor.wait_exit(60s)) << "the payload did not finish";
  EXPECT_FALSE(std::filesystem::exists(pidfile)) << "exit 0 removes the pidfile";
  std::string all;
  for (const auto& f : {log + ".3", log + ".2", log + ".1", log}) all += read_file(f);
  std::istringstream in(all);
  int expected = 0;
  for (std::string line; std::getline(in, line); ++expected)
    ASSERT_EQ(line, "line " + std::to_string(expected)) << "lost or doubled around here";
  EXPECT_EQ(expected, kLines);
}

// A FIFO as the output file: no reader at start is a clear error, never a
// hang; a reader that goes away costs output, never the daemon.
TEST_F(Logs, AFifoWithoutAReaderFailsTheStartNamingItAndLeavesNothing) {
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  RunOptions o;
  o.timeout = 60s;
  auto begin = std::chrono::steady_clock::now();
  auto r = start({"--stdout", fifo, "--ready-timeout", "1"}, {"/bin/sleep", "1000"}, o);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s) << "start waited for a reader";
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.err, "daemonkit: cannot start: open '" + fifo +
                       "': is a FIFO with no reader (No such device or address)\n")
      << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_FALSE(std::filesystem::exists(pidfile + ".state"));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(Logs, AFifoWhoseReaderGoesAwayNeverEndsTheDaemon) {
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto r = start({"--stdout", fifo}, {"/bin/sh", "-c", "while :; do echo tick; sleep 0.02; done"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_EQ(guards.size(), 2U);
  EXPECT_NE(read_until(reader, "tick\n", 5s).find("tick\n"), std::string::npos);
  ::close(reader);  // the next writes find no reader: EPIPE (and SIGPIPE, unless ignored)
  // The payload writes every 20 ms: in 300 ms, a dozen writes fail.
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(alive(guards[0].pid())) << "the supervisor died of its FIFO's reader leaving";
  EXPECT_TRUE(alive(guards[1].pid())) << "the payload died with it";
  EXPECT_EQ(dk({"status", "--pidfile", pidfile}).exit_code, 0);
  // A new reader gets the output again, after a line that tells the gap.
  reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  const std::string got = read_until(reader, "bytes of output: write '" + fifo, 5s);
  ::close(reader);
  EXPECT_NE(got.find("daemonkit: lost up to "), std::string::npos) << got;
  EXPECT_NE(got.find("bytes of output: write '" + fifo + "': Broken pipe"), std::string::npos)
      << got;
}

TEST_F(Logs, AFullFifoNeverBlocksTheSupervisorOrThePayload) {
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // never reads
  ASSERT_GE(reader, 0);
  // 1 MB, much more than the FIFO and the supervisor's pipe hold.
  auto r = start({"--stdout", fifo}, {"/bin/sh", "-c",
                                      "trap '' HUP; head -c 1000000 /dev/zero | tr '\\0' x; "
                                      "exec sleep 1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_EQ(guards.size(), 2U);
  const std::string comm = "/proc/" + std::to_string(guards[1].pid()) + "/comm";
  EXPECT_TRUE(eventually([&] { return read_file(comm) == "sleep\n"; }, 10s))
      << "the payload is still writing: blocked";
  RunOptions quick;
  quick.timeout = 10s;
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "3"}, quick);
  EXPECT_EQ(r.exit_code, 0) << "the supervisor does not answer: blocked in a write\n"
                            << r.describe();
  ::close(reader);
}

TEST_F(Logs, ReopenOfAFifoWithoutAReaderIsLoggedNeverAHang) {
  const std::string fifo = dir / "fifo";
  const std::string err = dir / "err.log";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto r =
      start({"--stdout", fifo, "--stderr", err}, {"/bin/sh", "-c", "trap '' HUP; exec sleep 1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ::close(reader);
  r = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually(
      [&] {
        return read_file(err).find("daemonkit: cannot reopen: open '" + fifo +
                                   "': is a FIFO with no reader") != std::string::npos;
      },
      5s))
      << read_file(err);
  RunOptions quick;
  quick.timeout = 10s;
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "3"}, quick);
  EXPECT_EQ(r.exit_code, 0) << "the supervisor hangs in open\n" << r.describe();
  for (auto& g : guards) EXPECT_TRUE(alive(g.pid()));
}

// A 200 KiB line under rotation: written as complete lines of at most
// 64 KiB each, and every file begins and ends on a line's boundary.
TEST_F(Logs, ALineOf200KiBIsWrittenInWholePiecesNeverSplitAcrossRotatedFiles) {
  const std::string log = dir / "out.log";
  auto r = start({"--stdout", log, "--log-max-size", "64K", "--log-keep", "9"},
                 {"/bin/sh", "-c",
                  "echo before; head -c 204800 /dev/zero | tr '\\0' x; echo; echo after; "
                  "exec sleep 1000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto files = [&] {
    std::vector<std::string> names;  // oldest first
    for (int n = 9; n >= 1; --n)
      if (std::filesystem::exists(log + "." + std::to_string(n)))
        names.push_back(log + "." + std::to_string(n));
    names.push_back(log);
    return names;
  };
  ASSERT_TRUE(eventually([&] { return read_file(log).find("after\n") != std::string::npos; }, 10s));
  std::string all;
  for (const auto& f : files()) {
    const std::string text = read_file(f);
    ASSERT_FALSE(text.empty()) << f;
    EXPECT_EQ(text.back(), '\n') << f << " ends in the middle of a line";
    EXPECT_LE(text.size(), 65536U) << f;
    all += text;
  }
  std::vector<std::string> lines;
  std::istringstream in(all);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const std::vector<std::string> expected = {"before",
                                             std::string(65535, 'x'),
                                             std::string(65535, 'x'),
                                             std::string(65535, 'x'),
                                             std::string(204800 - 3 * 65535, 'x'),
                                             "after"};
  ASSERT_EQ(lines.size(), expected.size());
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(lines[i], expected[i]) << "line " << i << " (" << lines[i].size() << " bytes)";
  EXPECT_GE(files().size(), 4U) << "each piece fills a file of its own";
}

}  // namespace
