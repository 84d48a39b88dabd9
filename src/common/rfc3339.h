// Reading RFC 3339 times: the inverse of FormatRfc3339Millis (common/clock.h), for event times
// read back from the ledger and for times people type (--since).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace custody {

// "2026-12-05T10:00:00Z", "2026-12-05T10:00:00.123Z", "2026-12-05T11:00:00.5+01:00" -> Unix
// milliseconds (fractions beyond milliseconds are dropped). nullopt for anything else: no zone,
// a field out of range, trailing text.
std::optional<int64_t> ParseRfc3339Millis(std::string_view text);

}  // namespace custody
