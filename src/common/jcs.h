// RFC 8785 JSON Canonicalization Scheme (JCS).
//
// The ledger stores each event as its JCS bytes, so anyone holding an event can recompute its
// leaf hash. Parsing is strict I-JSON (RFC 7493): valid UTF-8, no lone surrogates, no duplicate
// member names, finite numbers, bounded nesting. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace custody {

// Maximum nesting of arrays and objects accepted by Canonicalize().
inline constexpr int kJcsMaxDepth = 256;

// Parses `json` and returns its canonical serialization. InvalidArgument names the problem and
// the byte offset at which it was found.
Result<std::string> CanonicalizeJson(std::string_view json);

// Serializes a finite double as ECMAScript's Number.prototype.toString does (RFC 8785 §3.2.2.3).
// -0 serializes as "0". Callers must not pass NaN or infinity.
std::string SerializeJcsNumber(double value);

// The key RFC 8785 §3.2.3 sorts member names by: their UTF-16 code units. `utf8` must be valid
// UTF-8.
std::u16string JcsMemberSortKey(std::string_view utf8);

// Appends `s` (valid UTF-8) to `out` as a JCS string literal, quotes included.
void AppendJcsString(std::string_view s, std::string& out);

}  // namespace custody
