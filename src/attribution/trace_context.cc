#include "attribution/trace_context.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "common/encoding.h"

namespace custody::attribution {
namespace {

bool LowerHex(std::string_view s, size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}
bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}
template <size_t N>
std::string RandomHex(Random& random) {
  std::array<uint8_t, N> b{};
  do {
    random.Fill(b);
  } while (std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; }));
  return HexEncode(b);
}

}  // namespace

std::optional<TraceParent> ParseTraceParent(std::string_view h) {
  // 00-<trace-id>-<parent-id>-<flags>; a future version may append fields after a dash.
  if (h.size() < 55) return std::nullopt;
  std::string_view version = h.substr(0, 2);
  if (!LowerHex(version, 2) || version == "ff" || h[2] != '-' || h[35] != '-' || h[52] != '-') {
    return std::nullopt;
  }
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (version != "00" && h.size() > 55 && h[55] != '-') return std::nullopt;
  std::string_view trace = h.substr(3, 32), parent = h.substr(36, 16), flags = h.substr(53, 2);
  if (!LowerHex(trace, 32) || !LowerHex(parent, 16) || !LowerHex(flags, 2)) return std::nullopt;
  if (AllZero(trace) || AllZero(parent)) return std::nullopt;
  return TraceParent{std::string(trace), std::string(parent), std::string(flags)};
}

std::string FormatTraceParent(const std::string& trace_id, const std::string& span_id,
                              const std::string& flags) {
  return "00-" + trace_id + "-" + span_id + "-" + flags;
}

std::string NewTraceId(Random& random) { return RandomHex<16>(random); }
std::string NewSpanId(Random& random) { return RandomHex<8>(random); }

}  // namespace custody::attribution
