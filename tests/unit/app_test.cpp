#include "daemonkit/app.hpp"

#include <gtest/gtest.h>

using daemonkit::App;
using daemonkit::Invocation;

namespace {
App make_app(int* interval) {
  App app("t", [](daemonkit::Context&) { return 0; });
  app.option({"--interval", "N", "help", [interval](std::string_view v) -> daemonkit::Result<void> {
                if (v == "bad")
                  return daemonkit::Error::because("parse --interval", std::string(v), "bad",
                                                   daemonkit::ErrorKind::usage);
                *interval = static_cast<int>(v.size());
                return {};
              }});
  return app;
}
}  // namespace

TEST(AppParse, CommandAndOptionsInAnyOrder) {
  int interval = 0;
  auto app = make_app(&interval);
  auto inv = app.parse({"--pidfile", "/p", "start", "--log=/l", "--interval", "abc"});
  ASSERT_TRUE(inv) << inv.error().message();
  EXPECT_EQ(inv->command, Invocation::Command::start);
  EXPECT_EQ(inv->pidfile, "/p");
  EXPECT_EQ(inv->log, "/l");
  EXPECT_EQ(interval, 3);
}

TEST(AppParse, TimeoutIsSeconds) {
  int interval = 0;
  auto inv = make_app(&interval).parse({"stop", "--timeout", "1.5"});
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->timeout, std::chrono::milliseconds(1500));
}

TEST(AppParse, HelpWinsOverEverythingElse) {
  int interval = 0;
  auto inv = make_app(&interval).parse({"stop", "--help"});
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->command, Invocation::Command::help);
}

TEST(AppParse, UsageErrorsNameTheArgument) {
  int interval = 0;
  auto app = make_app(&interval);
  struct Case {
    std::vector<std::string_view> args;
    const char* needle;
  };
  for (const auto& c : std::vector<Case>{{{}, "no command"},
                                         {{"frobnicate"}, "frobnicate"},
                                         {{"start", "stop"}, "stop"},
                                         {{"start", "--bogus"}, "--bogus"},
                                         {{"start", "--pidfile"}, "--pidfile"},
                                         {{"start", "--pidfile="}, "--pidfile"},
                                         {{"stop", "--timeout", "x"}, "--timeout"},
                                         {{"start", "--interval", "bad"}, "--interval"}}) {
    auto inv = app.parse(c.args);
    ASSERT_FALSE(inv) << c.needle;
    EXPECT_EQ(inv.error().kind, daemonkit::ErrorKind::usage);
    auto text = inv.error().message();
    EXPECT_NE(text.find(c.needle), std::string::npos) << text;
  }
}
