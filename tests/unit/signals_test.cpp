#include "daemonkit/signals.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(SignalHub, SigtermRequestsAStopAndEndsTheWait) {
  auto hub = daemonkit::SignalHub::install();
  ASSERT_TRUE(hub) << hub.error().message();
  ::raise(SIGTERM);
  auto begin = std::chrono::steady_clock::now();
  EXPECT_FALSE((*hub)->wait_for(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_TRUE((*hub)->stop_token().stop_requested());
}

TEST(SignalHub, SighupRunsReloadCallbacksInOrderAndDoesNotStop) {
  auto hub = daemonkit::SignalHub::install();
  ASSERT_TRUE(hub);
  std::string order;
  (*hub)->on_reload([&] { order += 'a'; });
  (*hub)->on_reload([&] { order += 'b'; });
  ::raise(SIGHUP);
  (*hub)->dispatch();
  EXPECT_EQ(order, "ab");
  EXPECT_FALSE((*hub)->stop_requested());
  EXPECT_TRUE((*hub)->wait_for(1ms));
}

TEST(SignalHub, SigchldReapsChildrenAndReportsTheirStatus) {
  auto hub = daemonkit::SignalHub::install();
  ASSERT_TRUE(hub);
  pid_t reaped = 0;
  int status = 0;
  (*hub)->on_child_exit([&](pid_t p, int s) {
    reaped = p;
    status = s;
  });
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(7);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (reaped == 0 && std::chrono::steady_clock::now() < deadline) (*hub)->wait_for(100ms);
  EXPECT_EQ(reaped, child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

TEST(SignalHub, OnlyOneAtATime) {
  auto first = daemonkit::SignalHub::install();
  ASSERT_TRUE(first);
  EXPECT_FALSE(daemonkit::SignalHub::install());
  first->reset();
  EXPECT_TRUE(daemonkit::SignalHub::install());
}

TEST(SignalHub, KeepsTheSignalMaskEmpty) {
  auto hub = daemonkit::SignalHub::install();
  ASSERT_TRUE(hub);
  sigset_t mask;
  ASSERT_EQ(::sigprocmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(::sigismember(&mask, SIGTERM), 0);
  EXPECT_EQ(::sigismember(&mask, SIGHUP), 0);
}
