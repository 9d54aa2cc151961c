// tools/daemonkit/supervisor/respawn.hpp: when to restart a payload.
//
// Delays grow from 100 ms, doubling up to 60 s; a run of at least a minute
// counts as stable and resets both the delay and the crash-loop count.
// --max-restarts N gives up after N restarts in a row of runs shorter than
// a minute (N + 1 runs in all); --no-respawn-on lists exit statuses that end
// respawning at once. Pure logic: time is passed in.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace dkcli {

class RespawnPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstDelay{100};
  static constexpr std::chrono::milliseconds kMaxDelay{60000};
  static constexpr std::chrono::seconds kStableRun{60};

  RespawnPolicy(std::optional<unsigned> max_restarts, std::vector<int> no_respawn_on)
      : max_restarts_(max_restarts), no_respawn_on_(std::move(no_respawn_on)) {}

  struct Decision {
    bool restart = false;
    std::chrono::milliseconds delay{0};
    std::string why_not;   // when !restart: "gave up after 5 restarts in 12 s", ...
    bool gave_up = false;  // --max-restarts ran out (an ending, whatever the last status)
  };

  // A run that began at `started` ended at `ended` with `wait_status`.
  Decision on_exit(int wait_status, Clock::time_point started, Clock::time_point ended);

  // The payload was started again (as on_exit decided); restarts() counts
  // those that happened, not one still waiting for its delay.
  void restarted() noexcept { ++total_restarts_; }
  [[nodiscard]] unsigned restarts() const noexcept { return total_restarts_; }

 private:
  std::optional<unsigned> max_restarts_;
  std::vector<int> no_respawn_on_;
  std::chrono::milliseconds delay_ = kFirstDelay;
  unsigned quick_in_a_row_ = 0;  // restarts after runs shorter than kStableRun
  std::optional<Clock::time_point> streak_start_;
  unsigned total_restarts_ = 0;
};

}  // namespace dkcli
