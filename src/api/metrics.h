// Metrics: counters and histograms rendered in the Prometheus text exposition format (0.0.4).
//
//   custody_http_requests_total{method,route,status}         counter
//   custody_http_request_duration_seconds{method,route}      histogram
//   custody_ledger_size                                      gauge (leaves in the latest
//                                                            checkpoint)
//   custody_ledger_batch_size                                histogram (events per commit)
//   custody_ledger_commit_duration_seconds                   histogram (commit incl. fsync)
//   custody_errors_total{site}                               counter (errors no caller could be
//                                                            told of, common/error_reporter.h)
//
// Routes are label values from the route pattern, never raw paths, so cardinality is bounded.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/error_reporter.h"
#include "common/mutex.h"

namespace custody::api {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);  // the owning Metrics guards it
  // Appends "<name>_bucket{labels,le=…} n" lines, _sum and _count.
  void Render(std::string_view name, std::string_view labels, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // non-cumulative; one extra for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void ObserveRequest(std::string_view method, std::string_view route, int status, double seconds);
  void ObserveBatch(size_t events, double commit_seconds);
  // Gauges read at scrape time (e.g. the ledger size).
  void AddGauge(std::string name, std::string help, std::function<double()> read);
  // custody_errors_total is read from `errors`, which must outlive the Metrics.
  void ReportErrorsOf(const ErrorReporter& errors);
  std::string Render();

 private:
  Mutex mu_;
  // (method, route, status) -> count
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_ GUARDED_BY(mu_);
  // (method, route) -> latency
  std::map<std::pair<std::string, std::string>, Histogram> latency_ GUARDED_BY(mu_);
  Histogram batch_size_ GUARDED_BY(mu_);
  Histogram commit_seconds_ GUARDED_BY(mu_);
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<Gauge> gauges_ GUARDED_BY(mu_);
  const ErrorReporter* errors_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace custody::api
