#include "common/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace custody {
namespace {

class CountingRandom final : public Random {
 public:
  void Fill(std::span<uint8_t> out) override {
    for (auto& b : out) b = static_cast<uint8_t>(next_++);
  }

 private:
  uint32_t next_ = 0x5a;
};

TEST(UuidTest, LayoutFollowsRfc9562) {
  FakeClock clock(TimePoint(std::chrono::milliseconds(0x0123456789AB)));
  SystemRandom random;
  UuidV7Generator gen(clock, random);
  Uuid id = gen.Next();
  EXPECT_EQ(FormatUuid(id).substr(0, 13), "01234567-89ab");
  EXPECT_EQ(id[6] >> 4, 7);     // version
  EXPECT_EQ(id[8] >> 6, 0b10);  // variant
  auto parsed = ParseUuid(FormatUuid(id));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, id);
}

TEST(UuidTest, StrictlyIncreasingEvenWhenClockStandsStillOrStepsBack) {
  FakeClock clock;
  CountingRandom random;
  UuidV7Generator gen(clock, random);
  std::string prev = gen.NextString();
  std::set<std::string> seen{prev};
  for (int i = 0; i < 10000; ++i) {
    if (i == 5000) clock.Advance(std::chrono::milliseconds(-10));
    if (i % 3000 == 0) clock.Advance(std::chrono::milliseconds(1));
    std::string next = gen.NextString();
    EXPECT_LT(prev, next);
    EXPECT_TRUE(seen.insert(next).second);
    prev = next;
  }
}

TEST(UuidTest, ParseRejectsMalformed) {
  EXPECT_FALSE(ParseUuid("not-a-uuid").ok());
  EXPECT_FALSE(ParseUuid("0123456789ab-cdef-0123-4567-89abcdef0123").ok());
  EXPECT_FALSE(ParseUuid("0123456z-89ab-cdef-0123-456789abcdef").ok());
}

TEST(ClockTest, FormatsRfc3339) {
  FakeClock clock(TimePoint(std::chrono::milliseconds(1763788411123)));
  EXPECT_EQ(FormatRfc3339Millis(clock.Now()), "2025-11-22T05:13:31.123Z");
}

}  // namespace
}  // namespace custody
