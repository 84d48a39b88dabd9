#include "events/columns.h"

#include <boost/json.hpp>

namespace custody::events {
namespace {

namespace json = boost::json;

std::string Str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                  : std::string();
}

}  // namespace

store::EventColumns ColumnsOf(const json::object& o) {
  store::EventColumns c;
  c.event_id = Str(o, "event_id");
  c.kind = Str(o, "kind");
  c.time = Str(o, "time");
  for (const char* k : {"actor", "target"}) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_object()) continue;
    const json::object& a = it->value().get_object();
    if (c.session.empty()) c.session = Str(a, "session");
    if (c.agent.empty()) c.agent = Str(a, "agent");
  }
  if (c.kind == "containment" && c.session.empty() && c.agent.empty()) {
    const std::string scope = Str(o, "scope");
    if (scope == "session") c.session = Str(o, "subject");
    if (scope == "agent") c.agent = Str(o, "subject");
  }
  return c;
}

store::EventColumns ColumnsOfText(std::string_view event_json) {
  boost::system::error_code ec;
  json::value v = json::parse(event_json, ec);
  if (ec || !v.is_object()) return {};
  return ColumnsOf(v.get_object());
}

bool IsCustodyKind(std::string_view kind) {
  // events_test checks that every builder's kind is here.
  static constexpr std::string_view kKinds[] = {
      "action.decision",  "action.outcome", "action.outcome_refused",
      "containment",      "policy.publish", "tool.definition_change",
      "tool.approve",     "agent.register", "agent.update",
      "credential.issue", "session.start",  "delegation",
      "revocation",       "key.rotate",     "token.refuse"};
  for (std::string_view k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

}  // namespace custody::events
