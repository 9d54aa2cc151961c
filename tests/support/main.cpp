// Test main: the test process becomes a child subreaper, so daemons that our
// commands orphan become our children and are reaped at once, instead of
// lingering as zombies until this machine's slow init gets to them.
#include <gtest/gtest.h>
#include <sys/prctl.h>

int main(int argc, char** argv) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
