#include "events/recorder.h"

#include <boost/json.hpp>
#include <future>
#include <memory>

#include "common/jcs_value.h"
#include "events/columns.h"

namespace custody::events {

namespace json = boost::json;

Status Recorder::RecordAsync(const json::object& event, ledger::Ledger::Callback done,
                             ledger::Lane lane) {
  // Canonical bytes straight from the value: printing and parsing the text again was ~40% of
  // an Authorize's own time.
  ASSIGN_OR_RETURN(std::string canonical, CanonicalizeJsonValue(event));
  ledger_.AppendCanonicalAsync(std::move(canonical), ColumnsOf(event), std::move(done), lane);
  return OkStatus();
}

Result<ledger::AppendResult> Recorder::Record(const json::object& event) {
  std::promise<Result<ledger::AppendResult>> p;
  auto f = p.get_future();
  RETURN_IF_ERROR(
      RecordAsync(event, [&p](Result<ledger::AppendResult> r) { p.set_value(std::move(r)); }));
  return f.get();
}

Result<ledger::AppendResult> Recorder::RecordText(std::string_view event_json) {
  // The ledger's strict (I-JSON) reader canonicalizes the text itself.
  return ledger_.Append(event_json, ColumnsOfText(event_json));
}

void Recorder::RecordTextAsync(std::string_view event_json, ledger::Ledger::Callback done) {
  // AppendAsync calls `done` only when it accepted the event; a refusal is handed over here.
  auto shared = std::make_shared<ledger::Ledger::Callback>(std::move(done));
  Status queued = ledger_.AppendAsync(event_json, ColumnsOfText(event_json),
                                      [shared](Result<ledger::AppendResult> r) { (*shared)(r); });
  if (!queued.ok()) (*shared)(queued);
}

}  // namespace custody::events
