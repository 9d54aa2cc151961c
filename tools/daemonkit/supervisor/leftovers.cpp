#include "supervisor/leftovers.hpp"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "daemonkit/cgroup.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/spawn.hpp"
#include "daemonkit/text.hpp"

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
  if (!st || st->start_ticks != record.payload_start_ticks || st->state == 'Z' || st->state == 'X')
    return std::nullopt;
  return Orphan{std::move(*handle), comm_of(record.payload)};
}

namespace {

// The cgroup a record names, only if it is one a supervisor of ours made for
// that very supervisor ("daemonkit-<its pid>-<random>"): a record is trusted,
// but never to name another cgroup to kill.
std::optional<daemonkit::Cgroup> recorded_cgroup(const DaemonRecord& record) {
  if (record.cgroup.empty()) return std::nullopt;
  const std::string name = std::filesystem::path(record.cgroup).filename().string();
  const std::string prefix = "daemonkit-" + std::to_string(record.supervisor) + "-";
  if (name.rfind(prefix, 0) != 0 || name.size() != prefix.size() + 16) return std::nullopt;
  return daemonkit::Cgroup::open(record.cgroup);
}

std::string named(const daemonkit::Descendant& d) {
  return std::to_string(d.process.pid()) + " (" + daemonkit::escape_text(d.name) + ")";
}

}  // namespace

std::vector<std::string> end_leftovers(const DaemonRecord& record,
                                       std::chrono::milliseconds timeout) {
  std::vector<std::string> said;
  if (record.phase == DaemonRecord::Phase::ended) return said;
  auto orphan = find_orphan(record);
  auto cg = recorded_cgroup(record);
  std::vector<daemonkit::Descendant> held;  // what it started, held while we end it
  if (orphan) {
    const pid_t pid = orphan->process.pid();
    said.push_back("payload (pid " + std::to_string(pid) + ", " +
                   daemonkit::escape_text(orphan->name) + ") outlived its supervisor (pid " +
                   std::to_string(record.supervisor) + "); ending it");
    // Hold everything it started (stopped, so nothing forks meanwhile),
    // then ask all of it to stop, as `stop` would have.
    (void)orphan->process.send_signal(SIGSTOP);
    held = daemonkit::stop_descendants(pid);
    const int signo = record.stop_signal;
    for (int s : {signo, SIGCONT}) {
      // Its group while it leads it (alive, so the id cannot be reused).
      if (::getpgid(pid) == pid && !orphan->process.has_exited()) ::kill(-pid, s);
      (void)orphan->process.send_signal(s);
      for (auto& d : held) (void)d.process.send_signal(s);
    }
    auto gone = orphan->process.wait_for_exit(timeout);
    if (!gone || !*gone) {
      said.push_back("payload (pid " + std::to_string(pid) + ") did not exit within " +
                     daemonkit::format_seconds(timeout) + " s after " +
                     daemonkit::signal_name(signo) + "; sent SIGKILL");
      (void)orphan->process.send_signal(SIGSTOP);
      auto more = daemonkit::stop_descendants(pid);
      (void)orphan->process.send_signal(SIGKILL);
      for (auto& d : more) (void)d.process.send_signal(SIGKILL);
      (void)orphan->process.wait_for_exit(std::chrono::seconds(5));
    }
  }
  // Whatever is left of it: what it started and we held, its group (found
  // even once its leader is gone), its cgroup.
  std::vector<std::string> killed;
  for (auto& d : held)
    if (auto sent = d.process.send_signal(SIGKILL); sent && *sent) killed.push_back(named(d));
  if (record.payload > 1)
    for (auto& d : daemonkit::group_members(record.payload, record.payload_start_ticks))
      if (auto sent = d.process.send_signal(SIGKILL); sent && *sent) killed.push_back(named(d));
  if (cg) {
    for (pid_t p : cg->members()) killed.push_back(std::to_string(p));
    (void)cg->kill_all();
    (void)cg->wait_until_empty(std::chrono::seconds(5));
    (void)cg->remove();
  }
  std::sort(killed.begin(), killed.end());
  killed.erase(std::unique(killed.begin(), killed.end(),
                           [](const std::string& a, const std::string& b) {
                             return a.substr(0, a.find(' ')) == b.substr(0, b.find(' '));
                           }),
               killed.end());
  if (!killed.empty()) {
    std::string which;
    for (const auto& k : killed) which += (which.empty() ? "" : ", ") + k;
    said.push_back("killed " + std::to_string(killed.size()) +
                   " processes the payload left behind: " + which);
  }
  return said;
}

}  // namespace dkcli
