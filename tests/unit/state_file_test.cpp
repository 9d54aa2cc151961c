#include "supervisor/state_file.hpp"

#include <gtest/gtest.h>

#include "support.hpp"

using dkcli::DaemonRecord;

namespace {

DaemonRecord sample() {
  DaemonRecord r;
  r.phase = DaemonRecord::Phase::restarting;
  r.supervisor = 1234;
  r.payload = 0;
  r.command = {"/usr/bin/app", "--name=a b", "", "tab\there", "nl\nphase=ended"};
  r.restarts = 7;
  r.status = "ready\nended=FAKE";
  r.log = "/var/log/app\n/x\\y.log";
  r.uid = 65534;
  r.gid = 65534;
  r.stop_signal = 2;
  r.cgroup = "/sys/fs/cgroup/unified/daemonkit-1234";
  r.last_exit = "exited with 1";
  r.next_start_ms = 1700000000123;
  return r;
}

}  // namespace

TEST(DaemonRecord, EveryValueSurvivesTheRoundTrip) {
  const DaemonRecord r = sample();
  auto back = dkcli::decode_record(dkcli::encode_record(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->phase, r.phase);
  EXPECT_EQ(back->supervisor, r.supervisor);
  EXPECT_EQ(back->command, r.command);
  EXPECT_EQ(back->restarts, r.restarts);
  EXPECT_EQ(back->status, r.status);
  EXPECT_EQ(back->log, r.log);
  EXPECT_EQ(back->uid, r.uid);
  EXPECT_EQ(back->gid, r.gid);
  EXPECT_EQ(back->stop_signal, r.stop_signal);
  EXPECT_EQ(back->cgroup, r.cgroup);
  EXPECT_EQ(back->last_exit, r.last_exit);
  EXPECT_EQ(back->next_start_ms, r.next_start_ms);
}

TEST(DaemonRecord, ANewlineInAValueCannotAddAKey) {
  const std::string text = dkcli::encode_record(sample());
  // One line per key; values never start a line of their own.
  EXPECT_EQ(text.find("\nended="), std::string::npos) << text;
  EXPECT_EQ(text.find("\nphase=ended"), std::string::npos) << text;
  for (char c : text)
    EXPECT_TRUE(c == '\n' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
}

TEST(DaemonRecord, WhatIsNotARecordIsRefused) {
  EXPECT_FALSE(dkcli::decode_record(""));
  EXPECT_FALSE(dkcli::decode_record("phase=running\n"));         // no supervisor
  EXPECT_FALSE(dkcli::decode_record("phase=running\npid=1\n"));  // not a supervisor's pid
  auto r = dkcli::decode_record("phase=running\npid=12\npayload=1\nstop_signal=999\nx\n\\");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload, 0) << "pid 1 is never a payload";
  EXPECT_EQ(r->stop_signal, SIGTERM) << "an impossible signal is not taken";
}

// What an older daemonkit wrote (no phase): up, or ended when it says why.
TEST(DaemonRecord, AnOlderDaemonkitsRecordIsRead) {
  auto up = dkcli::decode_record("pid=12\npayload=13\nrestarts=0\nreload_notify=0\n");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->phase, DaemonRecord::Phase::running);
  EXPECT_EQ(up->supervisor, 12);
  EXPECT_EQ(up->payload_start_ticks, 0U) << "no identity: never found as an orphan";
  auto ended = dkcli::decode_record("pid=12\nended=exited with 3\nrestarts=0\n");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->phase, DaemonRecord::Phase::ended);
}

TEST(DaemonRecord, IsReplacedWholeAndItsTemporaryNameAlwaysFits) {
  dktest::TempDir dir;
  // A 247-byte pidfile name: NAME.state fits, NAME.state.tmp would not.
  const std::string pidfile = dir / (std::string(243, 'p') + ".pid");
  ASSERT_TRUE(dkcli::write_record(pidfile, sample()));
  auto back = dkcli::read_record(pidfile);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->log, sample().log);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1U) << "no temporary file is left";
  dkcli::remove_record(pidfile);
  EXPECT_FALSE(dkcli::read_record(pidfile));
}

TEST(DaemonRecord, AWriteThatFailsIsAnErrorNamingThePath) {
  auto r = dkcli::write_record("/nonexistent-dir/x.pid", sample());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/nonexistent-dir"), std::string::npos) << r.error().message();
}
