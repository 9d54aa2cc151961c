// daemonkit's START OPTIONS, checked on the real payload through /proc, and
// its command-line errors, help and version.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "support.hpp"

using namespace dktest;

namespace {

std::string proc(pid_t pid, const std::string& entry) {
  return "/proc/" + std::to_string(pid) + "/" + entry;
}

std::string link_target(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "?" : target.string();
}

std::string canonical(const std::string& path) {
  return std::filesystem::weakly_canonical(path).string();
}

std::string trimmed(std::string s) {
  s.erase(s.find_last_not_of(" \t\n") + 1);
  s.erase(0, s.find_first_not_of(" \t\n"));
  return s;
}

// The fields of /proc/PID/stat after the command name: [0] is field 3.
std::vector<std::string> stat_fields(pid_t pid) {
  std::string text = read_file(proc(pid, "stat"));
  std::vector<std::string> fields;
  auto close = text.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream in(text.substr(close + 1));
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

std::vector<std::string> environment_of(pid_t pid) {
  std::vector<std::string> env;
  std::string text = read_file(proc(pid, "environ"));
  std::istringstream in(text);
  std::string entry;
  while (std::getline(in, entry, '\0'))
    if (!entry.empty()) env.push_back(entry);
  return env;
}

// "Max open files  100  200  files" -> {"100", "200"}.
std::pair<std::string, std::string> limit_of(pid_t pid, const std::string& name) {
  std::istringstream in(read_file(proc(pid, "limits")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream rest(line.substr(name.size()));
    std::string soft, hard;
    rest >> soft >> hard;
    return {soft, hard};
  }
  return {"?", "?"};
}

// Whether some line of a --help text starts (after indentation) with `word`.
bool help_lists(const std::string& help, const std::string& word) {
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first;
    if (words >> first && first == word) return true;
  }
  return false;
}

bool is_pipe(const std::string& target) {
  return target.rfind("pipe:", 0) == 0;
}

// Whether every descriptor that `pid` holds on `path` has O_APPEND (per the
// octal flags in fdinfo), and there is at least one.
bool appends_to(pid_t pid, const std::string& path) {
  int found = 0;
  for (const auto& [fd, target] : fd_targets(pid)) {
    if (target != path) continue;
    std::istringstream in(read_file(proc(pid, "fdinfo/" + std::to_string(fd))));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("flags:", 0) == 0) {
        if ((std::stoul(line.substr(6), nullptr, 8) & O_APPEND) == 0) return false;
        ++found;
      }
  }
  return found > 0;
}

bool has_usage_line(const std::string& err) {
  return err.rfind("Usage: daemonkit", 0) == 0 ||
         err.find("\nUsage: daemonkit") != std::string::npos;
}

class DaemonkitOptions : public ::testing::Test {
 protected:
  TempDir dir;
  std::string pidfile = dir / "dk.pid";
  std::vector<ProcessGuard> guards;
  pid_t supervisor = 0;

  CommandResult dk(std::vector<std::string> args, RunOptions options = {}) {
    args.insert(args.begin(), daemonkit_path());
    return run(args, with_sanitizer_logs(std::move(options)));
  }
  // Under ASan/UBSan, daemons write reports into this test's directory.
  RunOptions with_sanitizer_logs(RunOptions options) {
    const std::string log_path = "log_path=" + (dir / "sanitizer");
    for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
      const char* old = std::getenv(var);
      options.extra_env.push_back(std::string(var) + "=" + (old ? std::string(old) + ":" : "") +
                                  log_path);
    }
    return options;
  }

  // `daemonkit start --pidfile P OPTIONS -- PROGRAM...`, then adopt().
  pid_t start(std::vector<std::string> options, const std::vector<std::string>& program,
              RunOptions run_options = {}) {
    options.insert(options.begin(), {"start", "--pidfile", pidfile});
    options.emplace_back("--");
    options.insert(options.end(), program.begin(), program.end());
    auto r = dk(options, std::move(run_options));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    if (r.exit_code != 0) return 0;
    return adopt();
  }

  // Guards the supervisor named by the pidfile and its one child, the
  // payload; returns the payload's pid (0 on failure).
  pid_t adopt() {
    supervisor = pid_in(pidfile);
    EXPECT_GT(supervisor, 1) << "pidfile: '" << read_file(pidfile) << "'";
    if (supervisor <= 1) return 0;
    guards.emplace_back(supervisor);
    pid_t payload = 0;
    EXPECT_TRUE(eventually([&] {
      std::istringstream children(
          read_file(proc(supervisor, "task/" + std::to_string(supervisor) + "/children")));
      return static_cast<bool>(children >> payload);
    })) << "the supervisor "
        << supervisor << " has no child";
    if (payload > 1) guards.emplace_back(payload);
    return payload;
  }

  void stop() {
    auto r = dk({"stop", "--pidfile", pidfile, "--timeout", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    for (const auto& g : guards) EXPECT_TRUE(g.wait_exit(5s)) << "pid " << g.pid() << " survived";
    EXPECT_FALSE(std::filesystem::exists(pidfile));
  }

  // A usage error: exit 2, a usage line on stderr, nothing on stdout,
  // nothing started.
  void expect_usage_error(const std::vector<std::string>& args) {
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    SCOPED_TRACE("daemonkit" + shown);
    auto r = dk(args);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_TRUE(has_usage_line(r.err)) << r.describe();
    EXPECT_TRUE(r.out.empty()) << r.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }

  void TearDown() override {
    if (std::filesystem::exists(pidfile)) dk({"stop", "--pidfile", pidfile, "--timeout", "2"});
    guards.clear();
    reap_children();
    for (pid_t pid : processes_mentioning(dir.path().string())) {
      ADD_FAILURE() << "left running: pid " << pid;
      ProcessGuard leftover(pid);
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
      if (entry.path().filename().string().rfind("sanitizer", 0) == 0)
        ADD_FAILURE() << "sanitizer report from a daemon:\n" << read_file(entry.path());
  }
};

const std::vector<std::string> kSleep = {"/bin/sleep", "1000"};

TEST_F(DaemonkitOptions, PayloadRunsDetachedWithCleanDefaults) {
  pid_t pid = start({}, kSleep);
  ASSERT_GT(pid, 1);
  EXPECT_EQ(link_target(proc(pid, "cwd")), "/");
  auto status = read_status(pid);
  EXPECT_EQ(status["Umask"], "0022");
  EXPECT_EQ(status["SigBlk"], "0000000000000000");
  EXPECT_EQ(status["SigIgn"], "0000000000000000");
  // Right after execve the dynamic loader briefly holds the files it maps
  // (fd 3): look once sleep(1) is asleep; an inherited descriptor would stay.
  EXPECT_TRUE(eventually(
      [&] { return read_file(proc(pid, "wchan")).find("nanosleep") != std::string::npos; }, 3s))
      << "wchan: " << read_file(proc(pid, "wchan"));
  auto fds = fd_targets(pid);
  std::string listing;
  for (const auto& [fd, target] : fds) listing += " " + std::to_string(fd) + " -> " + target;
  EXPECT_EQ(fds.size(), 3U) << "only 0, 1 and 2 may be open:" << listing;
  EXPECT_EQ(fds[0], "/dev/null");
  EXPECT_EQ(fds[1], "/dev/null");
  EXPECT_EQ(fds[2], "/dev/null");
  auto st = read_stat(pid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pgrp, pid) << "the payload leads its own process group";
  EXPECT_NE(st->session, pid) << "the payload must not be a session leader";
  EXPECT_EQ(st->tty_nr, 0) << "no controlling terminal";
  EXPECT_EQ(st->ppid, supervisor);
  stop();
}

TEST_F(DaemonkitOptions, ChdirAndUmaskApplyToThePayload) {
  std::string work = dir / "work";
  std::filesystem::create_directory(work);
  pid_t pid = start({"--chdir", work, "--umask", "027"}, kSleep);
  ASSERT_GT(pid, 1);
  EXPECT_EQ(link_target(proc(pid, "cwd")), canonical(work));
  EXPECT_EQ(read_status(pid)["Umask"], "0027");
  stop();
}

TEST_F(DaemonkitOptions, StdinIsTheGivenFileAndStdoutStderrAppendToTheirFiles) {
  std::string in = dir / "in.txt", out = dir / "out.log", err = dir / "err.log";
  write_file(in, "hello\n");
  write_file(out, "old out\n");
  write_file(err, "old err\n");
  pid_t pid = start({"--stdin", in, "--stdout", out, "--stderr", err},
                    {"/bin/sh", "-c", "read x; echo got=$x; echo oops >&2; exec sleep 1000"});
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(eventually([&] { return read_file(out) == "old out\ngot=hello\n"; }))
      << read_file(out);
  EXPECT_TRUE(eventually([&] { return read_file(err) == "old err\noops\n"; })) << read_file(err);
  EXPECT_TRUE(eventually([&] { return read_file(proc(pid, "comm")) == "sleep\n"; }));
  auto fds = fd_targets(pid);
  EXPECT_EQ(fds[0], canonical(in));
  // The payload writes to the files itself or through pipes to its
  // supervisor; whoever holds a file holds it in append mode.
  for (int fd : {1, 2}) {
    const std::string file = canonical(fd == 1 ? out : err);
    EXPECT_TRUE(fds[fd] == file || is_pipe(fds[fd])) << fd << " -> " << fds[fd];
    EXPECT_TRUE(appends_to(is_pipe(fds[fd]) ? supervisor : pid, file)) << file;
  }
  stop();
}

TEST_F(DaemonkitOptions, StderrGoesToTheStdoutFileWhenOnlyStdoutIsGiven) {
  std::string out = dir / "out.log";
  pid_t pid =
      start({"--stdout", out}, {"/bin/sh", "-c", "echo one; echo two >&2; exec sleep 1000"});
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(eventually([&] {
    auto text = read_file(out);
    return text.find("one\n") != std::string::npos && text.find("two\n") != std::string::npos;
  })) << read_file(out);
  EXPECT_TRUE(eventually([&] { return read_file(proc(pid, "comm")) == "sleep\n"; }));
  auto fds = fd_targets(pid);
  EXPECT_TRUE(fds[1] == fds[2] || (is_pipe(fds[1]) && is_pipe(fds[2])))
      << fds[1] << " vs " << fds[2];
  EXPECT_TRUE(appends_to(is_pipe(fds[1]) ? supervisor : pid, canonical(out)));
  stop();
}

// Naming the same file twice is asking for one log, not for losing standard
// error (it once went to the supervisor's /dev/null).
TEST_F(DaemonkitOptions, StderrNamedLikeStdoutSharesItsFile) {
  std::string out = dir / "out.log";
  pid_t pid = start({"--stdout", out, "--stderr", out},
                    {"/bin/sh", "-c", "echo one; echo two >&2; exec sleep 1000"});
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(eventually([&] {
    auto text = read_file(out);
    return text.find("one\n") != std::string::npos && text.find("two\n") != std::string::npos;
  })) << read_file(out);
  EXPECT_TRUE(eventually([&] { return read_file(proc(pid, "comm")) == "sleep\n"; }));
  auto fds = fd_targets(pid);
  EXPECT_EQ(fds[1], fds[2]);
  stop();
}
TEST_F(DaemonkitOptions, RelativePidfileAndStdoutAreTakenFromTheCallersDirectory) {
  RunOptions caller;
  caller.cwd = dir.path().string();
  auto r = dk({"start", "--pidfile", "dk.pid", "--stdout", "out.log", "--", "/bin/sh", "-c",
               "echo hi; exec sleep 1000"},
              caller);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  pid_t pid = adopt();
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(eventually([&] { return read_file(dir / "out.log") == "hi\n"; }))
      << read_file(dir / "out.log");
  stop();
}

TEST_F(DaemonkitOptions, EnvAddsAndReplacesVariables) {
  RunOptions caller;
  caller.extra_env = {"DKTEST_KEPT=kept", "DKTEST_REPLACED=old"};
  pid_t pid =
      start({"--env", "A=1", "--env", "DKTEST_REPLACED=new", "--env", "B=x=y"}, kSleep, caller);
  ASSERT_GT(pid, 1);
  auto env = environment_of(pid);
  auto count = [&](const std::string& e) { return std::count(env.begin(), env.end(), e); };
  EXPECT_EQ(count("A=1"), 1);
  EXPECT_EQ(count("B=x=y"), 1);
  EXPECT_EQ(count("DKTEST_KEPT=kept"), 1);
  EXPECT_EQ(count("DKTEST_REPLACED=new"), 1);
  EXPECT_EQ(count("DKTEST_REPLACED=old"), 0);
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.rfind("DKTEST_REPLACED=", 0) == 0; }),
            1);
  stop();
}

TEST_F(DaemonkitOptions, ClearEnvLeavesOnlyTheEnvVariables) {
  RunOptions caller;
  caller.extra_env = {"DKTEST_KEPT=kept"};
  pid_t pid = start({"--clear-env", "--env", "A=1", "--env", "B=2"}, kSleep, caller);
  ASSERT_GT(pid, 1);
  auto env = environment_of(pid);
  std::sort(env.begin(), env.end());
  EXPECT_EQ(env, (std::vector<std::string>{"A=1", "B=2"}));
  stop();
}

// daemonkit itself runs at niceness 3 here: --nice is absolute, not added.
TEST_F(DaemonkitOptions, NiceLimitOomScoreAndNoNewPrivsApplyToThePayload) {
  if (::access("/usr/bin/nice", X_OK) != 0) GTEST_SKIP() << "nice(1) not installed";
  auto r = run({"/usr/bin/nice", "-n", "3", daemonkit_path(), "start", "--pidfile", pidfile,
                "--nice", "5", "--limit", "nofile=100:200", "--limit", "core=0", "--oom-score-adj",
                "500", "--no-new-privs", "--", "/bin/sleep", "1000"},
               with_sanitizer_logs({}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  pid_t pid = adopt();
  ASSERT_GT(pid, 1);
  auto fields = stat_fields(pid);
  ASSERT_GT(fields.size(), 16U);
  EXPECT_EQ(fields[16], "5") << "field 19 of stat: niceness";
  EXPECT_EQ(limit_of(pid, "Max open files"), (std::pair<std::string, std::string>{"100", "200"}));
  EXPECT_EQ(limit_of(pid, "Max core file size"), (std::pair<std::string, std::string>{"0", "0"}));
  EXPECT_EQ(trimmed(read_file(proc(pid, "oom_score_adj"))), "500");
  EXPECT_EQ(read_status(pid)["NoNewPrivs"], "1");
  stop();
}

TEST_F(DaemonkitOptions, UserRunsThePayloadAsThatUserAndGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  struct passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody'";
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  std::vector<gid_t> groups(64);
  int ngroups = static_cast<int>(groups.size());
  ASSERT_GE(::getgrouplist("nobody", gid, groups.data(), &ngroups), 0);
  std::set<std::string> expected_groups;
  for (int i = 0; i < ngroups; ++i)
    expected_groups.insert(std::to_string(groups[static_cast<size_t>(i)]));

  pid_t pid = start({"--user", "nobody"}, kSleep);
  ASSERT_GT(pid, 1);
  auto status = read_status(pid);
  const std::string u = std::to_string(uid), g = std::to_string(gid);
  EXPECT_EQ(status["Uid"], u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(status["Gid"], g + "\t" + g + "\t" + g + "\t" + g);
  std::set<std::string> actual_groups;
  std::istringstream in(status["Groups"]);
  for (std::string x; in >> x;) actual_groups.insert(x);
  EXPECT_EQ(actual_groups, expected_groups) << "the payload has the user's groups, not root's";
  stop();
}

TEST_F(DaemonkitOptions, UserWithAGroupRunsThePayloadWithThatGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  struct passwd* pw = ::getpwnam("nobody");
  struct group* gr = ::getgrnam("daemon");
  if (pw == nullptr || gr == nullptr) GTEST_SKIP() << "no user 'nobody' or group 'daemon'";
  const std::string u = std::to_string(pw->pw_uid), g = std::to_string(gr->gr_gid);
  pid_t pid = start({"--user", "nobody:daemon"}, kSleep);
  ASSERT_GT(pid, 1);
  auto status = read_status(pid);
  EXPECT_EQ(status["Uid"], u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(status["Gid"], g + "\t" + g + "\t" + g + "\t" + g);
  std::istringstream in(status["Groups"]);
  for (std::string x; in >> x;) EXPECT_NE(x, "0") << "root's group must not be kept";
  stop();
}

TEST_F(DaemonkitOptions, UnknownUserIsAUsageErrorAndStartsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  auto r = dk(
      {"start", "--pidfile", pidfile, "--user", "dktest-no-such-user", "--", "/bin/sleep", "1000"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("dktest-no-such-user"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(DaemonkitOptions, ChrootRunsTheProgramFoundInsideTheNewRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "--chroot needs root";
  if (::access("/usr/bin/ldd", X_OK) != 0) GTEST_SKIP() << "ldd(1) not installed";
  // A tiny root: sleep and the libraries ldd names for it.
  const std::string root = dir / "root";
  const std::string sleep_bin = std::filesystem::canonical("/bin/sleep").string();
  auto ldd = run({"/usr/bin/ldd", sleep_bin});
  if (ldd.exit_code != 0) GTEST_SKIP() << "ldd failed: " << ldd.describe();
  std::vector<std::string> libraries;
  std::istringstream lines(ldd.out);
  for (std::string word; lines >> word;)
    if (word[0] == '/') libraries.push_back(word);
  std::filesystem::create_directories(root + "/bin");
  std::filesystem::create_directories(root + "/data");
  std::filesystem::copy_file(sleep_bin, root + "/bin/sleep");
  for (const auto& f : libraries) {
    std::filesystem::create_directories(std::filesystem::path(root + f).parent_path());
    std::filesystem::copy_file(f, root + f, std::filesystem::copy_options::skip_existing);
  }

  // /bin/sh is not in the new root: PROGRAM is looked up inside it.
  auto r = dk({"start", "--pidfile", pidfile, "--chroot", root, "--", "/bin/sh", "-c", "true"});
  EXPECT_EQ(r.exit_code, 5) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));

  std::string out = dir / "out.log";
  pid_t pid = start({"--chroot", root, "--chdir", "/data", "--stdout", out}, kSleep);
  ASSERT_GT(pid, 1);
  EXPECT_EQ(link_target(proc(pid, "root")), canonical(root));
  EXPECT_EQ(link_target(proc(pid, "cwd")), canonical(root + "/data"));
  EXPECT_EQ(link_target(proc(pid, "exe")), canonical(root + "/bin/sleep"));
  // --stdout is the caller's path, opened outside the new root.
  std::string fd1 = fd_targets(pid)[1];
  EXPECT_TRUE(fd1 == canonical(out) || is_pipe(fd1)) << fd1;
  EXPECT_TRUE(appends_to(is_pipe(fd1) ? supervisor : pid, canonical(out)));
  stop();
}

TEST_F(DaemonkitOptions, ChrootThatIsNoDirectoryFailsNamingItNotTheProgram) {
  if (::geteuid() != 0) GTEST_SKIP() << "--chroot needs root";
  const std::string file = dir / "file";
  write_file(file, "");
  struct Case {
    std::string root, says;
  };
  for (const auto& c :
       {Case{dir / "missing", "No such file or directory"}, Case{file, "Not a directory"}}) {
    SCOPED_TRACE(c.root);
    for (const char* command : {"start", "run"}) {
      auto r = dk({command, "--pidfile", pidfile, "--chroot", c.root, "--", "/bin/sleep", "1000"});
      EXPECT_EQ(r.exit_code, 1) << r.describe();
      EXPECT_EQ(r.err, std::string("daemonkit: cannot ") + command + ": change root to '" + c.root +
                           "': " + c.says + "\n");
      EXPECT_FALSE(std::filesystem::exists(pidfile));
      EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
    }
  }
}

TEST_F(DaemonkitOptions, UserAndChrootWithoutRootExitFourAndStartNothing) {
  // As root, daemonkit itself is run as nobody.
  std::vector<std::string> prefix;
  if (::geteuid() == 0) {
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv(1) not installed";
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  for (const std::vector<std::string>& option :
       {std::vector<std::string>{"--user", "nobody"}, {"--chroot", "/"}}) {
    SCOPED_TRACE(option[0]);
    std::vector<std::string> argv = prefix;
    argv.push_back(daemonkit_path());
    argv.insert(argv.end(),
                {"start", "--pidfile", pidfile, option[0], option[1], "--", "/bin/sleep", "1000"});
    auto r = run(argv, with_sanitizer_logs({}));
    EXPECT_EQ(r.exit_code, 4) << r.describe();
    EXPECT_NE(r.err.find(option[0]), std::string::npos) << r.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }
}

TEST_F(DaemonkitOptions, UnopenableStreamFilesFailWithOneLineNamingThemAndLeaveNothing) {
  const std::string path = dir / "missing/file";
  for (const char* option : {"--stdout", "--stderr", "--stdin"}) {
    SCOPED_TRACE(option);
    auto r = dk({"start", "--pidfile", pidfile, option, path, "--", "/bin/sleep", "1000"});
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.exit_code, 2) << "not a usage error\n" << r.describe();
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.describe();
    EXPECT_NE(r.err.find(path), std::string::npos) << r.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }
}

TEST_F(DaemonkitOptions, MissingChdirDirectoryFailsWithOneLineNamingItAndLeavesNothing) {
  const std::string path = dir / "missing";
  auto r = dk({"start", "--pidfile", pidfile, "--chdir", path, "--", "/bin/sleep", "1000"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.exit_code, 2) << "not a usage error\n" << r.describe();
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  EXPECT_NE(r.err.find(path), std::string::npos) << r.describe();
}

TEST_F(DaemonkitOptions, StdinThatIsADirectoryFailsNamingItAndLeavesNothing) {
  const std::string path = dir.path().string();
  auto r = dk({"start", "--pidfile", pidfile, "--stdin", path, "--", "/bin/sleep", "1000"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.err, "daemonkit: cannot start: open standard input '" + path + "': Is a directory\n");
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(DaemonkitOptions, SymlinkedPidfileIsRefusedNamingWhyAndItsTargetUntouched) {
  const std::string target = dir / "precious";
  write_file(target, "keep me\n");
  ASSERT_EQ(::symlink(target.c_str(), pidfile.c_str()), 0);
  for (const char* command : {"start", "run"}) {
    SCOPED_TRACE(command);
    auto r = dk({command, "--pidfile", pidfile, "--", "/bin/sleep", "1000"});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("'" + pidfile + "': is a symbolic link, refusing to follow it"),
              std::string::npos)
        << r.describe();
    EXPECT_EQ(read_file(target), "keep me\n");
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }
}

TEST_F(DaemonkitOptions, UsageErrorsExitTwoWithAUsageLineAndStartNothing) {
  const std::string sleep_bin = "/bin/sleep";
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"start", "--pidfile", pidfile, "--bogus", "--", sleep_bin, "1000"},
      {"start", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile},
      {"start", "--pidfile", pidfile, "--"},
      {"start", "--pidfile", pidfile, "--watchdog", "1", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--reload-notify", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--max-restarts", "3", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--no-respawn-on", "78", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--stdout", dir / "o", "--log-keep", "3", "--", sleep_bin,
       "1000"},
      {"start", "--pidfile", pidfile, "--syslog", "tag", "--stdout", dir / "o", "--", sleep_bin,
       "1000"},
      {"start", "--pidfile", pidfile, "--syslog", "tag", "--stderr", dir / "o", "--", sleep_bin,
       "1000"},
      {"start", "--pidfile", pidfile, "--syslog", "tag", "--log-max-size", "1K", "--", sleep_bin,
       "1000"},
      {"start", "--pidfile", pidfile, "--umask", "8", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--nice", "99", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--limit", "bogus=1", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--oom-score-adj", "1001", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--env", "NOEQUALS", "--", sleep_bin, "1000"},
      {"start", "--pidfile", pidfile, "--chdir"},
      {"stop", "--pidfile", pidfile, "--signal", "NOPE"},
      {"stop", "--pidfile", pidfile, "--stdout", dir / "o"},
      {"stop"},
      {"status", "--pidfile", pidfile, "extra"},
  };
  for (const auto& args : cases) expect_usage_error(args);
}

TEST_F(DaemonkitOptions, MissingProgramExitsFiveNamingItAndLeavesNothing) {
  for (const std::string& program : {dir / "no-such-program", std::string("dktest-no-such-cmd")}) {
    SCOPED_TRACE(program);
    auto r = dk({"start", "--pidfile", pidfile, "--", program, "arg"});
    EXPECT_EQ(r.exit_code, 5) << r.describe();
    EXPECT_NE(r.err.find(program), std::string::npos) << r.describe();
    EXPECT_FALSE(std::filesystem::exists(pidfile));
    EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
  }
}

TEST_F(DaemonkitOptions, ScriptWhoseInterpreterIsMissingExitsFiveNamingTheInterpreter) {
  const std::string program = dir / "script";
  struct Case {
    std::string first_line, says;
  };
  for (const auto& c :
       {Case{"#!/no/such/interpreter -x", "its interpreter '/no/such/interpreter': No such file"},
        Case{"#!/bin/sh\r", "its \"#!\" line ends in a carriage return (DOS line endings)"}}) {
    SCOPED_TRACE(c.first_line);
    write_file(program, c.first_line + "\nexec sleep 1000\n");
    ASSERT_EQ(::chmod(program.c_str(), 0755), 0);
    for (const char* command : {"start", "run"}) {
      auto r = dk({command, "--pidfile", pidfile, "--", program});
      EXPECT_EQ(r.exit_code, 5) << r.describe();
      EXPECT_NE(r.err.find("execute '" + program + "': " + c.says), std::string::npos)
          << r.describe();
      EXPECT_FALSE(std::filesystem::exists(pidfile));
      EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
    }
  }
}

TEST_F(DaemonkitOptions, NonExecutableProgramExitsFiveAndLeavesNothing) {
  std::string program = dir / "not-executable";
  write_file(program, "#!/bin/sh\nexec sleep 1000\n");
  ASSERT_EQ(::chmod(program.c_str(), 0644), 0);
  auto r = dk({"start", "--pidfile", pidfile, "--", program});
  EXPECT_EQ(r.exit_code, 5) << r.describe();
  EXPECT_NE(r.err.find(program), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(pidfile));
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(DaemonkitOptions, HelpListsEveryCommand) {
  auto r = dk({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(r.err.empty()) << r.describe();
  for (const char* word : {"start", "run", "stop", "restart", "reload", "reopen", "status"})
    EXPECT_TRUE(help_lists(r.out, word)) << word << "\n" << r.out;
  EXPECT_EQ(r.out.rfind("Usage: daemonkit", 0), 0U) << r.out;
  EXPECT_TRUE(processes_mentioning(dir.path().string()).empty());
}

TEST_F(DaemonkitOptions, StartHelpListsEveryStartOption) {
  auto r = dk({"start", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(r.err.empty()) << r.describe();
  for (const char* option :
       {"--pidfile",      "--stdout",        "--stderr",       "--stdin",         "--log-max-size",
        "--log-keep",     "--syslog",        "--chdir",        "--umask",         "--user",
        "--env",          "--clear-env",     "--notify",       "--ready-timeout", "--respawn",
        "--max-restarts", "--no-respawn-on", "--watchdog",     "--reload-notify", "--nice",
        "--limit",        "--oom-score-adj", "--no-new-privs", "--chroot"})
    EXPECT_TRUE(help_lists(r.out, option)) << option << "\n" << r.out;
}

TEST_F(DaemonkitOptions, StopHelpListsTimeoutAndSignal) {
  auto r = dk({"stop", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (const char* option : {"--pidfile", "--timeout", "--signal"})
    EXPECT_TRUE(help_lists(r.out, option)) << option << "\n" << r.out;
  EXPECT_FALSE(help_lists(r.out, "--stdout")) << r.out;
}

TEST_F(DaemonkitOptions, VersionPrintsTheNameAndVersion) {
  auto r = dk({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("daemonkit ", 0), 0U) << r.out;
  EXPECT_GT(r.out.size(), std::string("daemonkit \n").size()) << r.out;
}

}  // namespace
