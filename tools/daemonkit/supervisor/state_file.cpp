#include "supervisor/state_file.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "daemonkit/fd.hpp"
#include "daemonkit/parse.hpp"
#include "supervisor/fields.hpp"

namespace dkcli {

namespace {

constexpr size_t kMaxRecordBytes = size_t{256} << 10;
constexpr size_t kMaxArguments = 4096;

}  // namespace

std::string_view phase_name(DaemonRecord::Phase phase) {
  switch (phase) {
    case DaemonRecord::Phase::starting:
      return "starting";
    case DaemonRecord::Phase::running:
      return "running";
    case DaemonRecord::Phase::restarting:
      return "restarting";
    case DaemonRecord::Phase::ended:
      break;
  }
  return "ended";
}

std::filesystem::path state_path(const std::filesystem::path& pidfile) {
  // PIDFILE.state, unless that name would pass NAME_MAX: then a shortened
  // name that a hash of the full one keeps distinct.
  std::string name = pidfile.filename().string() + ".state";
  if (name.size() > 255) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016zx",
                  std::hash<std::string>{}(pidfile.filename().string()));
    name = pidfile.filename().string().substr(0, 200) + "-" + hash + ".state";
  }
  return pidfile.parent_path() / name;
}

std::string encode_record(const DaemonRecord& r) {
  std::string out;
  fields::put(out, "phase", phase_name(r.phase));
  fields::put(out, "pid", std::to_string(r.supervisor));
  if (r.payload > 0) {
    fields::put(out, "payload", std::to_string(r.payload));
    fields::put(out, "payload_start", std::to_string(r.payload_start_ticks));
  }
  for (const auto& arg : r.command) fields::put(out, "arg", arg);
  fields::put(out, "restarts", std::to_string(r.restarts));
  fields::put(out, "stop_signal", std::to_string(r.stop_signal));
  if (!r.status.empty()) fields::put(out, "status", r.status);
  if (!r.log.empty()) fields::put(out, "log", r.log);
  if (!r.syslog.empty()) fields::put(out, "syslog", r.syslog);
  if (r.uid) fields::put(out, "uid", std::to_string(*r.uid));
  if (r.gid) fields::put(out, "gid", std::to_string(*r.gid));
  if (!r.cgroup.empty()) fields::put(out, "cgroup", r.cgroup);
  if (!r.last_exit.empty()) fields::put(out, "last_exit", r.last_exit);
  if (r.next_start_ms > 0) fields::put(out, "next_start_ms", std::to_string(r.next_start_ms));
  if (!r.ended.empty()) fields::put(out, "ended", r.ended);
  return out;
}

std::optional<DaemonRecord> decode_record(std::string_view text) {
  DaemonRecord r;
  bool have_phase = false;
  fields::for_each(text, [&](std::string_view key, const std::string& value) {
    if (key == "phase") {
      for (auto p : {DaemonRecord::Phase::starting, DaemonRecord::Phase::running,
                     DaemonRecord::Phase::restarting, DaemonRecord::Phase::ended})
        if (value == phase_name(p)) {
          r.phase = p;
          have_phase = true;
        }
    } else if (key == "pid") {
      (void)fields::number(value, r.supervisor);
    } else if (key == "payload") {
      (void)fields::number(value, r.payload);
    } else if (key == "payload_start") {
      (void)fields::number(value, r.payload_start_ticks);
    } else if (key == "arg") {
      if (r.command.size() < kMaxArguments) r.command.push_back(value);
    } else if (key == "restarts") {
      (void)fields::number(value, r.restarts);
    } else if (key == "stop_signal") {
      int s = 0;
      if (fields::number(value, s) && s > 0 && s <= SIGRTMAX) r.stop_signal = s;
    } else if (key == "status") {
      r.status = value;
    } else if (key == "log") {
      r.log = value;
    } else if (key == "syslog") {
      r.syslog = value;
    } else if (key == "uid") {
      uid_t u = 0;
      if (fields::number(value, u)) r.uid = u;
    } else if (key == "gid") {
      gid_t g = 0;
      if (fields::number(value, g)) r.gid = g;
    } else if (key == "cgroup") {
      r.cgroup = value;
    } else if (key == "last_exit") {
      r.last_exit = value;
    } else if (key == "next_start_ms") {
      (void)fields::number(value, r.next_start_ms);
    } else if (key == "ended") {
      r.ended = value;
    }
  });
  // A record of an older daemonkit has no phase: it was written once the
  // daemon was up, and last when it ended.
  if (!have_phase)
    r.phase = r.ended.empty() ? DaemonRecord::Phase::running : DaemonRecord::Phase::ended;
  if (r.supervisor <= 1 || r.payload < 0) return std::nullopt;
  if (r.payload == 1) r.payload = 0;
  return r;
}

daemonkit::Result<void> write_record(const std::filesystem::path& pidfile,
                                     const DaemonRecord& record) {
  // Readable by whoever may read the pidfile, as `status` must be.
  return daemonkit::replace_file(state_path(pidfile), encode_record(record), 0644);
}

std::optional<DaemonRecord> read_record(const std::filesystem::path& pidfile) {
  return decode_record(daemonkit::read_head(state_path(pidfile), kMaxRecordBytes));
}

std::optional<DaemonRecord> read_record_of(const std::filesystem::path& pidfile, pid_t holder) {
  auto record = read_record(pidfile);
  if (record && record->supervisor != holder) record.reset();
  return record;
}

void remove_record(const std::filesystem::path& pidfile) {
  ::unlink(state_path(pidfile).c_str());
}

std::optional<DaemonRecord> DaemonFiles::previous() const {
  if (!enabled()) return std::nullopt;
  return read_record(pidfile_);
}

daemonkit::Result<void> DaemonFiles::save(const DaemonRecord& record) const {
  if (!enabled()) return {};
  return write_record(pidfile_, record);
}

daemonkit::Result<void> DaemonFiles::remove() {
  daemonkit::Result<void> removed;
  if (lock_) removed = lock_->remove();
  lock_.reset();
  if (enabled()) remove_record(pidfile_);
  return removed;
}

daemonkit::Result<void> DaemonFiles::leave(DaemonRecord ended) {
  ended.phase = DaemonRecord::Phase::ended;
  auto saved = save(ended);
  lock_.reset();  // releases the lock, keeps the file
  return saved;
}

void DaemonFiles::fail_start(daemonkit::Daemon* caller, const daemonkit::Error& error) {
  if (caller != nullptr) {
    caller->fail(error);  // removes the pidfile first
  } else if (lock_) {
    (void)lock_->remove();
  }
  lock_.reset();
  if (enabled()) remove_record(pidfile_);
}

}  // namespace dkcli
