// `daemonkit run` where containers put it: pid 1 of a pid namespace, and on
// a terminal.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sstream>

#include "support.hpp"

using namespace dktest;

namespace {

bool can_unshare_pid() {
  auto r = run({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/true"});
  return r.exit_code == 0;
}

TEST(RunAsPid1, ReapsEveryOrphanAndExitsWithThePayloadsStatus) {
  if (!can_unshare_pid()) GTEST_SKIP() << "cannot create a pid namespace here";
  // The payload leaves 20 orphans behind, which die at once; then it counts
  // the zombies in the namespace (none may remain) and exits with 7.
  const std::string payload =
      "for i in $(seq 20); do (sleep 0.01 &); done; sleep 0.5; "
      "z=0; for s in /proc/[0-9]*/stat; do read -r p c st rest < $s 2>/dev/null && "
      "[ \"$st\" = Z ] && z=$((z+1)); done; echo zombies=$z; exit 7";
  auto r = run({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--", daemonkit_path(),
                "run", "--", "/bin/sh", "-c", payload});
  EXPECT_EQ(r.exit_code, 7) << r.describe();
  EXPECT_NE(r.out.find("zombies=0"), std::string::npos) << r.describe();
}

TEST(RunAsPid1, SigtermToPid1EndsItWithThePayloadsStatusAndNothingSurvives) {
  if (!can_unshare_pid()) GTEST_SKIP() << "cannot create a pid namespace here";
  pid_t unshare = ::fork();
  ASSERT_GE(unshare, 0);
  if (unshare == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(devnull, fd);
    ::execl("/usr/bin/unshare", "unshare", "--pid", "--fork", "--mount-proc", "--",
            daemonkit_path().c_str(), "run", "--", "/bin/sh", "-c",
            "sleep 1000 & sleep 1001 & wait", static_cast<char*>(nullptr));
    _exit(127);
  }
  ProcessGuard guard(unshare);
  // unshare's child is pid 1 of the namespace: daemonkit run.
  pid_t init = 0;
  ASSERT_TRUE(eventually([&] {
    auto kids = children_of(unshare);
    init = kids.empty() ? 0 : kids[0];
    return init != 0 && read_file("/proc/" + std::to_string(init) + "/comm") == "daemonkit\n" &&
           !children_of(init).empty() && children_of(children_of(init)[0]).size() == 2;
  }));
  std::vector<ProcessGuard> inside;
  pid_t payload = children_of(init)[0];
  for (pid_t p : children_of(payload)) inside.emplace_back(p);
  inside.emplace_back(payload);
  ::kill(init, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(unshare, &st, 0), unshare);
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 143) << "the payload (sh) ended by SIGTERM";
  for (auto& p : inside) EXPECT_TRUE(p.wait_exit(5000ms)) << "pid " << p.pid() << " survived";
}

TEST(RunOnATerminal, PayloadsProcessGroupBecomesTheForegroundGroup) {
  Pty pty;
  ASSERT_GE(pty.slave, 0);
  RunOptions o;
  o.stdin_fd = pty.slave;
  o.new_session = true;  // the pty becomes run's controlling terminal
  // Fields 5 and 8 of stat: the process group and the terminal's foreground group.
  auto r = run({daemonkit_path(), "run", "--", "/bin/sh", "-c",
                "read -r a b c d e f g h rest < /proc/self/stat; echo pgrp=$e tpgid=$h"},
               o);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  std::istringstream line(r.out);
  std::string pgrp, tpgid;
  line >> pgrp >> tpgid;
  ASSERT_EQ(pgrp.rfind("pgrp=", 0), 0U) << r.describe();
  EXPECT_EQ(pgrp.substr(5), tpgid.substr(6)) << "the payload's group is in the foreground";
}

}  // namespace
