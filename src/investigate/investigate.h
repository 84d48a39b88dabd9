// Investigator: answers questions about recorded actions from the ledger (the record of truth),
// the attribution index and the identity registry. Every answer is a JSON document; the Render*
// functions turn the trace and session answers into indented trees for people.
//
//   Trace(event_id)        who initiated, which identity executed, what allowed it, and the path
//                          root session -> ... -> action
//   SessionEvents(sid)     the session tree with each session's actions in order
//   BlastRadius(kind, id)  potential reach (the active policies evaluated with WouldAllow over
//                          every known tool and resource, bounded by grants, for live sessions
//                          only: a contained tree reaches nothing) and actual use, denied
//                          attempts included
//   Review(agent, since)   granted scopes against used ones; unused grants; database
//                          credentials issued, and access levels the policies allow but never
//                          issued
//   Graph(format)          initiators (each with how it is known) -> sessions -> agents ->
//                          targets, as DOT or JSON
//
// Trace and SessionEvents use indexed lookups only (actions by id and by session, ledger leaves
// by event id, sessions by id). BlastRadius and Graph read distinct targets, actions and a
// per-session usage summary from the attribution index, which are passes over that index.
//
// Thread-safe as far as its collaborators are; they must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace custody::ledger {
class Ledger;
}
namespace custody::identity {
class TokenService;
}

namespace custody::attribution {
class AttributionService;
}

namespace custody::investigate {

using attribution::AttributionService;

class Investigator {
 public:
  Investigator(identity::TokenService& tokens, ledger::Ledger& ledger,
               AttributionService& attribution, const Clock& clock)
      : tokens_(tokens), ledger_(ledger), attribution_(attribution), clock_(clock) {}

  // `event_id` is an action id (= its decision's event id), or the event id of any ledger
  // event (an outcome or a containment is traced to its decision). NotFound if unknown.
  Result<std::string> Trace(const std::string& event_id);
  Result<std::string> SessionEvents(const std::string& sid);
  // kind: "agent", "session" or "user" (an initiator id).
  Result<std::string> BlastRadius(const std::string& kind, const std::string& id);
  Result<std::string> Review(const std::string& agent, int64_t since_ms);
  // format: "json" or "dot".
  Result<std::string> Graph(const std::string& format);

  // The configured database credentials' access levels, by database ([credentials.postgres.*]):
  // Review dry-runs each against the policies to list those allowed but never issued. Call
  // before use (not synchronized).
  void SetCredentialAccessLevels(std::map<std::string, std::vector<std::string>> levels) {
    credential_levels_ = std::move(levels);
  }

 private:
  identity::TokenService& tokens_;
  ledger::Ledger& ledger_;
  AttributionService& attribution_;
  const Clock& clock_;
  std::map<std::string, std::vector<std::string>> credential_levels_;
};

// A review's "since": "" (everything), Unix milliseconds, a relative "<N>d", "<N>h" or "<N>m"
// before `now_ms`, or an RFC 3339 UTC date ("2026-11-01") or time ("2026-11-01T08:00:00Z").
Result<int64_t> ParseSince(std::string_view text, int64_t now_ms);

// Indented trees for people, from the JSON answers above (so the CLI can render what a server
// returned). InvalidArgument if the JSON is not such an answer.
Result<std::string> RenderTrace(std::string_view trace_json);
Result<std::string> RenderSessionEvents(std::string_view session_events_json);
// Graphviz DOT from a Graph("json") answer (what Graph("dot") returns).
Result<std::string> GraphToDot(std::string_view graph_json);

}  // namespace custody::investigate
