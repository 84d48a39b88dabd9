// Metrics: counters and histograms rendered in the Prometheus text exposition format (0.0.4).
//
//   custody_http_requests_total{method,route,status}         counter
//   custody_http_request_duration_seconds{method,route}      histogram
//   custody_ledger_size                                      gauge (leaves in the latest
//   checkpoint) custody_ledger_batch_size                                histogram (events per
//   commit) custody_ledger_commit_duration_seconds                   histogram (batch commit incl.
//   fsync)
//
// Routes are label values from the route pattern, never raw paths, so cardinality is bounded.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace custody::api {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);  // caller holds the owning Metrics' mutex
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
  std::string Render();

 private:
  std::mutex mu_;
  // (method, route, status) -> count; guarded by mu_
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  // (method, route) -> latency; guarded by mu_
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
  Histogram batch_size_;      // guarded by mu_
  Histogram commit_seconds_;  // guarded by mu_
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<Gauge> gauges_;  // guarded by mu_
};

}  // namespace custody::api
