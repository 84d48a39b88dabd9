// The one derivation of an event's ledger index columns (event id, kind, time, session, agent),
// used by every path that appends: the services' own events, the identity and MCP sinks, and
// the generic POST /v1/ledger/entries. The same event is indexed the same way whoever appends
// it, so investigations and evidence bundles find it.
//
// Rules: "event_id", "kind" and "time" are the top-level strings. The session and the agent come
// from "actor", then "target" (an event about a session or agent it did not act as), then, for a
// "containment" with neither, from its "scope" and "subject". Missing or non-string fields stay
// empty (stored as NULL).
#pragma once

#include <boost/json/fwd.hpp>
#include <string_view>

#include "store/ledger_store.h"

namespace custody::events {

store::EventColumns ColumnsOf(const boost::json::object& event);
// The same for event text; text that is not a JSON object has empty columns.
store::EventColumns ColumnsOfText(std::string_view event_json);

// Whether `kind` is one Custody records itself (action.decision, revocation, token.refuse, …:
// every kind the builders in this module make). The generic POST /v1/ledger/entries refuses
// them, so an append cannot pass for a decision, a containment or an identity event.
bool IsCustodyKind(std::string_view kind);

}  // namespace custody::events
