#include "daemonkit/output.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support.hpp"

using daemonkit::LineBuffer;
using daemonkit::OutputFile;

TEST(LineBuffer, EmitsWholeLinesAndKeepsTheRest) {
  LineBuffer b;
  std::vector<std::string> lines;
  auto emit = [&](std::string_view l) { lines.emplace_back(l); };
  b.feed("one\ntw", emit);
  EXPECT_EQ(lines, std::vector<std::string>{"one\n"});
  b.feed("o\nthree", emit);
  EXPECT_EQ(lines, (std::vector<std::string>{"one\n", "two\n"}));
  b.flush(emit);
  EXPECT_EQ(lines.back(), "three\n") << "a flushed partial line is ended, a complete record";
  EXPECT_TRUE(b.empty());
}

TEST(LineBuffer, CutsALineLongerThanTheLimitIntoCompleteLinesOfAtMostTheLimit) {
  LineBuffer b(8);
  std::vector<std::string> lines;
  b.feed("0123456789abcdefghij\nnext\n", [&](std::string_view l) { lines.emplace_back(l); });
  EXPECT_EQ(lines, (std::vector<std::string>{"0123456\n", "789abcd\n", "efghij\n", "next\n"}));
}

TEST(LineBuffer, CutsTheSameWayHoweverTheBytesArrive) {
  const std::string text = "0123456789abcdefghij\nshort\n" + std::string(20, 'x') + "\n";
  std::vector<std::string> whole, bytewise;
  LineBuffer a(8), b(8);
  a.feed(text, [&](std::string_view l) { whole.emplace_back(l); });
  for (char c : text)
    b.feed(std::string_view(&c, 1), [&](std::string_view l) { bytewise.emplace_back(l); });
  EXPECT_EQ(whole, bytewise);
  for (const auto& l : whole) {
    EXPECT_LE(l.size(), 8U) << l;
    EXPECT_EQ(l.back(), '\n') << l;
  }
}

TEST(LineBuffer, ALineOfExactlyTheLimitStaysWhole) {
  LineBuffer b(8);
  std::vector<std::string> lines;
  auto emit = [&](std::string_view l) { lines.emplace_back(l); };
  b.feed("0123456", emit);  // could still end within the limit: waits
  EXPECT_TRUE(lines.empty());
  b.feed("\n", emit);
  EXPECT_EQ(lines, std::vector<std::string>{"0123456\n"});
  b.feed("01234567\n", emit);  // one byte too long: a piece and a rest
  EXPECT_EQ(lines, (std::vector<std::string>{"0123456\n", "0123456\n", "7\n"}));
}

TEST(LineBuffer, A200KiBLineBecomesPiecesOfAtMost64KiBThatAddUpToIt) {
  const std::string line(200 * 1024, 'x');
  LineBuffer b;  // the supervisor's: 64 KiB
  std::vector<std::string> pieces;
  // In 64 KiB reads, as the supervisor drains a pipe.
  const std::string text = line + "\n";
  for (size_t at = 0; at < text.size(); at += 65536)
    b.feed(std::string_view(text).substr(at, 65536),
           [&](std::string_view l) { pieces.emplace_back(l); });
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(pieces.size(), 4U);
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_LE(p.size(), 65536U);
    ASSERT_EQ(p.back(), '\n');
    joined += p.substr(0, p.size() - 1);
  }
  EXPECT_EQ(joined, line);
}

TEST(OutputFile, RotatesBeforeALineThatWouldPassTheSizeNeverSplittingIt) {
  dktest::TempDir dir;
  auto f = OutputFile::open(dir / "out.log", OutputFile::Rotation{10, 2});
  ASSERT_TRUE(f) << f.error().message();
  ASSERT_TRUE(f->write("aaaa\n"));                          // 5
  ASSERT_TRUE(f->write("bbbb\n"));                          // 10: fits exactly
  ASSERT_TRUE(f->write("cccc\n"));                          // would be 15: rotate first
  ASSERT_TRUE(f->write("a line longer than ten bytes\n"));  // fills a file alone
  ASSERT_TRUE(f->write("dd\n"));
  EXPECT_EQ(dktest::read_file(dir / "out.log"), "dd\n");
  EXPECT_EQ(dktest::read_file(dir / "out.log.1"), "a line longer than ten bytes\n");
  EXPECT_EQ(dktest::read_file(dir / "out.log.2"), "cccc\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "out.log.3")) << "keep is 2";
}

TEST(OutputFile, CountsTheExistingSizeWhenAppending) {
  dktest::TempDir dir;
  dktest::write_file(dir / "out.log", "123456789\n");
  auto f = OutputFile::open(dir / "out.log", OutputFile::Rotation{12, 5});
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->write("abc\n"));
  EXPECT_EQ(dktest::read_file(dir / "out.log.1"), "123456789\n");
  EXPECT_EQ(dktest::read_file(dir / "out.log"), "abc\n");
}

TEST(OutputFile, ReopenFollowsTheOriginalPathAfterARename) {
  dktest::TempDir dir;
  auto f = OutputFile::open(dir / "out.log");
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->write("before\n"));
  ASSERT_EQ(::rename((dir / "out.log").c_str(), (dir / "old.log").c_str()), 0);
  ASSERT_TRUE(f->reopen());
  ASSERT_TRUE(f->write("after\n"));
  EXPECT_EQ(dktest::read_file(dir / "old.log"), "before\n");
  EXPECT_EQ(dktest::read_file(dir / "out.log"), "after\n");
}

TEST(OutputFile, NonRegularFilesAreNeverRotated) {
  auto f = OutputFile::open("/dev/null", OutputFile::Rotation{1, 1});
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->write("line one\n"));
  EXPECT_TRUE(f->write("line two\n"));
  EXPECT_TRUE(std::filesystem::exists("/dev/null"));
}

TEST(OutputFile, NeverFollowsASymbolicLinkAtThePath) {
  dktest::TempDir dir;
  dktest::write_file(dir / "target", "untouched\n");
  ASSERT_EQ(::symlink((dir / "target").c_str(), (dir / "out.log").c_str()), 0);
  auto f = OutputFile::open(dir / "out.log");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message(),
            "open '" + dir / "out.log" + "': is a symbolic link, refusing to follow it");
  // Nor on reopen: the old file stays.
  auto g = OutputFile::open(dir / "real.log");
  ASSERT_TRUE(g);
  ASSERT_EQ(::rename((dir / "out.log").c_str(), (dir / "real.log").c_str()), 0);
  EXPECT_FALSE(g->reopen());
  EXPECT_TRUE(g->write("still here\n"));
  EXPECT_EQ(dktest::read_file(dir / "target"), "untouched\n");
}

TEST(OutputFile, AFifoWithoutAReaderIsAnErrorNamingItNeverAWait) {
  dktest::TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = OutputFile::open(fifo);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message(),
            "open '" + fifo + "': is a FIFO with no reader (No such device or address)");
}

TEST(OutputFile, AFullFifoOrOneWhoseReaderLeftRefusesAWriteWithoutBlocking) {
  dktest::TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto f = OutputFile::open(fifo);
  ASSERT_TRUE(f) << f.error().message();
  const std::string chunk(4096, 'x');
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) refused = !f->write(chunk);  // 4 MB at most
  EXPECT_TRUE(refused) << "a full FIFO must refuse, not block";
  ::close(reader);
  auto sigpipe = ::signal(SIGPIPE, SIG_IGN);  // as the supervisor has it
  auto r = f->write("after the reader left\n");
  ::signal(SIGPIPE, sigpipe);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPIPE);
}

TEST(OutputFile, AsAUserCreatesOpensAndRotatesWithThatUsersPowerOnly) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  struct passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody'";
  daemonkit::Credentials nobody{"nobody", pw->pw_uid, pw->pw_gid, {}};
  dktest::TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string logs = dir / "logs";
  ASSERT_EQ(::mkdir(logs.c_str(), 0755), 0);
  ASSERT_EQ(::chown(logs.c_str(), pw->pw_uid, pw->pw_gid), 0);
  auto f = OutputFile::open(logs + "/out.log", OutputFile::Rotation{8, 2}, nobody);
  ASSERT_TRUE(f) << f.error().message();
  ASSERT_TRUE(f->write("first\n"));
  ASSERT_TRUE(f->write("second\n"));  // rotates: renames as nobody
  struct stat st {};
  for (const auto& p : {logs + "/out.log", logs + "/out.log.1"}) {
    ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_uid, pw->pw_uid) << p << " is created by and for the user";
  }
  // A root-only file, even one the user's directory links to, is not the
  // user's to write.
  dktest::write_file(dir / "secret", "root only\n");
  ASSERT_EQ(::chmod((dir / "secret").c_str(), 0600), 0);
  ASSERT_EQ(::unlink((logs + "/out.log").c_str()), 0);
  ASSERT_EQ(::link((dir / "secret").c_str(), (logs + "/out.log").c_str()), 0);
  auto r = f->reopen();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "open '" + logs + "/out.log': Permission denied");
  EXPECT_FALSE(OutputFile::open(dir / "secret", std::nullopt, nobody));
  EXPECT_EQ(dktest::read_file(dir / "secret"), "root only\n");
  // And root is root again afterwards.
  EXPECT_EQ(::setfsuid(static_cast<uid_t>(-1)), 0);
  EXPECT_TRUE(OutputFile::open(dir / "secret"));
}

TEST(OpenInput, AFifoOpensWithoutWaitingAndADirectoryIsAnError) {
  dktest::TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto fd = daemonkit::open_input(fifo);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "blocking again for the payload";
  auto d = daemonkit::open_input(dir.path());
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, EISDIR);
}

TEST(Syslog, FormatsRfc3164) {
  std::time_t when = 1700000000;  // 2023-11-14 22:13:20 UTC
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  EXPECT_EQ(daemonkit::format_syslog(daemonkit::Level::err, "app", 42, "boom", when),
            "<27>Nov 14 22:13:20 app[42]: boom");
  EXPECT_EQ(daemonkit::format_syslog(daemonkit::Level::info, "app", 7, "ok", 1699000000),
            "<30>Nov  3 08:26:40 app[7]: ok");
}

TEST(Syslog, SendsOneDatagramPerLine) {
  dktest::TempDir dir;
  std::string path = dir / "log";
  int sock = dktest::bind_datagram_socket(path);
  ASSERT_GE(sock, 0);
  auto w = daemonkit::SyslogWriter::open("tagged", path);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE(w->send(daemonkit::Level::info, 99, "hello\n"));
  char buf[256] = {};
  ssize_t n = ::recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  std::string got(buf, static_cast<size_t>(n));
  EXPECT_EQ(got.rfind("<30>", 0), 0U) << got;
  EXPECT_NE(got.find(" tagged[99]: hello"), std::string::npos) << got;
  EXPECT_EQ(got.back(), 'o');
  ::close(sock);
}

TEST(Syslog, MissingSocketIsAClearError) {
  dktest::TempDir dir;
  auto w = daemonkit::SyslogWriter::open("t", dir / "nope");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find(dir / "nope"), std::string::npos);
}
