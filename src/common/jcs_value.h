// RFC 8785 canonical bytes straight from a boost::json value.
//
// The ledger used to print an event with boost::json and parse the text again to canonicalize
// it; for the events Custody builds itself that parse was most of the cost of an append on the
// caller's thread. CanonicalizeJsonValue() walks the value instead and gives the same bytes as
// CanonicalizeJson(boost::json::serialize(v)), with the same refusals: invalid UTF-8 in a
// string or member name, non-finite numbers, nesting deeper than kJcsMaxDepth. Integers are
// numbers as in JSON text, so those beyond 2^53 lose precision exactly as a parse would.
#pragma once

#include <boost/json/fwd.hpp>
#include <string>

#include "common/status.h"

namespace custody {

Result<std::string> CanonicalizeJsonValue(const boost::json::value& v);

}  // namespace custody
