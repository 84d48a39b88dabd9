// ErrorReporter: an error nobody could be told of is logged at warn, with its site and code,
// and counted by site.
#include "common/error_reporter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "common/stream_logger.h"

namespace custody {
namespace {

TEST(ErrorReporter, LogsAtWarnAndCountsBySite) {
  char buf[4096] = {};
  FILE* out = fmemopen(buf, sizeof(buf) - 1, "w");
  ASSERT_NE(out, nullptr);
  FakeClock clock;
  StreamLogger log(LogLevel::kWarn, true, clock, out);
  ErrorReporter errors(log);
  EXPECT_EQ(errors.Count("attribution.index_write"), 0u);
  errors.Report("attribution.index_write", UnavailableError("attribution store: disk is full"));
  errors.Report("attribution.index_write", UnavailableError("attribution store: disk is full"));
  errors.Report("attribution.mark_used", DataLossError("corrupt"));
  std::fclose(out);
  std::string text(buf);
  EXPECT_NE(text.find(R"("level":"warn","msg":"error","site":"attribution.index_write",)"
                      R"("code":"unavailable","message":"attribution store: disk is full"})"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("site":"attribution.mark_used","code":"data_loss")"), std::string::npos)
      << text;
  EXPECT_EQ(errors.Count("attribution.index_write"), 2u);
  auto counts = errors.Counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].first, "attribution.index_write");
  EXPECT_EQ(counts[1], (std::pair<std::string, uint64_t>{"attribution.mark_used", 1}));
}

}  // namespace
}  // namespace custody
