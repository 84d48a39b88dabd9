#include "api/metrics.h"

#include <algorithm>
#include <cstdio>

namespace custody::api {
namespace {

const std::vector<double> kLatencyBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Label values come from route patterns and method tokens; escape anyway, per the format.
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i]++;
  sum_ += value;
  count_++;
}

void Histogram::Render(std::string_view name, std::string_view labels, std::string& out) const {
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += std::string(name) + "_bucket{" + std::string(labels) + sep + "le=\"" +
           (i < bounds_.size() ? Num(bounds_[i]) : "+Inf") + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  out += std::string(name) + "_sum" + braces + " " + Num(sum_) + "\n";
  out += std::string(name) + "_count" + braces + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics() : batch_size_(kBatchBounds), commit_seconds_(kLatencyBounds) {}

void Metrics::ObserveRequest(std::string_view method, std::string_view route, int status,
                             double seconds) {
  MutexLock lock(mu_);
  requests_[{std::string(method), std::string(route), status}]++;
  auto key = std::make_pair(std::string(method), std::string(route));
  auto it = latency_.find(key);
  if (it == latency_.end()) it = latency_.emplace(key, Histogram(kLatencyBounds)).first;
  it->second.Observe(seconds);
}

void Metrics::ObserveBatch(size_t events, double commit_seconds) {
  MutexLock lock(mu_);
  batch_size_.Observe(static_cast<double>(events));
  commit_seconds_.Observe(commit_seconds);
}

void Metrics::AddGauge(std::string name, std::string help, std::function<double()> read) {
  MutexLock lock(mu_);
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

void Metrics::ReportErrorsOf(const ErrorReporter& errors) {
  MutexLock lock(mu_);
  errors_ = &errors;
}

std::string Metrics::Render() {
  std::vector<Gauge> gauges;
  const ErrorReporter* errors;
  {
    MutexLock lock(mu_);
    gauges = gauges_;
    errors = errors_;
  }
  std::string out;
  if (errors != nullptr) {
    out +=
        "# HELP custody_errors_total Errors no caller could be told of, by site (each is also "
        "logged at warn).\n# TYPE custody_errors_total counter\n";
    for (const auto& [site, n] : errors->Counts()) {
      out += "custody_errors_total{site=\"" + Escape(site) + "\"} " + std::to_string(n) + "\n";
    }
  }
  // Gauges are read outside mu_: they may take other locks (the ledger's).
  for (const Gauge& g : gauges) {
    out += "# HELP " + g.name + " " + g.help + "\n# TYPE " + g.name + " gauge\n";
    out += g.name + " " + Num(g.read()) + "\n";
  }
  MutexLock lock(mu_);
  out += "# HELP custody_http_requests_total HTTP requests by method, route pattern and status.\n";
  out += "# TYPE custody_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [method, route, status] = key;
    out += "custody_http_requests_total{method=\"" + Escape(method) + "\",route=\"" +
           Escape(route) + "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) +
           "\n";
  }
  out += "# HELP custody_http_request_duration_seconds Time from request header to response.\n";
  out += "# TYPE custody_http_request_duration_seconds histogram\n";
  for (const auto& [key, h] : latency_) {
    h.Render("custody_http_request_duration_seconds",
             "method=\"" + Escape(key.first) + "\",route=\"" + Escape(key.second) + "\"", out);
  }
  out += "# HELP custody_ledger_batch_size Events per committed ledger batch.\n";
  out += "# TYPE custody_ledger_batch_size histogram\n";
  batch_size_.Render("custody_ledger_batch_size", "", out);
  out +=
      "# HELP custody_ledger_commit_duration_seconds Ledger batch commit time, fsync included.\n";
  out += "# TYPE custody_ledger_commit_duration_seconds histogram\n";
  commit_seconds_.Render("custody_ledger_commit_duration_seconds", "", out);
  return out;
}

}  // namespace custody::api
