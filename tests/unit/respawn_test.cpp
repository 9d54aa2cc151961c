#include "supervisor/respawn.hpp"

#include <gtest/gtest.h>

using dkcli::RespawnPolicy;
using namespace std::chrono_literals;

namespace {
constexpr int exited(int code) {
  return code << 8;
}
constexpr int killed(int sig) {
  return sig;
}
}  // namespace

TEST(RespawnPolicy, DelaysDoubleFrom100MsUpToAMinute) {
  RespawnPolicy p(std::nullopt, {});
  auto t = RespawnPolicy::Clock::time_point{};
  std::vector<long long> delays;
  for (int i = 0; i < 12; ++i) {
    auto d = p.on_exit(exited(1), t, t + 1s);
    ASSERT_TRUE(d.restart);
    delays.push_back(d.delay.count());
    t += 2s;
  }
  EXPECT_EQ(delays[0], 100);
  EXPECT_EQ(delays[1], 200);
  EXPECT_EQ(delays[2], 400);
  EXPECT_EQ(delays[9], 51200);
  EXPECT_EQ(delays[10], 60000);
  EXPECT_EQ(delays[11], 60000);
}

TEST(RespawnPolicy, AStableMinuteResetsTheDelay) {
  RespawnPolicy p(std::nullopt, {});
  auto t = RespawnPolicy::Clock::time_point{};
  p.on_exit(exited(1), t, t + 1s);
  p.on_exit(exited(1), t, t + 1s);
  auto d = p.on_exit(killed(9), t, t + 61s);
  EXPECT_EQ(d.delay, 100ms);
}

TEST(RespawnPolicy, GivesUpAfterMaxRestartsOfQuickRuns) {
  RespawnPolicy p(3, {});
  auto t = RespawnPolicy::Clock::time_point{};
  for (int i = 0; i < 3; ++i) {
    auto d = p.on_exit(exited(1), t, t + 1s);
    EXPECT_TRUE(d.restart) << i;
    EXPECT_EQ(p.restarts(), static_cast<unsigned>(i)) << "not before it happened";
    p.restarted();
    t += 2s;
  }
  auto d = p.on_exit(exited(1), t, t + 1s);
  EXPECT_FALSE(d.restart);
  EXPECT_TRUE(d.gave_up);
  EXPECT_EQ(d.why_not, "gave up after 3 restarts in 7 s");
  EXPECT_EQ(p.restarts(), 3U);
}

TEST(RespawnPolicy, GivingUpIsAnEndingWhateverTheLastStatus) {
  RespawnPolicy p(1U, {});
  auto t = RespawnPolicy::Clock::time_point{};
  EXPECT_TRUE(p.on_exit(exited(0), t, t + 1s).restart);
  auto d = p.on_exit(exited(0), t, t + 1s);
  EXPECT_FALSE(d.restart);
  EXPECT_TRUE(d.gave_up) << "a crash loop of clean exits is still given up on";
}

TEST(RespawnPolicy, ZeroMaxRestartsMeansOneRun) {
  RespawnPolicy p(0U, {});
  auto t = RespawnPolicy::Clock::time_point{};
  auto d = p.on_exit(exited(1), t, t + 1s);
  EXPECT_FALSE(d.restart);
  EXPECT_EQ(d.why_not, "gave up after 0 restarts in 1 s");
}

TEST(RespawnPolicy, ListedExitStatusesEndRespawning) {
  RespawnPolicy p(std::nullopt, {78, 2});
  auto t = RespawnPolicy::Clock::time_point{};
  EXPECT_TRUE(p.on_exit(exited(1), t, t + 1s).restart);
  auto d = p.on_exit(exited(78), t, t + 1s);
  EXPECT_FALSE(d.restart);
  EXPECT_FALSE(d.gave_up);
  EXPECT_EQ(d.why_not, "exited with 78: not restarted");
  EXPECT_TRUE(p.on_exit(killed(2), t, t + 1s).restart) << "a signal is not an exit status";
}

TEST(RespawnPolicy, TheRestartAfterAStableRunIsNotPartOfACrashLoop) {
  RespawnPolicy p(1U, {});
  auto t = RespawnPolicy::Clock::time_point{};
  EXPECT_TRUE(p.on_exit(exited(1), t, t + 61s).restart) << "after a stable run";
  t += 62s;
  EXPECT_TRUE(p.on_exit(exited(1), t, t + 1s).restart) << "the first quick restart";
  t += 2s;
  auto d = p.on_exit(exited(1), t, t + 1s);
  EXPECT_FALSE(d.restart) << "3 runs in all: one stable, then N + 1 = 2 quick ones";
  EXPECT_EQ(d.why_not, "gave up after 1 restarts in 3 s");
}
