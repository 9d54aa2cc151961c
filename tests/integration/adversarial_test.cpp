// An unprivileged service account attacks its root supervisor through the
// files the supervisor writes for it: `daemonkit start --user nobody --stdout
// DIR/app.log`, where DIR belongs to nobody. Whatever nobody plants there (a
// symbolic link, a hard link, a FIFO) must never lead root's writes, or the
// reads of root's `status`, anywhere nobody could not go itself.
//
// What is right when a trap is found: a start refuses, with one line naming
// the path, and leaves nothing; a running daemon keeps running and keeps its
// old file (reopen, reload), and says why in its log, since ending it would
// hand every service account a way to stop its own supervision unseen.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fixture.hpp"

using namespace dktest;

namespace {

constexpr const char* kSecret = "root-only content, never to be shown or appended to\n";

// A payload that writes a line every 50 ms, says "reloaded" on SIGHUP and
// writes 200 lines of 50 bytes (10 KB) at once on SIGUSR1.
const std::vector<std::string> kPayload = {
    "/bin/sh", "-c",
    "trap 'echo reloaded' HUP; "
    "trap 'i=0; while [ $i -lt 200 ]; do echo burst-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
    "i=$((i+1)); done; echo burst-done' USR1; "
    "while :; do echo tick; sleep 0.05; done"};

class Adversarial : public DaemonkitTest {
 protected:
  std::string userdir = dir / "app";  // nobody's
  std::string log = userdir + "/app.log";
  std::string errlog = userdir + "/err.log";
  std::string secret = dir / "root-only/secret";  // mode 0600 in a 0700 directory
  struct passwd* nobody = nullptr;

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the attack is on a root supervisor";
    nobody = ::getpwnam("nobody");
    if (nobody == nullptr) GTEST_SKIP() << "no user 'nobody' to attack as";
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv(1)";
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(userdir.c_str(), 0755), 0);
    ASSERT_EQ(::chown(userdir.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
    ASSERT_EQ(::mkdir((dir / "root-only").c_str(), 0700), 0);
    write_file(secret, kSecret);
    ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  }

  void TearDown() override {
    if (nobody == nullptr || ::geteuid() != 0) return;
    DaemonkitTest::TearDown();
    EXPECT_EQ(read_file(secret), kSecret) << "root wrote into the root-only file";
  }

  // Runs `script` in /bin/sh as nobody (its own ids, no other groups).
  CommandResult as_nobody(const std::string& script) {
    return run({"/usr/bin/setpriv", "--reuid=" + std::to_string(nobody->pw_uid),
                "--regid=" + std::to_string(nobody->pw_gid), "--clear-groups", "/bin/sh", "-c",
                script});
  }
  std::vector<std::string> start_args(const std::string& command,
                                      std::vector<std::string> options) {
    std::vector<std::string> args = {command,    "--pidfile", pidfile,    "--user", "nobody",
                                     "--stdout", log,         "--stderr", errlog};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), kPayload.begin(), kPayload.end());
    return args;
  }
  // Starts the payload as nobody; guards supervisor and payload.
  pid_t start(std::vector<std::string> options = {}) {
    auto r = dk(start_args("start", std::move(options)));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    pid_t supervisor = pid_in(pidfile);
    if (r.exit_code != 0 || supervisor <= 1) return 0;
    guards.emplace_back(supervisor);
    auto kids = children_of(supervisor);
    if (kids.empty()) return 0;
    guards.emplace_back(kids[0]);
    return kids[0];
  }
  // Replaces `path` at once (rename) with a symbolic link to the secret, as nobody.
  void plant_symlink(const std::string& path) {
    auto r = as_nobody("ln -s '" + secret + "' '" + path + ".new' && mv -f '" + path + ".new' '" +
                       path + "'");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    ASSERT_TRUE(S_ISLNK(st.st_mode));
  }
  bool running(pid_t payload) const {
    return alive(guards.at(0).pid()) && alive(payload) && lock_holder(pidfile) == guards[0].pid();
  }
  uid_t owner(const std::string& path) const {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
  }
  bool status_shows_no_secret() {
    auto st = dk({"status", "--pidfile", pidfile});
    auto json = dk({"status", "--pidfile", pidfile, "--json"});
    const std::string needle = "root-only content";
    return st.out.find(needle) == std::string::npos && json.out.find(needle) == std::string::npos;
  }
};

// The size of the file behind `fd` (the log as it was before the attack).
off_t size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_size : -1;
}

TEST_F(Adversarial, SymlinksPlantedAtTheLogAndItsRotatedNameLeadNoWriteOrReadOfRoots) {
  pid_t payload = start({"--log-max-size", "4K", "--log-keep", "3"});
  ASSERT_GT(payload, 1);
  ASSERT_TRUE(eventually([&] { return read_file(log).find("tick") != std::string::npos; }));
  EXPECT_EQ(owner(log), nobody->pw_uid) << "the supervisor creates the log as the user";
  // The file as it is now: a refused reopen must keep writing there.
  int original = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(original, 0);

  plant_symlink(log + ".1");
  plant_symlink(log);
  EXPECT_TRUE(status_shows_no_secret()) << "root's status read through nobody's link";

  // reopen: refused and said; the daemon runs on, into its old file.
  auto r = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string refused =
      "cannot reopen: open '" + log + "': is a symbolic link, refusing to follow it";
  EXPECT_TRUE(eventually([&] { return read_file(errlog).find(refused) != std::string::npos; }, 5s))
      << read_file(errlog);
  const off_t before = size_of(original);
  EXPECT_TRUE(eventually([&] { return size_of(original) > before; }, 5s))
      << "the old file is kept and written";

  // reload: the same, and the payload gets its SIGHUP.
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(eventually(
      [&] {
        std::string text(static_cast<size_t>(std::max<off_t>(size_of(original), 0)), '\0');
        return ::pread(original, text.data(), text.size(), 0) > 0 &&
               text.find("reloaded") != std::string::npos;
      },
      5s));
  ::close(original);
  EXPECT_TRUE(running(payload));
  EXPECT_EQ(read_file(secret), kSecret);

  // Rotation: 10 KB past the 4 KiB limit renames the links away (a rename
  // never follows one) and creates the log anew, as nobody.
  ASSERT_EQ(::kill(payload, SIGUSR1), 0);
  auto rotated = [&] {
    struct stat st {};
    return ::lstat(log.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           read_file(log).find("burst-done") != std::string::npos;
  };
  EXPECT_TRUE(eventually(rotated, 10s)) << "no rotation into a fresh log";
  EXPECT_EQ(owner(log), nobody->pw_uid) << "a rotated log is created as the user";
  for (const auto& name : {log + ".1", log + ".2", log + ".3"}) {
    struct stat st {};
    if (::lstat(name.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      EXPECT_EQ(st.st_uid, nobody->pw_uid) << name;
  }
  EXPECT_TRUE(running(payload));
  EXPECT_EQ(read_file(secret), kSecret);
  EXPECT_TRUE(status_shows_no_secret());

  // A restart finds the link: the start refuses, naming it, and leaves nothing.
  plant_symlink(log);
  EXPECT_TRUE(status_shows_no_secret());
  r = dk(start_args("restart", {"--log-max-size", "4K", "--log-keep", "3"}));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("'" + log + "': is a symbolic link, refusing to follow it"),
            std::string::npos)
      << r.describe();
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.describe();
  for (auto& g : guards) EXPECT_TRUE(g.wait_exit(5s)) << "pid " << g.pid() << " still runs";
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_EQ(read_file(secret), kSecret);
}

// fs.protected_hardlinks (on by default) keeps nobody from linking to
// root's file; where it is off, or for a link made before the file became
// root's, the file is still not nobody's to write or read. Root plants the
// link here in nobody's stead.
TEST_F(Adversarial, AHardLinkToARootOnlyFileIsNotTheUsersToWriteOrRead) {
  pid_t payload = start();
  ASSERT_GT(payload, 1);
  ASSERT_TRUE(eventually([&] { return read_file(log).find("tick") != std::string::npos; }));
  ASSERT_EQ(::unlink(log.c_str()), 0);
  ASSERT_EQ(::link(secret.c_str(), log.c_str()), 0);
  EXPECT_TRUE(status_shows_no_secret());

  auto r = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string refused = "cannot reopen: open '" + log + "': Permission denied";
  EXPECT_TRUE(eventually([&] { return read_file(errlog).find(refused) != std::string::npos; }, 5s))
      << read_file(errlog);
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(running(payload));
  EXPECT_EQ(read_file(secret), kSecret);

  r = dk(start_args("restart", {}));
  EXPECT_EQ(r.exit_code, 4) << "insufficient privilege\n" << r.describe();
  EXPECT_NE(r.err.find("open '" + log + "': Permission denied"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

// A FIFO that nobody opens for reading would hang root's open for good.
TEST_F(Adversarial, AFifoPlantedAtTheLogNeverHangsTheSupervisor) {
  pid_t payload = start();
  ASSERT_GT(payload, 1);
  ASSERT_TRUE(eventually([&] { return read_file(log).find("tick") != std::string::npos; }));
  auto planted = as_nobody("rm -f '" + log + "' && mkfifo '" + log + "'");
  ASSERT_EQ(planted.exit_code, 0) << planted.describe();

  auto r = dk({"reopen", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string refused = "cannot reopen: open '" + log + "': is a FIFO with no reader";
  EXPECT_TRUE(eventually([&] { return read_file(errlog).find(refused) != std::string::npos; }, 5s))
      << read_file(errlog);
  // The supervisor still answers.
  RunOptions quick;
  quick.timeout = 10s;
  r = dk({"reload", "--pidfile", pidfile, "--timeout", "3"}, quick);
  EXPECT_EQ(r.exit_code, 0) << "the supervisor hangs\n" << r.describe();
  EXPECT_TRUE(running(payload));
  auto st = dk({"status", "--pidfile", pidfile}, quick);
  EXPECT_EQ(st.exit_code, 0) << st.describe();

  auto begin = std::chrono::steady_clock::now();
  r = dk(start_args("restart", {"--ready-timeout", "1"}), quick);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("open '" + log + "': is a FIFO with no reader"), std::string::npos)
      << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
}

}  // namespace
