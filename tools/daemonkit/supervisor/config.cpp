#include "supervisor/config.hpp"

#include "supervisor/fields.hpp"

namespace dkcli {

namespace {

using daemonkit::Error;
using std::chrono::milliseconds;

// The format's version: the command and the supervisor program it executes
// come from one build, but a package upgrade can replace one while the
// other runs (an old `daemonkit restart` executing a new supervisor).
constexpr std::string_view kFormat = "1";

std::string ms(milliseconds d) {
  return std::to_string(d.count());
}

}  // namespace

std::string encode_config(const SupervisorConfig& c) {
  std::string out;
  auto put = [&](std::string_view key, std::string_view value) { fields::put(out, key, value); };
  put("daemonkit_config", kFormat);
  auto flag = [&](std::string_view key, bool on) {
    if (on) put(key, "1");
  };
  put("pidfile", c.pidfile.string());
  flag("foreground", c.foreground);
  if (!c.outer_notify.empty()) put("outer_notify", c.outer_notify);
  put("program", c.program.string());
  for (const auto& a : c.argv) put("arg", a);
  for (const auto& e : c.env) put("env", e);
  if (c.credentials) {
    put("user", c.credentials->user);
    put("uid", std::to_string(c.credentials->uid));
    put("gid", std::to_string(c.credentials->gid));
    for (gid_t g : c.credentials->groups) put("group", std::to_string(g));
  }
  if (c.chroot) put("chroot", c.chroot->string());
  put("chdir", c.working_directory.string());
  put("umask", std::to_string(c.umask));
  if (c.nice) put("nice", std::to_string(*c.nice));
  for (const auto& l : c.limits)
    put("limit", std::to_string(l.resource) + " " + std::to_string(l.soft) + " " +
                     std::to_string(l.hard) + " " + l.name);
  if (c.oom_score_adj) put("oom_score_adj", std::to_string(*c.oom_score_adj));
  flag("no_new_privs", c.no_new_privs);
  if (c.stdin_path) put("stdin", c.stdin_path->string());
  if (c.stdout_path) put("stdout", c.stdout_path->string());
  if (c.stderr_path) put("stderr", c.stderr_path->string());
  flag("stderr_to_stdout", c.stderr_to_stdout);
  if (c.rotation) {
    put("rotate_size", std::to_string(c.rotation->max_size));
    put("rotate_keep", std::to_string(c.rotation->keep));
  }
  if (c.syslog_tag) put("syslog", *c.syslog_tag);
  flag("notify", c.notify);
  put("ready_timeout_ms", ms(c.ready_timeout));
  if (c.ready_after) put("ready_after_ms", ms(*c.ready_after));
  if (c.watchdog) put("watchdog_ms", ms(*c.watchdog));
  flag("reload_notify", c.reload_notify);
  flag("respawn", c.respawn);
  if (c.max_restarts) put("max_restarts", std::to_string(*c.max_restarts));
  for (int s : c.no_respawn_on) put("no_respawn_on", std::to_string(s));
  put("stop_signal", std::to_string(c.stop_signal));
  put("stop_timeout_ms", ms(c.stop_timeout));
  put("end", "");  // what was cut short lacks it
  return out;
}

daemonkit::Result<SupervisorConfig> decode_config(std::string_view text) {
  SupervisorConfig c;
  std::string bad;  // the first line not understood
  std::string format;
  bool ended = false;
  auto fail_on = [&](std::string_view key, const std::string& value) {
    if (bad.empty()) bad = std::string(key) + "=" + value;
  };
  auto credentials = [&]() -> daemonkit::Credentials& {
    if (!c.credentials) c.credentials.emplace();
    return *c.credentials;
  };
  auto duration = [&](std::string_view key, const std::string& value, milliseconds& to) {
    long long n = 0;
    if (!fields::number(value, n) || n < 0) return fail_on(key, value);
    to = milliseconds(n);
  };
  fields::for_each(text, [&](std::string_view key, const std::string& value) {
    if (ended) return fail_on(key, value);  // nothing follows the end
    if (key == "daemonkit_config") {
      format = value;
    } else if (key == "end") {
      ended = true;
    } else if (key == "pidfile") {
      c.pidfile = value;
    } else if (key == "foreground") {
      c.foreground = true;
    } else if (key == "outer_notify") {
      c.outer_notify = value;
    } else if (key == "program") {
      c.program = value;
    } else if (key == "arg") {
      c.argv.push_back(value);
    } else if (key == "env") {
      c.env.push_back(value);
    } else if (key == "user") {
      credentials().user = value;
    } else if (key == "uid") {
      if (!fields::number(value, credentials().uid)) fail_on(key, value);
    } else if (key == "gid") {
      if (!fields::number(value, credentials().gid)) fail_on(key, value);
    } else if (key == "group") {
      gid_t g = 0;
      if (!fields::number(value, g)) return fail_on(key, value);
      credentials().groups.push_back(g);
    } else if (key == "chroot") {
      c.chroot = value;
    } else if (key == "chdir") {
      c.working_directory = value;
    } else if (key == "umask") {
      if (!fields::number(value, c.umask)) fail_on(key, value);
    } else if (key == "nice") {
      int n = 0;
      if (!fields::number(value, n)) return fail_on(key, value);
      c.nice = n;
    } else if (key == "limit") {
      // "RESOURCE SOFT HARD NAME"
      daemonkit::ResourceLimit l;
      std::string_view v = value;
      std::string_view part[3];
      for (auto& p : part) {
        const size_t sp = v.find(' ');
        if (sp == std::string_view::npos) return fail_on(key, value);
        p = v.substr(0, sp);
        v.remove_prefix(sp + 1);
      }
      if (!fields::number(part[0], l.resource) || !fields::number(part[1], l.soft) ||
          !fields::number(part[2], l.hard))
        return fail_on(key, value);
      l.name = v;
      c.limits.push_back(std::move(l));
    } else if (key == "oom_score_adj") {
      int n = 0;
      if (!fields::number(value, n)) return fail_on(key, value);
      c.oom_score_adj = n;
    } else if (key == "no_new_privs") {
      c.no_new_privs = true;
    } else if (key == "stdin") {
      c.stdin_path = value;
    } else if (key == "stdout") {
      c.stdout_path = value;
    } else if (key == "stderr") {
      c.stderr_path = value;
    } else if (key == "stderr_to_stdout") {
      c.stderr_to_stdout = true;
    } else if (key == "rotate_size") {
      if (!c.rotation) c.rotation = daemonkit::OutputFile::Rotation{};
      if (!fields::number(value, c.rotation->max_size)) fail_on(key, value);
    } else if (key == "rotate_keep") {
      if (!c.rotation) c.rotation = daemonkit::OutputFile::Rotation{};
      if (!fields::number(value, c.rotation->keep)) fail_on(key, value);
    } else if (key == "syslog") {
      c.syslog_tag = value;
    } else if (key == "notify") {
      c.notify = true;
    } else if (key == "ready_timeout_ms") {
      duration(key, value, c.ready_timeout);
    } else if (key == "ready_after_ms") {
      duration(key, value, c.ready_after.emplace());
    } else if (key == "watchdog_ms") {
      duration(key, value, c.watchdog.emplace());
    } else if (key == "reload_notify") {
      c.reload_notify = true;
    } else if (key == "respawn") {
      c.respawn = true;
    } else if (key == "max_restarts") {
      if (!fields::number(value, c.max_restarts.emplace())) fail_on(key, value);
    } else if (key == "no_respawn_on") {
      int s = 0;
      if (!fields::number(value, s)) return fail_on(key, value);
      c.no_respawn_on.push_back(s);
    } else if (key == "stop_signal") {
      if (!fields::number(value, c.stop_signal)) fail_on(key, value);
    } else if (key == "stop_timeout_ms") {
      duration(key, value, c.stop_timeout);
    } else {
      fail_on(key, value);
    }
  });
  auto refuse = [](const std::string& why) {
    return daemonkit::fail(Error::because("read the supervisor's configuration", "", why));
  };
  if (format != kFormat)
    return refuse("it is in format '" + format + "', not " + std::string(kFormat) +
                  ": the command and the supervisor program are of different daemonkit versions");
  if (!ended) return refuse("it was cut short");
  if (!bad.empty()) return refuse("cannot use '" + bad + "'");
  if (c.argv.empty() || c.program.empty()) return refuse("it names no program");
  return c;
}

}  // namespace dkcli
