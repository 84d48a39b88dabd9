// libFuzzer target: arbitrary bytes as JSON for the strict RFC 8785 reader behind the ledger's
// leaf bytes (jcs.h). Beyond "an error, never a crash", it checks three properties a user relies
// on:
//   - canonical output is a fixed point: canonicalizing it again gives the same bytes;
//   - the two canonicalizers agree on every value ParseJson reads from accepted text:
//     CanonicalizeJsonValue(v) == CanonicalizeJson(serialize(v)), the contract of jcs_value.h
//     (the path events Custody builds take);
//   - that value is the one the text names: CanonicalizeJsonValue(ParseJson(canonical)) is the
//     canonical text itself. Boost.JSON 1.81's own parse fails this for some decimals (it reads a
//     neighbouring double); ParseJson reads numbers correctly rounded (json_parse.h).
// Built by the fuzz preset (scripts/fuzz.sh); seeds in fuzz/corpus/jcs/.
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/jcs.h"
#include "common/jcs_value.h"
#include "common/json_parse.h"

namespace {

void Fail(const char* what, std::string_view a, std::string_view b) {
  std::fprintf(stderr, "%s\n  first:  %.*s\n  second: %.*s\n", what, static_cast<int>(a.size()),
               a.data(), static_cast<int>(b.size()), b.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto canon = custody::CanonicalizeJson(text);
  if (!canon.ok()) return 0;

  auto again = custody::CanonicalizeJson(*canon);
  if (!again.ok()) Fail("canonical output does not re-parse", *canon, again.status().message());
  if (*again != *canon) Fail("canonicalization is not idempotent", *canon, *again);

  boost::json::parse_options opts;
  opts.max_depth = custody::kJcsMaxDepth + 1;
  boost::system::error_code ec;
  boost::json::value v = custody::ParseJson(*canon, ec, {}, opts);
  if (ec) Fail("Boost.JSON refuses canonical JSON", *canon, ec.message());
  auto from_value = custody::CanonicalizeJsonValue(v);
  if (!from_value.ok()) Fail("value canonicalizer refuses", *canon, from_value.status().message());
  auto from_text = custody::CanonicalizeJson(boost::json::serialize(v));
  if (!from_text.ok())
    Fail("serialized value does not parse", *canon, from_text.status().message());
  if (*from_value != *from_text) Fail("canonicalizers disagree", *from_text, *from_value);
  if (*from_value != *canon)
    Fail("the value read is not the one the text names", *canon, *from_value);
  return 0;
}
