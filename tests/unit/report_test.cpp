#include "detach/report.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

using daemonkit::detail::decode_report;
using daemonkit::detail::Report;

namespace {
std::span<const std::byte> bytes_of(const Report& r) {
  return {reinterpret_cast<const std::byte*>(&r), sizeof r};
}
}  // namespace

TEST(Report, ReadyRoundTrips) {
  auto r = daemonkit::detail::make_report(Report::Kind::ready, 4242);
  auto d = decode_report(bytes_of(r));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Report::Kind::ready);
  EXPECT_EQ(d->pid, 4242);
}

TEST(Report, FailureCarriesStepPathAndErrno) {
  auto r = daemonkit::detail::make_failure("open", "/run/x.pid", ENOENT);
  auto d = decode_report(bytes_of(r));
  ASSERT_TRUE(d);
  auto e = daemonkit::detail::error_from(*d);
  EXPECT_EQ(e.message(), "open '/run/x.pid': No such file or directory");
  EXPECT_EQ(e.kind, daemonkit::ErrorKind::failure);
}

TEST(Report, OverlongPathIsTruncatedNotOverrun) {
  std::string path(5000, 'a');
  auto r = daemonkit::detail::make_failure("open", path.c_str(), EACCES);
  auto d = decode_report(bytes_of(r));
  ASSERT_TRUE(d);
  EXPECT_EQ(std::strlen(d->subject), sizeof(d->subject) - 1);
}

TEST(Report, RejectsWrongSizeMagicKindAndUnterminatedText) {
  auto good = daemonkit::detail::make_report(Report::Kind::ready, 10);
  auto b = bytes_of(good);
  EXPECT_FALSE(decode_report(b.first(b.size() - 1)));
  std::vector<std::byte> longer(b.begin(), b.end());
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_report(longer));

  Report bad = good;
  bad.magic = 0;
  EXPECT_FALSE(decode_report(bytes_of(bad)));
  bad = good;
  bad.kind = static_cast<Report::Kind>(0);
  EXPECT_FALSE(decode_report(bytes_of(bad)));
  bad = good;
  bad.kind = static_cast<Report::Kind>(99);
  EXPECT_FALSE(decode_report(bytes_of(bad)));
  bad = good;
  std::memset(bad.op, 'x', sizeof bad.op);
  EXPECT_FALSE(decode_report(bytes_of(bad)));
  bad = good;
  bad.pid = 0;
  EXPECT_FALSE(decode_report(bytes_of(bad)));
  bad = good;
  bad.pid = -1;
  EXPECT_FALSE(decode_report(bytes_of(bad)));
}
