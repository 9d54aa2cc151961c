// The configuration the command hands to the supervisor program: every
// field survives the trip, whatever bytes it holds; anything else is
// refused, naming why.
#include "supervisor/config.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

using dkcli::decode_config;
using dkcli::encode_config;
using dkcli::SupervisorConfig;
using namespace std::chrono_literals;

namespace {

SupervisorConfig everything() {
  SupervisorConfig c;
  c.pidfile = "/run/odd\nname\\x01.pid";
  c.foreground = true;
  c.outer_notify = "@outer socket";
  c.program = "/usr/bin/prog ram";
  c.argv = {"prog", "", "a=b", "new\nline", "tab\there", "\x7f\x01", "--end=1"};
  c.env = {"A=1", "EMPTY=", "MULTI=line1\nline2", "end="};
  daemonkit::Credentials creds;
  creds.user = "svc";
  creds.uid = 1234;
  creds.gid = 567;
  creds.groups = {567, 10, 20};
  c.credentials = creds;
  c.chroot = "/srv/root";
  c.working_directory = "/data dir";
  c.umask = 077;
  c.nice = -5;
  c.limits = {daemonkit::ResourceLimit{RLIMIT_NOFILE, "nofile", 1024, 4096},
              daemonkit::ResourceLimit{RLIMIT_CORE, "core with space", 0, RLIM_INFINITY}};
  c.oom_score_adj = -1000;
  c.no_new_privs = true;
  c.stdin_path = "";
  c.stdout_path = "/var/log/out.log";
  c.stderr_to_stdout = true;
  c.rotation = daemonkit::OutputFile::Rotation{1 << 20, 3};
  c.notify = true;
  c.ready_timeout = 2500ms;
  c.watchdog = 1500ms;
  c.reload_notify = true;
  c.respawn = true;
  c.max_restarts = 7;
  c.no_respawn_on = {78, 2};
  c.stop_signal = SIGINT;
  c.stop_timeout = 750ms;
  return c;
}

}  // namespace

TEST(SupervisorConfig, EveryFieldSurvivesTheHandOver) {
  const SupervisorConfig c = everything();
  auto d = decode_config(encode_config(c));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->pidfile, c.pidfile);
  EXPECT_EQ(d->foreground, c.foreground);
  EXPECT_EQ(d->outer_notify, c.outer_notify);
  EXPECT_EQ(d->program, c.program);
  EXPECT_EQ(d->argv, c.argv);
  EXPECT_EQ(d->env, c.env);
  ASSERT_TRUE(d->credentials);
  EXPECT_EQ(d->credentials->user, "svc");
  EXPECT_EQ(d->credentials->uid, 1234u);
  EXPECT_EQ(d->credentials->gid, 567u);
  EXPECT_EQ(d->credentials->groups, (std::vector<gid_t>{567, 10, 20}));
  EXPECT_EQ(d->chroot, c.chroot);
  EXPECT_EQ(d->working_directory, c.working_directory);
  EXPECT_EQ(d->umask, c.umask);
  EXPECT_EQ(d->nice, c.nice);
  ASSERT_EQ(d->limits.size(), 2u);
  EXPECT_EQ(d->limits[1].resource, RLIMIT_CORE);
  EXPECT_EQ(d->limits[1].name, "core with space");
  EXPECT_EQ(d->limits[1].hard, RLIM_INFINITY);
  EXPECT_EQ(d->limits[0].soft, 1024u);
  EXPECT_EQ(d->oom_score_adj, c.oom_score_adj);
  EXPECT_TRUE(d->no_new_privs);
  ASSERT_TRUE(d->stdin_path) << "an empty path is not an absent one";
  EXPECT_EQ(*d->stdin_path, "");
  EXPECT_EQ(d->stdout_path, c.stdout_path);
  EXPECT_FALSE(d->stderr_path);
  EXPECT_TRUE(d->stderr_to_stdout);
  ASSERT_TRUE(d->rotation);
  EXPECT_EQ(d->rotation->max_size, 1u << 20);
  EXPECT_EQ(d->rotation->keep, 3u);
  EXPECT_FALSE(d->syslog_tag);
  EXPECT_TRUE(d->notify);
  EXPECT_EQ(d->ready_timeout, 2500ms);
  EXPECT_FALSE(d->ready_after);
  EXPECT_EQ(d->watchdog, 1500ms);
  EXPECT_TRUE(d->reload_notify);
  EXPECT_TRUE(d->respawn);
  EXPECT_EQ(d->max_restarts, 7u);
  EXPECT_EQ(d->no_respawn_on, (std::vector<int>{78, 2}));
  EXPECT_EQ(d->stop_signal, SIGINT);
  EXPECT_EQ(d->stop_timeout, 750ms);
  // And what is unset stays unset.
  SupervisorConfig plain;
  plain.argv = {"sleep"};
  plain.program = "/bin/sleep";
  auto p = decode_config(encode_config(plain));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(p->credentials);
  EXPECT_FALSE(p->stdin_path);
  EXPECT_FALSE(p->rotation);
  EXPECT_FALSE(p->watchdog);
  EXPECT_FALSE(p->max_restarts);
  EXPECT_FALSE(p->foreground);
  EXPECT_TRUE(p->outer_notify.empty());
}

TEST(SupervisorConfig, WhatIsNotUnderstoodIsRefusedNamingWhy) {
  const std::string text = encode_config(everything());
  auto cut = decode_config(text.substr(0, text.size() / 2));
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message().find("cut short"), std::string::npos) << cut.error().message();

  std::string other = text;
  other.replace(other.find("daemonkit_config=1"), 18, "daemonkit_config=2");
  auto skew = decode_config(other);
  ASSERT_FALSE(skew);
  EXPECT_NE(skew.error().message().find("different daemonkit versions"), std::string::npos)
      << skew.error().message();

  auto unknown =
      decode_config("daemonkit_config=1\nprogram=/bin/true\narg=true\ncolour=red\nend=\n");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("colour=red"), std::string::npos);

  auto bad_number = decode_config(
      "daemonkit_config=1\nprogram=/bin/true\narg=true\nstop_timeout_ms=soon\nend=\n");
  ASSERT_FALSE(bad_number);

  auto after_end =
      decode_config("daemonkit_config=1\nprogram=/bin/true\narg=true\nend=\nrespawn=1\n");
  ASSERT_FALSE(after_end);

  auto no_program = decode_config("daemonkit_config=1\nend=\n");
  ASSERT_FALSE(no_program);
  EXPECT_NE(no_program.error().message().find("no program"), std::string::npos);
}
