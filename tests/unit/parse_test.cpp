#include "daemonkit/parse.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

using daemonkit::parse_seconds;
using std::chrono::milliseconds;

TEST(ParseSeconds, AcceptsWholeAndFractionalSeconds) {
  EXPECT_EQ(*parse_seconds("5", "--t"), milliseconds(5000));
  EXPECT_EQ(*parse_seconds("0", "--t"), milliseconds(0));
  EXPECT_EQ(*parse_seconds("0.25", "--t"), milliseconds(250));
  EXPECT_EQ(*parse_seconds("1.5", "--t"), milliseconds(1500));
  EXPECT_EQ(*parse_seconds(".5", "--t"), milliseconds(500));
  EXPECT_EQ(*parse_seconds("0.001", "--t"), milliseconds(1));
}

TEST(ParseSeconds, RejectsWithAUsageErrorNamingTheText) {
  for (const char* text : {"", ".", "1.", "-1", "+1", "1e3", "abc", "1s", "inf", "nan", " 1",
                           "0.0001", "99999999999999999999"}) {
    auto r = parse_seconds(text, "--timeout");
    ASSERT_FALSE(r) << "accepted '" << text << "'";
    EXPECT_EQ(r.error().kind, daemonkit::ErrorKind::usage);
    EXPECT_NE(r.error().message().find("--timeout"), std::string::npos) << r.error().message();
  }
}

TEST(ParseInteger, RangeAndSign) {
  EXPECT_EQ(*daemonkit::parse_integer("-20", "--nice", -20, 19), -20);
  EXPECT_EQ(*daemonkit::parse_integer("19", "--nice", -20, 19), 19);
  for (const char* t : {"20", "-21", "", "-", "+1", "1.0", "x", "99999999999999999999"})
    EXPECT_FALSE(daemonkit::parse_integer(t, "--nice", -20, 19)) << t;
}

TEST(ParseUmask, OctalUpTo0777) {
  EXPECT_EQ(*daemonkit::parse_umask("022", "--umask"), 022U);
  EXPECT_EQ(*daemonkit::parse_umask("0077", "--umask"), 077U);
  EXPECT_EQ(*daemonkit::parse_umask("0", "--umask"), 0U);
  for (const char* t : {"", "8", "0800", "1000", "abc", "-22", "00022", " 22"})
    EXPECT_FALSE(daemonkit::parse_umask(t, "--umask")) << t;
}

TEST(ParseSignal, NamesNumbersAndRealtime) {
  EXPECT_EQ(*daemonkit::parse_signal("TERM", "--signal"), SIGTERM);
  EXPECT_EQ(*daemonkit::parse_signal("SIGKILL", "--signal"), SIGKILL);
  EXPECT_EQ(*daemonkit::parse_signal("usr1", "--signal"), SIGUSR1);
  EXPECT_EQ(*daemonkit::parse_signal("15", "--signal"), 15);
  EXPECT_EQ(*daemonkit::parse_signal("RTMIN+2", "--signal"), SIGRTMIN + 2);
  EXPECT_EQ(*daemonkit::parse_signal("SIGRTMAX", "--signal"), SIGRTMAX);
  for (const char* t : {"", "0", "65", "-1", "SIG", "TERMX", "RTMIN+99", "RTMAX+1", "1e1"})
    EXPECT_FALSE(daemonkit::parse_signal(t, "--signal")) << t;
  EXPECT_EQ(daemonkit::signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(daemonkit::signal_name(SIGABRT), "SIGABRT");
  EXPECT_EQ(daemonkit::signal_name(SIGRTMIN + 1), "SIGRTMIN+1");
}

TEST(ParseAssignment, NameEqualsValue) {
  auto a = daemonkit::parse_assignment("PATH=/bin:/usr/bin", "--env");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "PATH");
  EXPECT_EQ(a->second, "/bin:/usr/bin");
  EXPECT_EQ(daemonkit::parse_assignment("EMPTY=", "--env")->second, "");
  EXPECT_EQ(daemonkit::parse_assignment("A=b=c", "--env")->second, "b=c");
  for (const char* t : {"", "=x", "NOEQUALS", "1A=x", "A-B=x", "A B=x"})
    EXPECT_FALSE(daemonkit::parse_assignment(t, "--env")) << t;
}

TEST(ParseSize, SuffixesCountIn1024) {
  EXPECT_EQ(*daemonkit::parse_size("100", "--log-max-size"), 100U);
  EXPECT_EQ(*daemonkit::parse_size("1K", "--log-max-size"), 1024U);
  EXPECT_EQ(*daemonkit::parse_size("10M", "--log-max-size"), 10U << 20);
  EXPECT_EQ(*daemonkit::parse_size("2G", "--log-max-size"), 2ULL << 30);
  for (const char* t : {"", "0", "K", "1.5M", "-1", "1T", "1KB", "99999999999999999999"})
    EXPECT_FALSE(daemonkit::parse_size(t, "--log-max-size")) << t;
}

TEST(ParseStatusList, CommaSeparatedExitStatuses) {
  EXPECT_EQ(*daemonkit::parse_status_list("78", "--no-respawn-on"), std::vector<int>{78});
  EXPECT_EQ(*daemonkit::parse_status_list("0,1,255", "--no-respawn-on"),
            (std::vector<int>{0, 1, 255}));
  for (const char* t : {"", ",", "1,", ",1", "256", "-1", "a", "1;2"})
    EXPECT_FALSE(daemonkit::parse_status_list(t, "--no-respawn-on")) << t;
}

TEST(ParseLimit, NamesValuesAndInfinity) {
  auto l = daemonkit::parse_limit("nofile=1024:4096", "--limit");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->resource, RLIMIT_NOFILE);
  EXPECT_EQ(l->soft, 1024U);
  EXPECT_EQ(l->hard, 4096U);
  l = daemonkit::parse_limit("core=infinity", "--limit");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->soft, static_cast<std::uint64_t>(RLIM_INFINITY));
  EXPECT_EQ(l->hard, static_cast<std::uint64_t>(RLIM_INFINITY));
  EXPECT_EQ(daemonkit::parse_limit("cpu=10", "--limit")->hard, 10U);
  for (const char* t : {"", "nofile", "nofile=", "bogus=1", "nofile=2:1", "nofile=x",
                        "nofile=1:", "stack=-1", "as=infinity:5"})
    EXPECT_FALSE(daemonkit::parse_limit(t, "--limit")) << t;
}
