// Logger: structured log lines (one JSON object per line, or "key=value" text) on one stream.
// Thread-safe (a line is written with one fwrite under a mutex). Callers must not pass secrets:
// tokens are logged by id only, and no request header is ever logged.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "common/status.h"

namespace custody::api {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
Result<LogLevel> ParseLogLevel(std::string_view name);

struct LogField {
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
};

class Logger {
 public:
  Logger(LogLevel level, bool json, const Clock& clock, FILE* out = stderr)
      : level_(level), json_(json), clock_(clock), out_(out) {}
  bool Enabled(LogLevel level) const { return level >= level_; }
  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

  // Formats a line without writing it (for tests).
  std::string Format(LogLevel level, std::string_view msg,
                     std::initializer_list<LogField> fields) const;

 private:
  const LogLevel level_;
  const bool json_;
  const Clock& clock_;
  FILE* out_;
  std::mutex mu_;  // serialises writes to out_
};

}  // namespace custody::api
