// W3C Trace Context `traceparent` (version 00): parsing and formatting.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/random.h"

namespace custody::attribution {

struct TraceParent {
  std::string trace_id;   // 32 lower-case hex digits, not all zero
  std::string parent_id;  // 16 lower-case hex digits, not all zero
  std::string flags = "01";
};

// Nullopt for anything that is not a valid traceparent (the caller then starts a new trace, as
// the W3C specification asks).
std::optional<TraceParent> ParseTraceParent(std::string_view header);
std::string FormatTraceParent(const std::string& trace_id, const std::string& span_id,
                              const std::string& flags);
std::string NewTraceId(Random& random);
std::string NewSpanId(Random& random);

}  // namespace custody::attribution
