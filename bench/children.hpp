// The benchmark's own children: commands it runs, and the daemons they leave
// behind, which come back to it because it is a child subreaper.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// How orphans are reaped. `prompt`: as soon as SIGCHLD says so, like an init
// that reaps at once. `slow`: on the ticks of a clock that runs once a second
// whatever the benchmark does, like a pid 1 that reaps only now and then (this
// machine's does), which is what a tool that waits for the pid to vanish
// (kill(pid, 0)) runs into.
enum class Reaping { prompt, slow };

// SIGINT, SIGTERM or SIGHUP reached the benchmark: unwind, clean up, stop.
struct Interrupted : std::runtime_error {
  explicit Interrupted(const std::string& what) : std::runtime_error(what) {}
};

class Children {
 public:
  // Becomes a child subreaper, takes SIGCHLD (and SIGINT, SIGTERM, SIGHUP,
  // which throw Interrupted from pump()) through a signalfd, asks for precise
  // timers and raises its descriptor limit.
  Children();
  ~Children();
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;

  void set_reaping(Reaping reaping) { reaping_ = reaping; }

  // Starts argv[0] (a path) with /dev/null as stdin and stdout (or `out`
  // when given), stderr appended to `errors`, an empty signal mask and
  // every signal's default disposition. Throws std::runtime_error naming the
  // cause.
  pid_t spawn(const std::vector<std::string>& argv, const std::string& errors,
              const std::string& out = "/dev/null");

  // Waits for a command started by spawn() and returns its wait status, or
  // nullopt when it outlived `limit` (it is then killed).
  std::optional<int> wait(pid_t command, std::chrono::milliseconds limit);

  // Lets time pass for up to `limit`, reaping as the mode says, and returns
  // early when SIGCHLD arrives or one of `fds` becomes readable.
  void pump(std::chrono::nanoseconds limit, const std::vector<int>& fds = {});

  // Reaps every child that has exited.
  void reap_all();

 private:
  void reap_due();

  int signals_ = -1;
  Reaping reaping_ = Reaping::prompt;
  std::int64_t clock_origin_ns_ = 0;  // slow reaping sweeps at origin + k s
  std::int64_t next_sweep_ns_ = 0;
  std::map<pid_t, std::optional<int>> commands_;
};

// A process handle that stays valid after the process has been reaped.
class Pidfd {
 public:
  // A process that no longer exists (ESRCH) gives a handle that reports it
  // exited; any other failure throws std::runtime_error.
  explicit Pidfd(pid_t pid);
  Pidfd() = default;  // no process
  ~Pidfd();
  Pidfd(Pidfd&& other) noexcept : fd_(other.fd_), pid_(other.pid_) { other.fd_ = -1; }
  Pidfd& operator=(Pidfd&& other) noexcept;
  Pidfd(const Pidfd&) = delete;
  Pidfd& operator=(const Pidfd&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  // The process has exited (a zombie counts as gone).
  [[nodiscard]] bool exited() const;
  void kill() const { signal(SIGKILL); }
  void signal(int number) const;

 private:
  int fd_ = -1;
  pid_t pid_ = 0;
};

// Waits until every process in `processes` has exited, for up to `limit`.
bool wait_exited(Children& children, const std::vector<Pidfd>& processes,
                 std::chrono::milliseconds limit);

}  // namespace bench
