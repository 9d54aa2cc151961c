#include "daemonkit/fd.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "support.hpp"

using daemonkit::EntryWatch;
using Wake = daemonkit::EntryWatch::Wake;

namespace {

// Far enough never to be reached by a wait that an event ends: a wrong
// answer shows as a failure, not as a slow pass.
std::chrono::steady_clock::time_point far_off() {
  return std::chrono::steady_clock::now() + std::chrono::seconds(60);
}

// Near: for waits that nothing should end.
std::chrono::steady_clock::time_point soon() {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
}

}  // namespace

TEST(EntryWatch, WakesWhenAFileIsRenamedOntoTheName) {
  dktest::TempDir dir;
  const std::string path = dir / "dk.pid.state";
  auto watch = EntryWatch::open(path);
  if (!watch.precise()) GTEST_SKIP() << "inotify cannot be used here";
  ASSERT_TRUE(daemonkit::replace_file(path, "phase=running\n", 0644));
  auto woke = watch.wait_until(far_off());
  ASSERT_TRUE(woke);
  EXPECT_EQ(*woke, Wake::changed);
}

TEST(EntryWatch, WakesWhenTheFileIsWrittenInPlaceOrRemoved) {
  dktest::TempDir dir;
  const std::string path = dir / "x.pid";
  dktest::write_file(path, "");
  auto watch = EntryWatch::open(path);
  if (!watch.precise()) GTEST_SKIP() << "inotify cannot be used here";
  dktest::write_file(path, "1234\n");
  auto woke = watch.wait_until(far_off());
  ASSERT_TRUE(woke);
  EXPECT_EQ(*woke, Wake::changed);
  EXPECT_EQ(*watch.wait_until(soon()), Wake::deadline) << "one change, one wake";
  std::filesystem::remove(path);
  woke = watch.wait_until(far_off());
  ASSERT_TRUE(woke);
  EXPECT_EQ(*woke, Wake::changed);
}

// Other names in the directory (replace_file's temporary files among them)
// and reading the watched file do not wake it: a waiter that looks at the
// file after each wake does not wake itself.
TEST(EntryWatch, OtherNamesAndReadsDoNotWakeIt) {
  dktest::TempDir dir;
  const std::string path = dir / "x.pid";
  dktest::write_file(path, "1234\n");
  auto watch = EntryWatch::open(path);
  if (!watch.precise()) GTEST_SKIP() << "inotify cannot be used here";
  ASSERT_TRUE(daemonkit::replace_file(dir / "x.pid.state", "phase=running\n", 0644));
  dktest::write_file(dir / "y.pid", "5678\n");
  std::filesystem::remove(dir / "y.pid");
  EXPECT_EQ(dktest::read_file(path), "1234\n");
  auto woke = watch.wait_until(soon());
  ASSERT_TRUE(woke);
  EXPECT_EQ(*woke, Wake::deadline);
}

TEST(EntryWatch, WakesWhenTheProcessExits) {
  dktest::TempDir dir;
  int hold[2];
  ASSERT_EQ(::pipe(hold), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(hold[1]);
    char c;
    (void)!::read(hold[0], &c, 1);
    _exit(0);
  }
  ::close(hold[0]);
  auto process = daemonkit::Pidfd::open(child);
  ASSERT_TRUE(process);
  auto watch = EntryWatch::open(dir / "x.pid");
  EXPECT_EQ(*watch.wait_until(soon(), &*process), watch.precise() ? Wake::deadline : Wake::changed)
      << "it runs, nothing changed";
  ::close(hold[1]);  // the child exits
  for (;;) {         // without inotify, ticks come as "changed": look again
    auto woke = watch.wait_until(far_off(), &*process);
    ASSERT_TRUE(woke);
    if (*woke == Wake::changed && !watch.precise()) continue;
    EXPECT_EQ(*woke, Wake::exited);
    break;
  }
  ::waitpid(child, nullptr, 0);
}
