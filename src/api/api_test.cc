#include <gtest/gtest.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "common/stream_logger.h"

namespace custody::api {
namespace {

TEST(SplitCanonicalArray, SplitsTopLevelOnly) {
  auto v = SplitCanonicalArray(R"([{"a":[1,2],"b":"x,]\"y"},{"c":{}},3])");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], R"({"a":[1,2],"b":"x,]\"y"})");
  EXPECT_EQ(v[1], R"({"c":{}})");
  EXPECT_EQ(v[2], "3");
  EXPECT_TRUE(SplitCanonicalArray("[]").empty());
  EXPECT_EQ(SplitCanonicalArray(R"(["\\",1])").size(), 2u);
}

TEST(Metrics, ErrorsNoCallerHeardOfAreCountedBySite) {
  Metrics m;
  NullLogger log;
  ErrorReporter errors(log);
  m.ReportErrorsOf(errors);
  EXPECT_EQ(m.Render().find("custody_errors_total{"), std::string::npos);
  errors.Report("attribution.index_write", UnavailableError("disk full"));
  errors.Report("attribution.index_write", UnavailableError("disk full"));
  errors.Report("mcp.upstream_write", UnavailableError("broken pipe"));
  std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE custody_errors_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("custody_errors_total{site=\"attribution.index_write\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("custody_errors_total{site=\"mcp.upstream_write\"} 1\n"), std::string::npos)
      << text;
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.ObserveRequest("GET", "/healthz", 200, 0.0002);
  m.ObserveRequest("GET", "/healthz", 200, 0.02);
  m.ObserveRequest("POST", "/v1/ledger/entries", 401, 0.001);
  m.ObserveBatch(10, 0.003);
  m.AddGauge("custody_ledger_size", "Leaves.", [] { return 42.0; });
  std::string text = m.Render();
  EXPECT_NE(text.find("custody_ledger_size 42\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          "custody_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("custody_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                      "healthz\",le=\"0.00025\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "custody_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("custody_ledger_batch_size_bucket{le=\"16\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("custody_ledger_commit_duration_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE custody_ledger_batch_size histogram"), std::string::npos);
}

TEST(Logger, JsonAndTextLines) {
  FakeClock clock;
  StreamLogger json(LogLevel::kInfo, true, clock);
  std::string line = json.Format(LogLevel::kInfo, "request",
                                 {{"method", std::string_view("GET")},
                                  {"status", int64_t{200}},
                                  {"odd", std::string_view("a\"b\n\xff")}});
  EXPECT_EQ(line,
            "{\"time\":\"2023-11-14T22:13:20.000Z\",\"level\":\"info\",\"msg\":\"request\","
            "\"method\":\"GET\",\"status\":200,\"odd\":\"a\\\"b\\u000a\\u00ff\"}\n");
  EXPECT_FALSE(json.Enabled(LogLevel::kDebug));
  StreamLogger text(LogLevel::kDebug, false, clock);
  EXPECT_EQ(text.Format(LogLevel::kWarn, "x", {{"k", std::string_view("v")}}),
            "2023-11-14T22:13:20.000Z warn x k=v\n");
}

}  // namespace
}  // namespace custody::api
