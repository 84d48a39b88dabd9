// OCSF export: one ledger entry as one OCSF event record, for the released OCSF schema
// version kSchemaVersion. docs/OCSF.md has the mapping kind by kind and the fields; the tests
// validate every record against that release's schema (tests/ocsf/).
//
// Plain types only: Boost.JSON stays in ocsf.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::ocsf {

// The OCSF release the records follow (github.com/ocsf/ocsf-schema, tag 1.8.0).
inline constexpr std::string_view kSchemaVersion = "1.8.0";

struct Options {
  // The ledger's origin (its C2SP checkpoint origin line): names the log a record can be proved
  // against. Empty: left out.
  std::string origin;
};

// The OCSF record (compact JSON text, no newline) for the ledger entry `index` whose leaf bytes
// (RFC 8785 JSON, exactly as stored) are `leaf`. Every entry maps: a kind Custody does not know
// becomes a Base Event (class 0). InvalidArgument only when `leaf` is not a JSON object.
Result<std::string> MapEntry(uint64_t index, std::string_view leaf, const Options& options);

// The OCSF class_uid a kind maps to (for an action.decision, without a tripwire's containment).
int ClassUidForKind(std::string_view kind);

}  // namespace custody::ocsf
