#include "common/rfc3339.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace custody {
namespace {

TEST(Rfc3339, ReadsWhatFormatRfc3339MillisWritesAndOtherZones) {
  for (int64_t ms : {int64_t{0}, int64_t{1'796'464'800'123}, int64_t{951'782'400'999}}) {
    TimePoint t{std::chrono::milliseconds(ms)};
    EXPECT_EQ(ParseRfc3339Millis(FormatRfc3339Millis(t)), ms) << FormatRfc3339Millis(t);
  }
  EXPECT_EQ(ParseRfc3339Millis("2026-12-05T10:00:00Z"), 1'796'464'800'000);
  EXPECT_EQ(ParseRfc3339Millis("2026-12-05T11:00:00.5+01:00"), 1'796'464'800'500);
  EXPECT_EQ(ParseRfc3339Millis("2026-12-05T09:30:00.123456-00:30"), 1'796'464'800'123);
}

TEST(Rfc3339, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"", "2026-12-05", "2026-12-05T10:00:00", "2026-12-05 10:00:00Z", "2026-13-05T10:00:00Z",
        "2026-12-05T24:00:00Z", "2026-12-05T10:00:00.Z", "2026-12-05T10:00:00Zjunk",
        "2026-12-05T10:00:00+1:00", "2026-12-05T10:00:00+01:60", "x026-12-05T10:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339Millis(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace custody
