#include "daemonkit/control.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>

#include "support.hpp"

using daemonkit::Error;
using daemonkit::ErrorKind;
using daemonkit::exit_code_for;
using daemonkit::ExitCode;
using daemonkit::RunState;

TEST(ExitCode, StatusFollowsLsb) {
  EXPECT_EQ(exit_code_for(RunState::running), ExitCode::success);
  EXPECT_EQ(exit_code_for(RunState::dead_pidfile_remains), ExitCode::failure);
  EXPECT_EQ(exit_code_for(RunState::not_running), ExitCode::not_running);
}

TEST(ExitCode, ErrorsMapByKind) {
  EXPECT_EQ(exit_code_for(Error::from_errno(EACCES, "open", "/x")), ExitCode::privilege);
  EXPECT_EQ(exit_code_for(Error::from_errno(EPERM, "kill", "pid 5")), ExitCode::privilege);
  EXPECT_EQ(exit_code_for(Error::from_errno(ENOENT, "open", "/x")), ExitCode::failure);
  EXPECT_EQ(exit_code_for(Error::because("parse", "x", "bad", ErrorKind::usage)), ExitCode::usage);
  EXPECT_EQ(exit_code_for(Error::because("exec", "x", "missing", ErrorKind::not_installed)),
            ExitCode::not_installed);
}

TEST(ErrorMessage, NamesOperationSubjectAndCause) {
  EXPECT_EQ(Error::from_errno(EACCES, "open", "/run/app.pid").message(),
            "open '/run/app.pid': Permission denied");
  EXPECT_EQ(Error::because("stop", "pid 7", "the process survived SIGKILL").message(),
            "stop 'pid 7': the process survived SIGKILL");
  EXPECT_EQ(Error::from_errno(ENOMEM, "fork", "").message(), "fork: Cannot allocate memory");
}

TEST(StopRequest, RoundTripsSignalAndTimeout) {
  auto v = daemonkit::encode_stop_request({SIGINT, std::chrono::milliseconds(2500)});
  auto r = daemonkit::decode_stop_request(SI_QUEUE, v);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->signal, SIGINT);
  EXPECT_EQ(r->timeout, std::chrono::milliseconds(2500));
  // Rounded up to 100 ms, clamped at 58 hours.
  r = daemonkit::decode_stop_request(
      SI_QUEUE, daemonkit::encode_stop_request({SIGTERM, std::chrono::milliseconds(1)}));
  EXPECT_EQ(r->timeout, std::chrono::milliseconds(100));
  r = daemonkit::decode_stop_request(
      SI_QUEUE, daemonkit::encode_stop_request({SIGTERM, std::chrono::hours(1000)}));
  EXPECT_EQ(r->timeout, std::chrono::milliseconds(209715100));
}

TEST(StopRequest, SignalZeroMeansTheDaemonsOwnStopSignal) {
  auto r = daemonkit::decode_stop_request(
      SI_QUEUE, daemonkit::encode_stop_request({0, std::chrono::seconds(3)}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->signal, 0);
  EXPECT_EQ(r->timeout, std::chrono::seconds(3));
}

TEST(SignalRequest, RoundTripsSignalGroupAndId) {
  const int id = daemonkit::make_request_id();
  EXPECT_GT(id, 0);
  EXPECT_LT(id, 1 << 23);
  auto r = daemonkit::decode_signal_request(SI_QUEUE,
                                            daemonkit::encode_signal_request({SIGUSR1, true, id}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->signo, SIGUSR1);
  EXPECT_TRUE(r->group);
  EXPECT_EQ(r->id, id);
  EXPECT_FALSE(daemonkit::decode_signal_request(SI_USER, 0x100 | SIGUSR1));
  EXPECT_FALSE(daemonkit::decode_signal_request(SI_QUEUE, SIGUSR1)) << "no id";
  EXPECT_FALSE(daemonkit::decode_signal_request(SI_QUEUE, 0x100)) << "no signal";
  EXPECT_FALSE(daemonkit::decode_signal_request(SI_QUEUE, -1));
}

TEST(StopRequest, IgnoresPlainSignalsAndForeignValues) {
  auto v = daemonkit::encode_stop_request({SIGTERM, std::chrono::seconds(1)});
  EXPECT_FALSE(daemonkit::decode_stop_request(SI_USER, v));
  EXPECT_FALSE(daemonkit::decode_stop_request(SI_QUEUE, 0));
  EXPECT_FALSE(daemonkit::decode_stop_request(SI_QUEUE, 12345));
  EXPECT_FALSE(daemonkit::decode_stop_request(SI_QUEUE, 0x5e0be1));
}

TEST(TailLines, ReadsNothingButARegularFileAndNeverThroughALink) {
  dktest::TempDir dir;
  dktest::write_file(dir / "log", "one\ntwo\nthree\n");
  EXPECT_EQ(daemonkit::tail_lines(dir / "log", 2), (std::vector<std::string>{"two", "three"}));
  ASSERT_EQ(::symlink((dir / "log").c_str(), (dir / "link").c_str()), 0);
  EXPECT_TRUE(daemonkit::tail_lines(dir / "link", 2).empty());
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_TRUE(daemonkit::tail_lines(dir / "fifo", 2).empty()) << "and never waits for a writer";
}

TEST(TailLines, AsAUserReadsOnlyWhatThatUserCanRead) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  struct passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody'";
  const daemonkit::Credentials nobody{"nobody", pw->pw_uid, pw->pw_gid, {}};
  dktest::TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  dktest::write_file(dir / "secret", "root only\n");
  ASSERT_EQ(::chmod((dir / "secret").c_str(), 0600), 0);
  dktest::write_file(dir / "public", "for all\n");
  ASSERT_EQ(::chmod((dir / "public").c_str(), 0644), 0);
  EXPECT_TRUE(daemonkit::tail_lines(dir / "secret", 5, nobody).empty());
  EXPECT_EQ(daemonkit::tail_lines(dir / "public", 5, nobody), std::vector<std::string>{"for all"});
  EXPECT_EQ(daemonkit::tail_lines(dir / "secret", 5), std::vector<std::string>{"root only"})
      << "root again afterwards";
}
