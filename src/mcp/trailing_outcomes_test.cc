#include "mcp/trailing_outcomes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace custody::mcp {
namespace {

using namespace std::chrono_literals;

// Polls `pred` for up to `limit`.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

TEST(TrailingOutcomesTest, FlushRunsWhatIsHeldOnTheCallersThread) {
  TrailingOutcomes t(10s);
  std::thread::id ran_on;
  int runs = 0;
  t.Add([&] {
    ran_on = std::this_thread::get_id();
    ++runs;
  });
  t.Add([&] { ++runs; });
  EXPECT_EQ(runs, 0);  // held: a long linger, and no Flush yet
  EXPECT_EQ(t.size(), 2u);
  t.Flush();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(t.size(), 0u);
  t.Flush();  // nothing held: nothing runs twice
  EXPECT_EQ(runs, 2);
}

TEST(TrailingOutcomesTest, TakeHandsOverWhatIsHeld) {
  TrailingOutcomes t(10s);
  int runs = 0;
  t.Add([&] { ++runs; });
  std::vector<TrailingOutcomes::Record> taken = t.Take();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(runs, 0);  // the caller runs them
  t.Stop();
  EXPECT_EQ(runs, 0);  // taken: not the holder's any more
  taken[0]();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(t.Take().empty());
}

TEST(TrailingOutcomesTest, WhatNoFlushTakesRunsAfterTheLinger) {
  TrailingOutcomes t(200ms);
  std::atomic<int> runs{0};
  const auto added = std::chrono::steady_clock::now();
  std::atomic<int64_t> after_ms{-1};
  t.Add([&] {
    after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - added)
                   .count();
    ++runs;
  });
  ASSERT_TRUE(Eventually([&] { return runs.load() == 1; }));
  EXPECT_GE(after_ms.load(), 200);  // not before its linger
  EXPECT_EQ(t.size(), 0u);
}

TEST(TrailingOutcomesTest, AFlushStartsTheNextLingerAfresh) {
  // A record added after a Flush waits its own linger, not what was left of the one before.
  TrailingOutcomes t(600ms);
  std::atomic<int> a{0}, b{0};
  const auto start = std::chrono::steady_clock::now();
  t.Add([&] { ++a; });
  std::this_thread::sleep_for(300ms);
  t.Flush();
  EXPECT_EQ(a.load(), 1);
  t.Add([&] { ++b; });
  std::this_thread::sleep_until(start + 650ms);  // past the first record's deadline
  EXPECT_EQ(b.load(), 0);
  ASSERT_TRUE(Eventually([&] { return b.load() == 1; }));
  EXPECT_EQ(a.load(), 1);
}

TEST(TrailingOutcomesTest, StopRunsWhatIsHeldAndLaterRecordsAtOnce) {
  std::atomic<int> runs{0};
  {
    TrailingOutcomes t(10s);
    t.Add([&] { ++runs; });
    t.Stop();
    EXPECT_EQ(runs.load(), 1);  // not lost: the gateway stops before the ledger closes
    t.Add([&] { ++runs; });
    EXPECT_EQ(runs.load(), 2);  // nothing would run it later
    t.Stop();                   // idempotent
  }
  EXPECT_EQ(runs.load(), 2);
  {
    TrailingOutcomes t(10s);
    t.Add([&] { ++runs; });
  }  // the destructor stops
  EXPECT_EQ(runs.load(), 3);
}

}  // namespace
}  // namespace custody::mcp
