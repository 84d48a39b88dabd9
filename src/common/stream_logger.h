// StreamLogger: structured log lines (one JSON object per line, or "key=value" text) on one
// stream. Thread-safe: a line is written with one fwrite under a mutex.
#pragma once

#include <cstdio>
#include <string>

#include "common/clock.h"
#include "common/logger.h"
#include "common/mutex.h"

namespace custody {

class StreamLogger final : public Logger {
 public:
  StreamLogger(LogLevel level, bool json, const Clock& clock, FILE* out = stderr)
      : level_(level), json_(json), clock_(clock), out_(out) {}
  bool Enabled(LogLevel level) const override { return level >= level_; }
  void Log(LogLevel level, std::string_view msg,
           std::initializer_list<LogField> fields = {}) override;

  // Formats a line without writing it (for tests).
  std::string Format(LogLevel level, std::string_view msg,
                     std::initializer_list<LogField> fields) const;

 private:
  const LogLevel level_;
  const bool json_;
  const Clock& clock_;
  Mutex mu_;
  FILE* out_ PT_GUARDED_BY(mu_);  // one line at a time
};

}  // namespace custody
