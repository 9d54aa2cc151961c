#include "supervisor/leftovers.hpp"

#include <signal.h>

#include <vector>

#include "daemonkit/cgroup.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/spawn.hpp"

namespace dkcli {

namespace {

std::string comm_of(pid_t pid) {
  std::string name = daemonkit::read_head("/proc/" + std::to_string(pid) + "/comm", 64);
  if (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

}  // namespace

std::optional<Orphan> find_orphan(const DaemonRecord& record) {
  if (record.phase == DaemonRecord::Phase::ended || record.payload <= 1 ||
      record.payload_start_ticks == 0)
    return std::nullopt;
  auto handle = daemonkit::Pidfd::open(record.payload);
  if (!handle) return std::nullopt;
  // Looked at after the handle was opened: if the start time matches now,
  // the handle is that process's, whatever happens to the pid later.
  auto st = daemonkit::read_proc_stat(record.payload);
  if (!st || st->start_ticks != record.payload_start_ticks || st->state == 'Z') return std::nullopt;
  return Orphan{std::move(*handle), comm_of(record.payload)};
}

bool leftovers_run(const DaemonRecord& record) {
  if (find_orphan(record)) return true;
  if (record.cgroup.empty()) return false;
  auto cg = daemonkit::Cgroup::open(record.cgroup);
  return cg && cg->populated();
}

std::string end_leftovers(const DaemonRecord& record, std::chrono::milliseconds timeout) {
  auto orphan = find_orphan(record);
  std::optional<daemonkit::Cgroup> cg;
  if (!record.cgroup.empty()) cg = daemonkit::Cgroup::open(record.cgroup);
  std::string said;
  if (orphan) {
    const pid_t pid = orphan->process.pid();
    said = "the payload " + std::to_string(pid) + " (" + orphan->name +
           ") outlived its supervisor " + std::to_string(record.supervisor) + "; ";
    // Hold everything it started (stopped, so nothing forks meanwhile),
    // then ask all of it to stop, as `stop` would have.
    (void)orphan->process.send_signal(SIGSTOP);
    auto tree = daemonkit::stop_descendants(pid);
    const int signo = record.stop_signal;
    // Its group, while it leads it (it is alive: the id cannot be reused).
    if (::getpgid(pid) == pid && !orphan->process.has_exited()) ::kill(-pid, signo);
    (void)orphan->process.send_signal(signo);
    for (auto& d : tree) (void)d.process.send_signal(signo);
    if (::getpgid(pid) == pid && !orphan->process.has_exited()) ::kill(-pid, SIGCONT);
    (void)orphan->process.send_signal(SIGCONT);
    for (auto& d : tree) (void)d.process.send_signal(SIGCONT);
    auto gone = orphan->process.wait_for_exit(timeout);
    if (gone && *gone) {
      said += "it ended on " + daemonkit::signal_name(signo);
    } else {
      said += "it did not exit within " + daemonkit::format_seconds(timeout) + " s after " +
              daemonkit::signal_name(signo) + "; sent SIGKILL";
      (void)orphan->process.send_signal(SIGSTOP);
      auto more = daemonkit::stop_descendants(pid);
      if (::getpgid(pid) == pid && !orphan->process.has_exited()) ::kill(-pid, SIGKILL);
      (void)orphan->process.send_signal(SIGKILL);
      for (auto& d : more) (void)d.process.send_signal(SIGKILL);
      (void)orphan->process.wait_for_exit(std::chrono::seconds(5));
    }
    // What it started and held on to: gone with it, or killed now.
    size_t killed = 0;
    for (auto& d : tree)
      if (auto sent = d.process.send_signal(SIGKILL); sent && *sent) ++killed;
    if (killed > 0) said += "; killed " + std::to_string(killed) + " processes it started";
  }
  if (cg) {
    if (cg->populated()) {
      const size_t n = cg->members().size();
      (void)cg->kill_all();
      (void)cg->wait_until_empty(std::chrono::seconds(5));
      if (n > 0)
        said += (said.empty() ? "" : "; ") + std::string("killed ") + std::to_string(n) +
                " processes left in its cgroup " + record.cgroup;
    }
    (void)cg->remove();
  }
  return said;
}

}  // namespace dkcli
