// tests/support/fixture.hpp: the frame of a test that runs daemonkit.
//
// Each test gets a private directory and a pidfile in it; its daemonkit
// commands leave sanitizer logs there. Whatever the test did, TearDown stops
// the daemon, kills what it guards, then fails the test for (and kills) any
// process still mentioning the directory, and for any sanitizer report.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support.hpp"

namespace dktest {

class DaemonkitTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string pidfile = dir / "dk.pid";
  std::vector<ProcessGuard> guards;

  // `daemonkit ARGS...`
  CommandResult dk(std::vector<std::string> args, RunOptions options = {});
  // `daemonkit start --pidfile PIDFILE OPTIONS -- PROGRAM...`; on success
  // guards the supervisor and its children.
  CommandResult start_daemon(const std::vector<std::string>& options,
                             const std::vector<std::string>& program, RunOptions run_options = {});
  CommandResult status() { return dk({"status", "--pidfile", pidfile}); }

  void TearDown() override;
};

}  // namespace dktest
