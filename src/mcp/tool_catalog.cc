#include "mcp/tool_catalog.h"

#include <boost/json.hpp>

#include "events/tool_events.h"

namespace custody::mcp {

namespace json = boost::json;

ToolCatalog::ToolCatalog(ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
                         UpstreamOptions report)
    : pins_(pins),
      events_(std::move(events)),
      clock_(clock),
      report_(std::move(report)),
      ids_(clock, random) {}

std::map<std::string, std::string> ToolCatalog::Pin(const std::string& server,
                                                    const json::array& tools) {
  std::map<std::string, std::string> out;
  int64_t now_ms = UnixMillis(clock_.Now());
  for (const auto& t : tools) {
    if (!t.is_object()) continue;
    auto hash = ToolDefinitionHash(t.get_object());
    if (!hash.ok()) continue;
    std::string name(t.get_object().at("name").get_string());
    auto obs = pins_.Observe(server, name, *hash, now_ms);
    bool approved = obs.ok() && obs->approved;
    if (!obs.ok()) {
      // The tool stays unapproved (its calls are refused) until the store answers again.
      ReportUpstream(report_, "mcp.tool_pin_store",
                     obs.status().WithContext("tool pin store, server " + server));
    }
    if (obs.ok() && obs->newly_changed) {
      json::object ev = events::Build(
          events::ToolDefinitionChange{ids_.NextString(), FormatRfc3339Millis(clock_.Now()), server,
                                       name, obs->approved_hash, *hash, "mcp"});
      Status s = events_ ? events_(json::serialize(ev)) : OkStatus();
      LogUpstream(report_, LogLevel::kWarn, server,
                  "definition of tool " + name + " changed (approved " + obs->approved_hash +
                      ", now " + *hash + "); calls refused until approved");
      if (!s.ok()) {
        ReportUpstream(report_, "mcp.definition_change_record",
                       s.WithContext("recording the changed definition of " + name));
      }
    }
    out[name] = *hash;
    MutexLock lock(mu_);
    tools_[{server, name}] = Tool{*hash, approved};
  }
  return out;
}

std::optional<ToolCatalog::Tool> ToolCatalog::Find(const std::string& server,
                                                   const std::string& tool) const {
  MutexLock lock(mu_);
  auto it = tools_.find({server, tool});
  if (it == tools_.end()) return std::nullopt;
  return it->second;
}

Status ToolCatalog::Approve(const std::string& server, const std::string& tool,
                            const std::string& hash, const std::string& by) {
  RETURN_IF_ERROR(pins_.Approve(server, tool, hash));
  json::object ev = events::Build(events::ToolApprove{
      ids_.NextString(), FormatRfc3339Millis(clock_.Now()), server, tool, hash, by});
  if (events_) RETURN_IF_ERROR(events_(json::serialize(ev)));
  MutexLock lock(mu_);
  auto t = tools_.find({server, tool});
  if (t != tools_.end() && t->second.hash == hash) t->second.approved = true;
  return OkStatus();
}

}  // namespace custody::mcp
