// Logger: the interface every module logs through, injected like the Clock (no global logger).
// StreamLogger (common/stream_logger.h) writes lines; NullLogger drops them (tests, tools).
// Implementations are thread-safe. Callers must not pass secrets: tokens are logged by id or
// hash only, and no request header is ever logged.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

#include "common/status.h"

namespace custody {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
Result<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

struct LogField {
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
};

// The string value of the field named `key` ("" when absent or not a string).
inline std::string_view FieldString(std::initializer_list<LogField> fields, std::string_view key) {
  for (const LogField& f : fields) {
    if (f.key != key) continue;
    if (const auto* v = std::get_if<std::string_view>(&f.value)) return *v;
  }
  return {};
}

class Logger {
 public:
  virtual ~Logger() = default;
  virtual bool Enabled(LogLevel level) const = 0;
  virtual void Log(LogLevel level, std::string_view msg,
                   std::initializer_list<LogField> fields = {}) = 0;
};

class NullLogger final : public Logger {
 public:
  bool Enabled(LogLevel) const override { return false; }
  void Log(LogLevel, std::string_view, std::initializer_list<LogField>) override {}
};

}  // namespace custody
