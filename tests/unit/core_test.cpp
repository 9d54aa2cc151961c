// The supervisor's decisions, state by state, without a process: each test
// feeds events (with the time they happen) and checks the state, the
// deadline and the actions the core returns.
#include "supervisor/core.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>

#include "daemonkit/control.hpp"

using dkcli::Action;
using dkcli::Actions;
using dkcli::Core;
using dkcli::DaemonRecord;
using dkcli::State;
using dkcli::SupervisorConfig;
namespace action = dkcli::action;
namespace event = dkcli::event;
using namespace std::chrono_literals;

namespace {

constexpr int exited(int code) {
  return code << 8;
}
constexpr int killed(int sig) {
  return sig;
}

template <class T>
std::vector<T> all(const Actions& actions) {
  std::vector<T> found;
  for (const auto& a : actions)
    if (const T* t = std::get_if<T>(&a)) found.push_back(*t);
  return found;
}

template <class T>
T only(const Actions& actions) {
  auto found = all<T>(actions);
  EXPECT_EQ(found.size(), 1u) << "expected exactly one of the action";
  return found.empty() ? T{} : found.front();
}

daemonkit::NotifyMessage ready() {
  daemonkit::NotifyMessage m;
  m.ready = true;
  return m;
}

daemonkit::NotifyMessage watchdog_ping() {
  daemonkit::NotifyMessage m;
  m.watchdog = true;
  return m;
}

daemonkit::NotifyMessage reloading() {
  daemonkit::NotifyMessage m;
  m.reloading = true;
  return m;
}

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() {
    config.argv = {"payload", "--flag"};
    config.program = "/usr/bin/payload";
  }

  // Starts the first payload as pid 42 at t0.
  Actions start(Core& core) {
    Actions a = core.start();
    EXPECT_EQ(a.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<action::Spawn>(a.at(0)));
    return core.on(event::Spawned{42}, t0);
  }

  SupervisorConfig config;
  const dkcli::Clock::time_point t0{std::chrono::hours(1)};
};

TEST_F(CoreTest, WithoutNotifyThePayloadIsUpOnceExecuted) {
  Core core(config);
  EXPECT_EQ(core.state(), State::idle);
  Actions a = start(core);
  EXPECT_EQ(core.state(), State::running);
  ASSERT_EQ(a.size(), 2u);
  // Recorded first: `start` returns on ReportReady and reads the record.
  EXPECT_EQ(std::get<action::Save>(a[0]).phase, DaemonRecord::Phase::running);
  EXPECT_TRUE(std::holds_alternative<action::ReportReady>(a[1]));
  EXPECT_FALSE(core.deadline()) << "an idle supervisor must not wake up";
}

TEST_F(CoreTest, WithNotifyItIsUpAtReadyAndNotBefore) {
  config.notify = true;
  config.ready_timeout = 2s;
  Core core(config);
  Actions a = start(core);
  EXPECT_EQ(core.state(), State::starting);
  EXPECT_EQ(only<action::Save>(a).phase, DaemonRecord::Phase::starting);
  EXPECT_TRUE(all<action::ReportReady>(a).empty());
  EXPECT_EQ(core.deadline(), t0 + 2s);

  a = core.on(event::Notified{ready()}, t0 + 1s);
  EXPECT_EQ(core.state(), State::running);
  EXPECT_EQ(only<action::Save>(a).phase, DaemonRecord::Phase::running);
  EXPECT_EQ(all<action::ReportReady>(a).size(), 1u);
  EXPECT_FALSE(core.deadline());
  // A second READY=1 (after a reload) does not report again.
  EXPECT_TRUE(all<action::ReportReady>(core.on(event::Notified{ready()}, t0 + 2s)).empty());
}

TEST_F(CoreTest, NoReadyInTimeKillsEverythingThenFailsTheStartOnceItIsGone) {
  config.notify = true;
  config.ready_timeout = 2s;
  Core core(config);
  start(core);
  EXPECT_TRUE(core.on(event::Deadline{}, t0 + 1s).empty()) << "too early";
  Actions a = core.on(event::Deadline{}, t0 + 2s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<action::KillAll>(a[0]));
  EXPECT_EQ(core.state(), State::stopping);
  EXPECT_EQ(core.deadline(), t0 + 7s) << "a killed payload is waited for, not forever";

  a = core.on(event::PayloadExited{killed(SIGKILL)}, t0 + 2s);
  auto failed = only<action::FailStart>(a);
  EXPECT_EQ(failed.error.message(),
            "start 'payload': not ready within 2 s (no READY=1); it was killed");
  EXPECT_EQ(core.state(), State::done);
}

TEST_F(CoreTest, AKilledPayloadThatDoesNotGoStillFailsTheStart) {
  config.notify = true;
  config.ready_timeout = 2s;
  Core core(config);
  start(core);
  core.on(event::Deadline{}, t0 + 2s);
  Actions a = core.on(event::Deadline{}, t0 + 7s);
  EXPECT_EQ(only<action::FailStart>(a).error.message(),
            "start 'payload': not ready within 2 s (no READY=1); it was killed");
  EXPECT_EQ(core.state(), State::done);
}

TEST_F(CoreTest, APayloadThatExitsBeforeReadyFailsTheStart) {
  config.notify = true;
  config.respawn = true;  // respawning starts only once the daemon is up
  Core core(config);
  start(core);
  Actions a = core.on(event::PayloadExited{exited(3)}, t0 + 1s);
  EXPECT_EQ(only<action::FailStart>(a).error.message(),
            "start 'payload': exited with 3 before it was ready");
  EXPECT_TRUE(all<action::Spawn>(a).empty());
  EXPECT_EQ(core.state(), State::done);
  EXPECT_TRUE(core.on(event::Deadline{}, t0 + 1h).empty()) << "done is final";
}

TEST_F(CoreTest, ReadyAfterMakesItUpOnceItRanThatLong) {
  config.ready_after = 500ms;
  Core core(config);
  start(core);
  EXPECT_EQ(core.state(), State::starting);
  EXPECT_EQ(core.deadline(), t0 + 500ms);
  Actions a = core.on(event::Deadline{}, t0 + 500ms);
  EXPECT_EQ(all<action::ReportReady>(a).size(), 1u);
  EXPECT_EQ(core.state(), State::running);
}

TEST_F(CoreTest, RespawnWaitsWithBackoffThenStartsAgain) {
  config.respawn = true;
  Core core(config);
  start(core);
  Actions a = core.on(event::PayloadExited{exited(1)}, t0 + 1s);
  EXPECT_EQ(core.state(), State::backoff);
  EXPECT_EQ(core.deadline(), t0 + 1s + 100ms);
  EXPECT_EQ(only<action::Say>(a).text, "payload exited with 1; restarting in 100 ms (restart 1)");
  auto saved = only<action::Save>(a);
  EXPECT_EQ(saved.phase, DaemonRecord::Phase::restarting);
  EXPECT_EQ(saved.last_exit, "exited with 1");
  EXPECT_EQ(saved.next_start_in, 100ms);
  EXPECT_EQ(saved.restarts, 0u);

  a = core.on(event::Deadline{}, t0 + 1s + 100ms);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<action::Spawn>(a[0]));
  a = core.on(event::Spawned{43}, t0 + 1s + 100ms);
  EXPECT_EQ(core.state(), State::running);
  EXPECT_TRUE(all<action::ReportReady>(a).empty()) << "the caller was told once";
  EXPECT_EQ(only<action::Save>(a).restarts, 1u);
}

TEST_F(CoreTest, AFailedRespawnEndsTheDaemonSayingWhy) {
  config.respawn = true;
  Core core(config);
  start(core);
  core.on(event::PayloadExited{exited(1)}, t0 + 1s);
  core.on(event::Deadline{}, t0 + 2s);
  auto e = daemonkit::Error::from_errno(ENOENT, "execve", "/usr/bin/payload");
  auto f = only<action::Finish>(core.on(event::SpawnFailed{e}, t0 + 2s));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_FALSE(f.clean);
  EXPECT_TRUE(f.say_reason);
  EXPECT_EQ(f.reason.rfind("cannot restart: ", 0), 0u) << f.reason;
}

TEST_F(CoreTest, WithoutRespawnAnExitEndsTheDaemon) {
  Core core(config);
  start(core);
  auto f = only<action::Finish>(core.on(event::PayloadExited{exited(78)}, t0 + 1s));
  EXPECT_EQ(f.exit_code, 78);
  EXPECT_FALSE(f.clean);
  EXPECT_EQ(f.reason, "exited with 78");
  EXPECT_TRUE(f.say_reason);
  EXPECT_EQ(core.state(), State::done);
}

TEST_F(CoreTest, AnExitWithZeroIsACleanEnd) {
  Core core(config);
  start(core);
  auto f = only<action::Finish>(core.on(event::PayloadExited{exited(0)}, t0 + 1s));
  EXPECT_TRUE(f.clean);
  EXPECT_EQ(f.exit_code, 0);
  EXPECT_FALSE(f.say_reason);
}

TEST_F(CoreTest, UnderRunTheExitStatusSpeaksForItself) {
  config.foreground = true;
  Core core(config);
  start(core);
  auto f = only<action::Finish>(core.on(event::PayloadExited{killed(SIGSEGV)}, t0 + 1s));
  EXPECT_EQ(f.exit_code, 128 + SIGSEGV);
  EXPECT_FALSE(f.say_reason);
}

TEST_F(CoreTest, GivingUpIsAFailureEvenAfterStatusZero) {
  config.respawn = true;
  config.max_restarts = 1;
  config.foreground = true;
  Core core(config);
  start(core);
  core.on(event::PayloadExited{exited(0)}, t0 + 1s);
  core.on(event::Deadline{}, t0 + 2s);
  core.on(event::Spawned{43}, t0 + 2s);
  auto f = only<action::Finish>(core.on(event::PayloadExited{exited(0)}, t0 + 3s));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_FALSE(f.clean);
  EXPECT_TRUE(f.say_reason) << "giving up is news, even under run";
  EXPECT_EQ(f.reason.rfind("gave up after 1 restart", 0), 0u) << f.reason;
}

TEST_F(CoreTest, StopSignalsTheGroupThenKillsAtTheTimeout) {
  Core core(config);
  start(core);
  Actions a = core.on(event::StopRequested{0, 2s, 777}, t0 + 1s);
  auto sig = only<action::Signal>(a);
  EXPECT_EQ(sig.signo, SIGTERM);
  EXPECT_TRUE(sig.group);
  EXPECT_TRUE(sig.and_continue);
  EXPECT_EQ(core.state(), State::stopping);
  EXPECT_EQ(core.deadline(), t0 + 3s);
  // A second stop only asks to be told (once, however often it asks).
  EXPECT_TRUE(core.on(event::StopRequested{0, 2s, 778}, t0 + 2s).empty());
  EXPECT_TRUE(core.on(event::StopRequested{0, 2s, 778}, t0 + 2s).empty());

  a = core.on(event::Deadline{}, t0 + 3s);
  const std::string line = "payload (pid 42) did not exit within 2 s after SIGTERM; sent SIGKILL";
  auto said = only<action::Say>(a);
  EXPECT_EQ(said.text, line);
  EXPECT_TRUE(said.everywhere);
  auto replies = all<action::Reply>(a);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].to, daemonkit::reply_address(777, 0));
  EXPECT_EQ(replies[1].to, daemonkit::reply_address(778, 0));
  EXPECT_EQ(replies[0].text, "note: " + line);
  EXPECT_EQ(all<action::KillAll>(a).size(), 1u);
  EXPECT_FALSE(core.deadline());
  EXPECT_TRUE(core.on(event::Deadline{}, t0 + 1h).empty()) << "killed once";

  auto f = only<action::Finish>(core.on(event::PayloadExited{killed(SIGKILL)}, t0 + 3s));
  EXPECT_TRUE(f.clean);
  EXPECT_EQ(f.exit_code, 128 + SIGKILL);
}

TEST_F(CoreTest, StopUsesTheDaemonsOwnStopSignalUnlessOneIsGiven) {
  config.stop_signal = SIGINT;
  Core core(config);
  start(core);
  EXPECT_EQ(only<action::Signal>(core.on(event::StopRequested{0, 1s, 0}, t0)).signo, SIGINT);
  Core other(config);
  start(other);
  auto sig = only<action::Signal>(other.on(event::StopRequested{SIGKILL, 1s, 0}, t0));
  EXPECT_EQ(sig.signo, SIGKILL);
  EXPECT_FALSE(sig.and_continue);
}

TEST_F(CoreTest, StopBetweenTwoRunsEndsAsIfThePayloadGotTheSignal) {
  config.respawn = true;
  Core core(config);
  start(core);
  core.on(event::PayloadExited{exited(1)}, t0 + 1s);
  auto f = only<action::Finish>(core.on(event::StopRequested{0, 1s, 0}, t0 + 1s));
  EXPECT_TRUE(f.clean);
  EXPECT_EQ(f.exit_code, 128 + SIGTERM);
}

TEST_F(CoreTest, WatchdogAbortsThenKillsAndCountsAsACrash) {
  config.notify = true;
  config.watchdog = 1s;
  config.respawn = true;
  Core core(config);
  start(core);
  core.on(event::Notified{ready()}, t0);
  EXPECT_EQ(core.deadline(), t0 + 1s);
  core.on(event::Notified{watchdog_ping()}, t0 + 500ms);
  EXPECT_EQ(core.deadline(), t0 + 1500ms);

  Actions a = core.on(event::Deadline{}, t0 + 1500ms);
  EXPECT_EQ(core.state(), State::aborting);
  EXPECT_EQ(only<action::Signal>(a).signo, SIGABRT);
  EXPECT_FALSE(only<action::Signal>(a).group);
  EXPECT_EQ(only<action::Say>(a).text,
            "watchdog timeout: no WATCHDOG=1 from payload within 1000 ms; sending SIGABRT");
  EXPECT_EQ(core.deadline(), t0 + 6500ms);
  // A late ping does not save it.
  core.on(event::Notified{watchdog_ping()}, t0 + 2s);
  EXPECT_EQ(core.deadline(), t0 + 6500ms);
  EXPECT_EQ(all<action::KillAll>(core.on(event::Deadline{}, t0 + 6500ms)).size(), 1u);

  a = core.on(event::PayloadExited{killed(SIGKILL)}, t0 + 6500ms);
  EXPECT_EQ(core.state(), State::backoff);
  EXPECT_EQ(only<action::Save>(a).last_exit, "watchdog timeout");
}

TEST_F(CoreTest, WatchdogTimeoutWithoutRespawnEndsTheDaemonSayingSo) {
  config.notify = true;
  config.watchdog = 1s;
  config.foreground = true;
  Core core(config);
  start(core);
  core.on(event::Notified{ready()}, t0);
  core.on(event::Deadline{}, t0 + 1s);
  auto f = only<action::Finish>(core.on(event::PayloadExited{killed(SIGABRT)}, t0 + 1s));
  EXPECT_EQ(f.reason, "watchdog timeout");
  EXPECT_TRUE(f.say_reason) << "the watchdog is news, even under run";
  EXPECT_FALSE(f.clean);
}

TEST_F(CoreTest, APingWhileStoppingDoesNotMoveTheKillDeadline) {
  config.notify = true;
  config.watchdog = 1s;
  Core core(config);
  start(core);
  core.on(event::Notified{ready()}, t0);
  core.on(event::StopRequested{0, 10s, 0}, t0);
  core.on(event::Notified{watchdog_ping()}, t0 + 1s);
  EXPECT_EQ(core.deadline(), t0 + 10s);
  EXPECT_EQ(core.state(), State::stopping);
}

TEST_F(CoreTest, ReloadWithoutConfirmationIsDoneOncePassedOn) {
  Core core(config);
  start(core);
  Actions a = core.on(event::ReloadRequested{900, 7}, t0);
  auto sig = only<action::Signal>(a);
  EXPECT_EQ(sig.signo, SIGHUP);
  EXPECT_FALSE(sig.group) << "helpers of the payload may not expect SIGHUP";
  auto reply = only<action::Reply>(a);
  EXPECT_EQ(reply.to, daemonkit::reply_address(900, 7));
  EXPECT_EQ(reply.text, "ok");
}

TEST_F(CoreTest, ConfirmedReloadsShareOneSighupAndOneAnswer) {
  config.notify = true;
  config.reload_notify = true;
  Core core(config);
  start(core);
  core.on(event::Notified{ready()}, t0);
  Actions a = core.on(event::ReloadRequested{900, 1}, t0);
  EXPECT_EQ(only<action::Signal>(a).signo, SIGHUP);
  EXPECT_TRUE(all<action::Reply>(a).empty());
  core.on(event::Notified{reloading()}, t0 + 1ms);
  a = core.on(event::ReloadRequested{901, 2}, t0 + 2ms);
  EXPECT_TRUE(all<action::Signal>(a).empty()) << "a reload is under way";
  a = core.on(event::Notified{ready()}, t0 + 3ms);
  auto replies = all<action::Reply>(a);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].text, "ok");
  EXPECT_EQ(replies[1].to, daemonkit::reply_address(901, 2));
}

TEST_F(CoreTest, AReloadFailsWhenThePayloadEndsOrIsNotThere) {
  config.notify = true;
  config.reload_notify = true;
  config.respawn = true;
  Core core(config);
  start(core);
  core.on(event::Notified{ready()}, t0);
  core.on(event::ReloadRequested{900, 1}, t0);
  Actions a = core.on(event::PayloadExited{killed(SIGSEGV)}, t0 + 1ms);
  EXPECT_EQ(only<action::Reply>(a).text, "failed: payload killed by SIGSEGV during the reload");
  a = core.on(event::ReloadRequested{900, 2}, t0 + 2ms);
  EXPECT_EQ(only<action::Reply>(a).text, "failed: payload is not running (waiting to respawn)");
  EXPECT_TRUE(all<action::Signal>(a).empty());
}

TEST_F(CoreTest, SignalRequestsAreSentOnlyToAPayloadThatRuns) {
  config.respawn = true;
  Core core(config);
  start(core);
  Actions a = core.on(event::SignalRequested{SIGUSR1, true, "@x"}, t0);
  auto send = only<action::SendRequested>(a);
  EXPECT_EQ(send.signo, SIGUSR1);
  EXPECT_TRUE(send.group);
  EXPECT_EQ(send.if_exited, "not running: payload waits to be respawned");
  core.on(event::PayloadExited{exited(1)}, t0 + 1s);
  a = core.on(event::SignalRequested{SIGUSR1, false, "@x"}, t0 + 1s);
  EXPECT_EQ(only<action::Reply>(a).text, "not running: payload waits to be respawned");
  EXPECT_TRUE(all<action::SendRequested>(a).empty());
}

TEST_F(CoreTest, ForwardsToThePayloadOnlyWhileThereIsOne) {
  config.respawn = true;
  Core core(config);
  start(core);
  EXPECT_EQ(only<action::Signal>(core.on(event::Forward{SIGUSR2}, t0)).signo, SIGUSR2);
  core.on(event::PayloadExited{exited(1)}, t0 + 1s);
  EXPECT_TRUE(core.on(event::Forward{SIGUSR2}, t0 + 1s).empty());
}

TEST_F(CoreTest, TellsTheOuterManagerWhatThePayloadSaysButTheFirstReady) {
  config.notify = true;
  config.foreground = true;
  config.outer_notify = "@outer";
  Core core(config);
  start(core);
  Actions a = core.on(event::Notified{ready()}, t0);
  EXPECT_TRUE(all<action::TellOuter>(a).empty()) << "ReportReady tells it, with MAINPID";
  daemonkit::NotifyMessage m;
  m.status = "serving";
  m.ready = true;
  a = core.on(event::Notified{m}, t0 + 1s);
  EXPECT_EQ(only<action::TellOuter>(a).text, "STATUS=serving\nREADY=1\n");
  EXPECT_EQ(only<action::Save>(a).status, "serving");
}

}  // namespace
