#include "events/columns.h"

#include <boost/json.hpp>

#include "common/json_array.h"
#include "common/json_parse.h"

namespace custody::events {
namespace {

namespace json = boost::json;

}  // namespace

store::EventColumns ColumnsOf(const json::object& o) {
  store::EventColumns c;
  c.event_id = StringField(o, "event_id");
  c.kind = StringField(o, "kind");
  c.time = StringField(o, "time");
  for (const char* k : {"actor", "target"}) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_object()) continue;
    const json::object& a = it->value().get_object();
    if (c.session.empty()) c.session = StringField(a, "session");
    if (c.agent.empty()) c.agent = StringField(a, "agent");
  }
  if (c.kind == "containment" && c.session.empty() && c.agent.empty()) {
    const std::string scope = StringField(o, "scope");
    if (scope == "session") c.session = StringField(o, "subject");
    if (scope == "agent") c.agent = StringField(o, "subject");
  }
  return c;
}

store::EventColumns ColumnsOfText(std::string_view event_json) {
  boost::system::error_code ec;
  json::value v = ParseJson(event_json, ec);
  if (ec || !v.is_object()) return {};
  return ColumnsOf(v.get_object());
}

bool IsCustodyKind(std::string_view kind) {
  // events_test checks that every builder's kind is here.
  static constexpr std::string_view kKinds[] = {"action.decision",
                                                "action.outcome",
                                                "action.outcome_refused",
                                                "containment",
                                                "policy.publish",
                                                "tool.definition_change",
                                                "tool.approve",
                                                "agent.register",
                                                "agent.update",
                                                "credential.issue",
                                                "session.start",
                                                "delegation",
                                                "revocation",
                                                "key.rotate",
                                                "token.refuse",
                                                "oauth.sign_in",
                                                "oauth.sign_out",
                                                "oauth.consent",
                                                "oauth.code_issue",
                                                "oauth.token_issue",
                                                "oauth.reuse",
                                                "oauth.client_register",
                                                "resource.definition_change",
                                                "resource.approve",
                                                "prompt.definition_change",
                                                "prompt.approve",
                                                "approval.approve",
                                                "approval.deny",
                                                "approval.expire",
                                                "approval.cancel",
                                                "action.observed",
                                                "db_credential.issue",
                                                "db_credential.renew",
                                                "db_credential.revoke",
                                                "db_credential.revoke_failed"};
  for (std::string_view k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

}  // namespace custody::events
