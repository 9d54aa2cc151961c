#include "daemonkit/log.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "daemonkit/notify.hpp"
#include "support.hpp"

TEST(FileSink, AppendsWholeLinesAndReopensAfterRename) {
  dktest::TempDir dir;
  auto sink = daemonkit::FileSink::open(dir / "app.log");
  ASSERT_TRUE(sink);
  daemonkit::Logger log(std::move(*sink));
  log.info("pid ", 42, " up ", 1.5);
  ASSERT_EQ(std::rename((dir / "app.log").c_str(), (dir / "app.log.1").c_str()), 0);
  log.info("still to the old file");
  ASSERT_TRUE(log.reopen());
  log.info("to the new file\n");  // a trailing newline is not doubled
  EXPECT_EQ(dktest::read_file(dir / "app.log.1"), "pid 42 up 1.5\nstill to the old file\n");
  EXPECT_EQ(dktest::read_file(dir / "app.log"), "to the new file\n");
}

TEST(FileSink, OpenFailureNamesThePath) {
  dktest::TempDir dir;
  auto sink = daemonkit::FileSink::open(dir / "missing/app.log");
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().message(),
            "open log file '" + (dir / "missing/app.log") + "': No such file or directory");
}

TEST(Logger, DropsMessagesAboveTheLevel) {
  dktest::TempDir dir;
  auto sink = daemonkit::FileSink::open(dir / "app.log");
  ASSERT_TRUE(sink);
  daemonkit::Logger log(std::move(*sink));
  log.debug("hidden");
  log.set_level(daemonkit::Level::debug);
  log.debug("shown");
  EXPECT_EQ(dktest::read_file(dir / "app.log"), "shown\n");
}

TEST(StderrSink, UsesPriorityPrefixesOnlyWhenStderrIsTheJournalStream) {
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(daemonkit::StderrSink().priority_prefixes());
  ::setenv("JOURNAL_STREAM", "1:2", 1);
  EXPECT_FALSE(daemonkit::StderrSink().priority_prefixes());
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(daemonkit::StderrSink().priority_prefixes());
}

TEST(Notify, SendsOneDatagramToNotifySocket) {
  dktest::TempDir dir;
  std::string path = dir / "n.sock";
  int sock = dktest::bind_datagram_socket(path);
  ASSERT_GE(sock, 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  auto sent = daemonkit::notify("READY=1\nSTATUS=up");
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(sent) << sent.error().message();
  EXPECT_TRUE(*sent);
  char buf[64] = {};
  ASSERT_EQ(::recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT), 17);
  EXPECT_STREQ(buf, "READY=1\nSTATUS=up");
  ::close(sock);
}

TEST(Notify, AbstractAddressesWork) {
  int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  std::string name = "daemonkit-test-" + std::to_string(::getpid());
  std::memcpy(sa.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&sa), len), 0);
  ASSERT_TRUE(daemonkit::notify_to("@" + name, "WATCHDOG=1"));
  char buf[32] = {};
  EXPECT_EQ(::recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT), 10);
  ::close(sock);
}

TEST(Notify, UnsetSocketIsNotAnError) {
  ::unsetenv("NOTIFY_SOCKET");
  auto sent = daemonkit::notify("READY=1");
  ASSERT_TRUE(sent);
  EXPECT_FALSE(*sent);
}

// Whether this kernel passes a pidfd of the sender (Linux 6.5 and later).
bool kernel_passes_pidfds() {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int on = 1;
  bool yes = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, 76 /* SO_PASSPIDFD */, &on, sizeof on) == 0;
  if (fd >= 0) ::close(fd);
  return yes;
}

TEST(NotifyListener, ReceivesDatagramsWithTheSendersPid) {
  auto listener = daemonkit::NotifyListener::open();
  ASSERT_TRUE(listener) << listener.error().message();
  EXPECT_EQ(listener->address().rfind("@daemonkit-notify/", 0), 0U);
  auto none = listener->receive();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  ASSERT_TRUE(daemonkit::notify_to(listener->address(), "STATUS=warming up\nREADY=1"));
  auto got = listener->receive();
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ((*got)->sender, ::getpid());
  EXPECT_EQ((*got)->uid, ::getuid());
  EXPECT_EQ((*got)->handle.has_value(), kernel_passes_pidfds());
  if ((*got)->handle) {
    EXPECT_EQ((*got)->handle->pid(), ::getpid());
    EXPECT_FALSE((*got)->handle->has_exited());
  }
  auto m = daemonkit::parse_notify((*got)->text);
  EXPECT_TRUE(m.ready);
  EXPECT_FALSE(m.watchdog);
  EXPECT_EQ(m.status, "warming up");
}

TEST(NotifyListener, ASenderThatHasExitedIsKnownToHaveExited) {
  auto listener = daemonkit::NotifyListener::open();
  ASSERT_TRUE(listener) << listener.error().message();
  const std::string address = listener->address();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(daemonkit::notify_to(address, "READY=1") ? 0 : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);
  auto got = listener->receive();
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ((*got)->sender, child);
  // (An older kernel may pass no pidfd for a sender already reaped.)
  if ((*got)->handle) EXPECT_TRUE((*got)->handle->has_exited()) << "reaped before it was read";
}

TEST(ParseNotify, KnownAssignmentsOnly) {
  auto m =
      daemonkit::parse_notify("RELOADING=1\nMONOTONIC_USEC=5\nWATCHDOG=1\nREADY=0\nSTOPPING=1");
  EXPECT_TRUE(m.reloading);
  EXPECT_TRUE(m.watchdog);
  EXPECT_TRUE(m.stopping);
  EXPECT_FALSE(m.ready);
  EXPECT_FALSE(m.status);
}
