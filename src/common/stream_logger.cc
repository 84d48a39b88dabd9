#include "common/stream_logger.h"

#include <cmath>

namespace custody {

const char* LogLevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

namespace {

// JSON string escaping that never fails: bytes outside printable ASCII become \u00XX, so a
// stray invalid UTF-8 byte from a peer cannot break the line.
void AppendJsonString(std::string_view s, std::string& out) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void AppendValue(const LogField& f, bool json, std::string& out) {
  if (auto* s = std::get_if<std::string_view>(&f.value)) {
    if (json) {
      AppendJsonString(*s, out);
    } else {
      bool plain = !s->empty() && s->find_first_of(" \"=\n") == std::string_view::npos;
      if (plain) {
        for (unsigned char c : *s) out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
      } else {
        AppendJsonString(*s, out);
      }
    }
  } else if (auto* i = std::get_if<int64_t>(&f.value)) {
    out += std::to_string(*i);
  } else if (auto* d = std::get_if<double>(&f.value)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", std::isfinite(*d) ? *d : 0.0);
    out += buf;
  } else {
    out += std::get<bool>(f.value) ? "true" : "false";
  }
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return InvalidArgumentError("unknown log level");
}

std::string StreamLogger::Format(LogLevel level, std::string_view msg,
                                 std::initializer_list<LogField> fields) const {
  std::string out;
  std::string time = FormatRfc3339Millis(clock_.Now());
  if (json_) {
    out = "{\"time\":\"" + time + "\",\"level\":\"" + LogLevelName(level) + "\",\"msg\":";
    AppendJsonString(msg, out);
    for (const LogField& f : fields) {
      out += ',';
      AppendJsonString(f.key, out);
      out += ':';
      AppendValue(f, true, out);
    }
    out += "}\n";
  } else {
    out = time + " " + LogLevelName(level) + " " + std::string(msg);
    for (const LogField& f : fields) {
      out += ' ';
      out += f.key;
      out += '=';
      AppendValue(f, false, out);
    }
    out += '\n';
  }
  return out;
}

void StreamLogger::Log(LogLevel level, std::string_view msg,
                       std::initializer_list<LogField> fields) {
  if (!Enabled(level)) return;
  std::string line = Format(level, msg, fields);
  MutexLock lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace custody
