// Log capture end to end: syslog datagrams, and logrotate with `reopen`.
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "support.hpp"

using namespace dktest;

namespace {

class Logs : public ::testing::Test {
 protected:
  TempDir dir;
  std::string pidfile = dir / "dk.pid";

  void TearDown() override {
    run({daemonkit_path(), "stop", "--pidfile", pidfile, "--timeout", "1"});
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
  }
};

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

}  // namespace
