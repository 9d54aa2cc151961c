#include "daemonkit/pidfile.hpp"

#include <gtest/gtest.h>

#include <string>

using daemonkit::parse_pid;

TEST(ParsePid, AcceptsDigitsWithOrWithoutNewline) {
  EXPECT_EQ(parse_pid("1234\n", 32768), 1234);
  EXPECT_EQ(parse_pid("1234", 32768), 1234);
  EXPECT_EQ(parse_pid("2\n", 32768), 2);
  EXPECT_EQ(parse_pid("32768\n", 32768), 32768);
}

TEST(ParsePid, RejectsPidsThatWouldTurnKillIntoAMassacre) {
  EXPECT_FALSE(parse_pid("-1\n", 32768));
  EXPECT_FALSE(parse_pid("0\n", 32768));
  EXPECT_FALSE(parse_pid("1\n", 32768));
  EXPECT_FALSE(parse_pid("-1234\n", 32768));
}

TEST(ParsePid, RejectsGarbageSignsSpacesAndOverflow) {
  for (const char* text : {"", "\n", "abc", "12a", "+12", " 12", "12 ", "12\n\n", "1 2", "0x10",
                           "32769", "99999999999", "18446744073709551615", "4294967295", "12\r\n"})
    EXPECT_FALSE(parse_pid(text, 32768)) << "accepted '" << text << "'";
}

TEST(ParsePid, RejectsAMegabyteOfDigits) {
  std::string huge(1 << 20, '9');
  EXPECT_FALSE(parse_pid(huge, 32768));
}

TEST(PidMax, IsWithinTheKernelsBounds) {
  auto m = daemonkit::pid_max();
  EXPECT_GT(m, 1);
  EXPECT_LE(m, 4194304);
}
