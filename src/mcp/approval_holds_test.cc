// ApprovalHolds alone: polled at once, woken by its approval (and only its own), by its timer
// not before its deadline, until the poll says stop; every hold answered when it
// stops, also one added after.
#include "mcp/approval_holds.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace custody::mcp {
namespace {

using namespace std::chrono_literals;
using Why = ApprovalHolds::Why;
using SteadyClock = std::chrono::steady_clock;

// What the polls of one hold saw, and when to stop.
class Log {
 public:
  ApprovalHolds::Poll Poll(std::string name, int polls_before_stop = 1000) {
    return [this, name, polls_before_stop](Why why) {
      std::lock_guard lock(mu_);
      seen_.push_back({name, why});
      cv_.notify_all();
      return static_cast<int>(Count(name)) < polls_before_stop;
    };
  }
  // Waits until `pred` holds of what was seen (false after 10 s).
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return pred(); });
  }
  size_t Count(const std::string& name, std::optional<Why> why = std::nullopt) const {
    size_t n = 0;
    for (const auto& [who, w] : seen_) n += who == name && (!why || *why == w);
    return n;
  }
  size_t CountLocked(const std::string& name, std::optional<Why> why = std::nullopt) {
    std::lock_guard lock(mu_);
    return Count(name, why);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, Why>> seen_;  // guarded by mu_
};

TEST(ApprovalHoldsTest, APollRunsAtOnceAndAgainWhenItsApprovalIsWoken) {
  Log log;  // outlives the holds: their last poll (kStopping) is logged too
  ApprovalHolds holds;
  const auto far = SteadyClock::now() + 1h;
  holds.Add("a1", far, log.Poll("a"));
  holds.Add("b1", far, log.Poll("b"));
  ASSERT_TRUE(log.WaitFor([&] { return log.Count("a") >= 1 && log.Count("b") >= 1; }));
  EXPECT_EQ(holds.size(), 2u);
  holds.Wake("a1");
  ASSERT_TRUE(log.WaitFor([&] { return log.Count("a", Why::kWoken) == 1; }));
  EXPECT_EQ(log.CountLocked("b", Why::kWoken), 0u) << "only the holds of the approval named";
  holds.Wake("unknown");  // nothing holds on it: nothing happens
}

TEST(ApprovalHoldsTest, AHoldEndsWhenItsPollSaysSo) {
  Log log;  // outlives the holds: their last poll (kStopping) is logged too
  ApprovalHolds holds;
  holds.Add("a1", SteadyClock::now() + 1h, log.Poll("a", /*polls_before_stop=*/2));
  holds.Wake("a1");  // the second poll returns false
  ASSERT_TRUE(log.WaitFor([&] { return log.Count("a") >= 2; }));
  ASSERT_TRUE(log.WaitFor([&] { return holds.size() == 0; }));
  holds.Stop();
  EXPECT_EQ(log.CountLocked("a", Why::kStopping), 0u) << "an ended hold is not polled again";
}

// Polled again by its timer, the deadline being the next time (before a period has passed; not
// asserted: timing is for benchmarks).
TEST(ApprovalHoldsTest, PolledAgainByItsTimerNotBeforeItsDeadline) {
  Log log;  // outlives the holds: their last poll (kStopping) is logged too
  ApprovalHolds holds;
  const auto start = SteadyClock::now();
  const auto deadline = start + 100ms;
  SteadyClock::time_point second;
  std::mutex mu;
  holds.Add("a1", deadline, [&, poll = log.Poll("a", 2)](Why why) {
    {
      std::lock_guard lock(mu);
      if (second == SteadyClock::time_point{} && log.CountLocked("a") == 1) {
        second = SteadyClock::now();
      }
    }
    return poll(why);
  });
  ASSERT_TRUE(log.WaitFor([&] { return log.Count("a") >= 2; }));
  std::lock_guard lock(mu);
  EXPECT_GE(second, deadline);
  EXPECT_EQ(log.CountLocked("a", Why::kTimer), 2u);
}

TEST(ApprovalHoldsTest, StoppingAnswersEveryHoldAndThoseAddedAfter) {
  Log log;
  {
    ApprovalHolds holds;
    holds.Add("a1", SteadyClock::now() + 1h, log.Poll("a"));
    holds.Add("a1", SteadyClock::now() + 1h, log.Poll("b"));
    ASSERT_TRUE(log.WaitFor([&] { return log.Count("a") >= 1 && log.Count("b") >= 1; }));
    holds.Stop();
    EXPECT_EQ(log.CountLocked("a", Why::kStopping), 1u);
    EXPECT_EQ(log.CountLocked("b", Why::kStopping), 1u);
    EXPECT_EQ(holds.size(), 0u);
    holds.Add("c1", SteadyClock::now() + 1h, log.Poll("c"));
    EXPECT_EQ(log.CountLocked("c", Why::kStopping), 1u) << "answered at once, on this thread";
  }  // the destructor stops again: nothing more
  EXPECT_EQ(log.CountLocked("a", Why::kStopping), 1u);
}

}  // namespace
}  // namespace custody::mcp
