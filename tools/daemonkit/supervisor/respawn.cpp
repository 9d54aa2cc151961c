#include "supervisor/respawn.hpp"

#include <sys/wait.h>

#include <algorithm>

#include "daemonkit/spawn.hpp"

namespace dkcli {

RespawnPolicy::Decision RespawnPolicy::on_exit(int wait_status, Clock::time_point started,
                                               Clock::time_point ended) {
  Decision d;
  if (WIFEXITED(wait_status) && std::find(no_respawn_on_.begin(), no_respawn_on_.end(),
                                          WEXITSTATUS(wait_status)) != no_respawn_on_.end()) {
    d.why_not = daemonkit::describe_exit(wait_status) + ": not restarted";
    return d;
  }
  if (ended - started >= kStableRun) {
    // A stable run: it starts no crash loop, and its restart does not count.
    delay_ = kFirstDelay;
    quick_in_a_row_ = 0;
    streak_start_.reset();
    d.restart = true;
    d.delay = delay_;
    return d;
  }
  if (!streak_start_) streak_start_ = started;
  if (max_restarts_ && quick_in_a_row_ >= *max_restarts_) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(ended - *streak_start_).count();
    d.why_not = "gave up after " + std::to_string(quick_in_a_row_) + " restarts in " +
                std::to_string(secs) + " s";
    d.gave_up = true;
    return d;
  }
  d.restart = true;
  d.delay = delay_;
  delay_ = std::min(delay_ * 2, std::chrono::milliseconds(kMaxDelay));
  ++quick_in_a_row_;
  return d;
}

}  // namespace dkcli
