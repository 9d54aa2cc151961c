#include "fixture.hpp"

namespace dktest {

CommandResult DaemonkitTest::dk(std::vector<std::string> args, RunOptions options) {
  args.insert(args.begin(), daemonkit_path());
  return run(args, with_sanitizer_logs(dir.path(), std::move(options)));
}

CommandResult DaemonkitTest::start_daemon(const std::vector<std::string>& options,
                                          const std::vector<std::string>& program,
                                          RunOptions run_options) {
  std::vector<std::string> args = {"start", "--pidfile", pidfile};
  args.insert(args.end(), options.begin(), options.end());
  args.push_back("--");
  args.insert(args.end(), program.begin(), program.end());
  auto r = dk(args, std::move(run_options));
  if (const pid_t supervisor = pid_in(pidfile); r.exit_code == 0 && supervisor > 1) {
    guards.emplace_back(supervisor);
    for (pid_t c : children_of(supervisor)) guards.emplace_back(c);
  }
  return r;
}

void DaemonkitTest::TearDown() {
  dk({"stop", "--pidfile", pidfile, "--timeout", "1"});
  guards.clear();
  reap_children();
  for (pid_t pid : processes_mentioning(dir.path().string())) {
    ADD_FAILURE() << "left running: pid " << pid;
    ProcessGuard leftover(pid);
  }
  expect_no_sanitizer_reports(dir.path());
}

}  // namespace dktest
