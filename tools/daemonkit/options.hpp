// tools/daemonkit/options.hpp: the daemonkit command line.
//
// One table (options.cpp) says which options exist, which commands take
// them, what they mean; the parser, the checks and --help all read it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemonkit/parse.hpp"
#include "daemonkit/result.hpp"

namespace dkcli {

enum class Command { none, start, run, stop, restart, reload, reopen, status, signal };

struct Options {
  Command command = Command::none;
  bool help = false;
  bool version = false;

  std::filesystem::path pidfile;
  std::optional<std::filesystem::path> stdout_path;
  std::optional<std::filesystem::path> stderr_path;
  std::optional<std::filesystem::path> stdin_path;
  std::optional<std::uint64_t> log_max_size;
  std::optional<unsigned> log_keep;
  std::optional<std::string> syslog_tag;
  std::optional<std::filesystem::path> chdir;
  std::optional<mode_t> umask;
  std::optional<std::string> user;
  std::vector<std::pair<std::string, std::string>> env;
  bool clear_env = false;
  bool notify = false;
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
  std::optional<std::chrono::milliseconds> ready_after;
  bool respawn = false;
  std::optional<unsigned> max_restarts;
  std::vector<int> no_respawn_on;
  std::optional<std::chrono::milliseconds> watchdog;
  bool reload_notify = false;
  std::optional<int> nice;
  std::vector<daemonkit::ResourceLimit> limits;
  std::optional<int> oom_score_adj;
  bool no_new_privs = false;
  std::optional<std::filesystem::path> chroot;
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  int payload_stop_signal = SIGTERM;  // --stop-signal (START OPTION)
  std::optional<int> stop_signal;     // stop --signal, signal --signal
  bool group = false;                 // signal --group
  bool json = false;                  // status --json

  std::vector<std::string> program;  // PROGRAM ARG...

  // Whether the daemon needs a supervisor-side feature (all but the plain
  // case; daemonkit always supervises, this says what the supervisor does).
  [[nodiscard]] unsigned log_keep_or_default() const { return log_keep.value_or(5); }
};

// Parses argv[1..]. Usage errors (ErrorKind::usage) name the argument.
daemonkit::Result<Options> parse_command_line(const std::vector<std::string_view>& args);

std::string_view command_name(Command c);
// The one-line synopsis for `c` (all commands for Command::none).
std::string usage(Command c);
// The full --help text for `c` (global help for Command::none).
std::string help(Command c);

}  // namespace dkcli
