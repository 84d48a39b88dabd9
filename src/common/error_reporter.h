// ErrorReporter: where an error goes that no caller can be told about (a background write that
// failed, a best-effort notice that could not be sent). Each report is logged at warn with its
// site, and counted; /metrics shows the counts as custody_errors_total{site="…"}. A site is a
// fixed name such as "attribution.index_write", never data, so the label set stays bounded.
// Injected like the Clock. Thread-safe; the Logger must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/logger.h"
#include "common/mutex.h"
#include "common/status.h"

namespace custody {

class ErrorReporter {
 public:
  explicit ErrorReporter(Logger& log) : log_(log) {}
  ErrorReporter(const ErrorReporter&) = delete;
  ErrorReporter& operator=(const ErrorReporter&) = delete;

  void Report(std::string_view site, const Status& status);
  uint64_t Count(std::string_view site) const;
  // Every site reported so far, sorted by name.
  std::vector<std::pair<std::string, uint64_t>> Counts() const;
  Logger& log() const { return log_; }

 private:
  Logger& log_;
  mutable Mutex mu_;
  std::map<std::string, uint64_t, std::less<>> counts_ GUARDED_BY(mu_);
};

}  // namespace custody
