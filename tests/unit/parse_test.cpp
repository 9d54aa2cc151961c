#include "daemonkit/parse.hpp"

#include <gtest/gtest.h>

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
