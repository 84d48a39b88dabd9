// libFuzzer target: evidence bundles (evidence.h) as `custody investigate verify-evidence`
// checks them offline. Properties checked beyond "a report or an error, never a crash":
//   - the report is consistent: ok means no problems and every event verified, and its JSON
//     parses;
//   - a bundle that verifies stops verifying when an event's bytes change, even if the
//     listed event_id and leaf hash are removed with them, and when it is checked against
//     another pinned key.
// Seeds (fuzz/corpus/evidence/) were made by a real ledger. Built by the fuzz preset
// (scripts/fuzz.sh).
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/json_parse.h"
#include "investigate/evidence.h"

namespace {

using namespace custody::investigate;
namespace json = boost::json;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "%s\n  input: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

// A real verifier key (another ledger's) that signed nothing in any seed.
constexpr std::string_view kOtherKey =
    "other.example/log+ccd717b0+AbA46oplecdCtZz7HwL+vsZp9l6yMlFxWOPAmauRs8cg";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bundle(reinterpret_cast<const char*>(data), size);
  auto report = VerifyEvidence(bundle);
  if (!report.ok()) return 0;
  const EvidenceReport& r = *report;
  Check(r.verified <= r.events, "more events verified than the bundle holds", bundle);
  Check(!r.ok || (r.problems.empty() && r.verified == r.events), "ok with problems", bundle);
  boost::system::error_code ec;
  json::value report_json = custody::ParseJson(EvidenceReportJson(r), ec);
  Check(!ec && report_json.is_object(), "the report is not a JSON object", bundle);
  if (!r.ok || r.events == 0) return 0;

  auto pinned = VerifyEvidence(bundle, std::string(kOtherKey));
  Check(pinned.ok() && !pinned->ok, "a bundle verifies under a key that did not sign it", bundle);

  json::value doc = custody::ParseJson(bundle);
  json::object& event = doc.as_object()["events"].as_array()[0].as_object();
  event["jcs"] = "{\"tampered\":true}";
  event.erase("leaf_hash");
  event.erase("event_id");
  const std::string tampered = json::serialize(doc);
  // Refused outright or verified with problems: either way it no longer verifies. (Refused
  // happens when the bundle held a number beyond a double's range, which parses as infinity and
  // serializes as no JSON number; the verifier's refusal of that text is right.)
  auto after = VerifyEvidence(tampered);
  Check(!after.ok() || !after->ok, "a bundle verifies after an event's bytes changed", tampered);
  return 0;
}
