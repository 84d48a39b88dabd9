// Recorder: the one way an event reaches the ledger. It canonicalizes the event (RFC 8785)
// straight from its value, derives its index columns (events/columns.h) and appends it; the
// ledger makes it durable before `done` runs. Thread-safe; the Ledger must outlive it.
#pragma once

#include <boost/json/fwd.hpp>
#include <string_view>

#include "common/status.h"
#include "ledger/ledger.h"

namespace custody::events {

class Recorder {
 public:
  explicit Recorder(ledger::Ledger& ledger) : ledger_(ledger) {}

  // Returns the canonicalization error (and does not call `done`), or queues the event: `done`
  // runs on the ledger's sequencer once it is durable (or failed). `lane`: ledger/ledger.h.
  Status RecordAsync(const boost::json::object& event, ledger::Ledger::Callback done,
                     ledger::Lane lane = ledger::Lane::kInteractive);
  // Blocks until the event is durable.
  Result<ledger::AppendResult> Record(const boost::json::object& event);
  // For sinks that hand over event text (identity, the MCP gateway) and the generic append
  // route: InvalidArgument for text that is not I-JSON. Blocks until the event is durable.
  Result<ledger::AppendResult> RecordText(std::string_view event_json);
  // The same without waiting: `done` runs once, with the refusal of text that is not I-JSON, or
  // on the ledger's sequencer once the event is durable (or failed).
  void RecordTextAsync(std::string_view event_json, ledger::Ledger::Callback done);

  ledger::Ledger& ledger() { return ledger_; }

 private:
  ledger::Ledger& ledger_;
};

}  // namespace custody::events
