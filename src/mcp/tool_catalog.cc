#include "mcp/tool_catalog.h"

#include <boost/json.hpp>

#include "events/tool_events.h"

namespace custody::mcp {

namespace json = boost::json;

namespace {

// The entity type an item is decided as, and named by in its events: "Resource" or "Prompt".
std::string EntityType(PinKind kind) { return kind == PinKind::kResource ? "Resource" : "Prompt"; }

// What using an item of `kind` is called, for the log.
const char* Use(PinKind kind) {
  switch (kind) {
    case PinKind::kResource:
      return "reads";
    case PinKind::kPrompt:
      return "gets";
    case PinKind::kTool:
      break;
  }
  return "calls";
}

std::string StringMember(const json::object& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
}

}  // namespace

ToolCatalog::ToolCatalog(ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
                         UpstreamOptions report)
    : pins_(pins),
      events_(std::move(events)),
      clock_(clock),
      report_(std::move(report)),
      ids_(clock, random) {}

void ToolCatalog::Observe(PinKind kind, const std::string& server, const std::string& name,
                          const std::string& hash, std::map<std::string, std::string> attrs) {
  const std::string noun(PinKindName(kind));
  auto obs = pins_.Observe(kind, server, name, hash, UnixMillis(clock_.Now()));
  bool approved = obs.ok() && obs->approved;
  if (!obs.ok()) {
    // The item stays unapproved (its use is refused) until the store answers again.
    ReportUpstream(report_, "mcp.tool_pin_store",
                   obs.status().WithContext(noun + " pin store, server " + server));
  }
  if (obs.ok() && obs->newly_changed) {
    std::string time = FormatRfc3339Millis(clock_.Now());
    json::object ev =
        kind == PinKind::kTool
            ? events::Build(events::ToolDefinitionChange{ids_.NextString(), time, server, name,
                                                         obs->approved_hash, hash, "mcp"})
            : events::Build(events::ItemDefinitionChange{ids_.NextString(), time, server,
                                                         EntityType(kind), name, obs->approved_hash,
                                                         hash, "mcp"});
    Status s = events_ ? events_(json::serialize(ev)) : OkStatus();
    LogUpstream(report_, LogLevel::kWarn, server,
                "definition of " + noun + " " + name + " changed (approved " + obs->approved_hash +
                    ", now " + hash + "); " + Use(kind) + " refused until approved");
    if (!s.ok()) {
      ReportUpstream(report_, "mcp.definition_change_record",
                     s.WithContext("recording the changed definition of " + noun + " " + name));
    }
  }
  MutexLock lock(mu_);
  items_[{kind, server, name}] = Item{hash, approved, std::move(attrs)};
}

std::map<std::string, std::string> ToolCatalog::Pin(const std::string& server,
                                                    const json::array& tools) {
  std::map<std::string, std::string> out;
  for (const auto& t : tools) {
    if (!t.is_object()) continue;
    auto hash = ToolDefinitionHash(t.get_object());
    if (!hash.ok()) continue;
    std::string name(t.get_object().at("name").get_string());
    Observe(PinKind::kTool, server, name, *hash, {});
    out[name] = *hash;
  }
  return out;
}

std::map<std::string, std::string> ToolCatalog::PinItems(PinKind kind, const std::string& server,
                                                         const json::array& items) {
  if (kind == PinKind::kTool) return Pin(server, items);
  std::map<std::string, std::string> out;
  for (const auto& i : items) {
    if (!i.is_object()) continue;
    const json::object& o = i.get_object();
    std::string name, hash;
    std::map<std::string, std::string> attrs;
    if (kind == PinKind::kResource) {
      auto def = ResourceDefinitionHash(o);
      if (!def.ok()) continue;  // no read of it could pass the gateway either
      name = std::move(def->uri);
      hash = std::move(def->hash);
      for (const char* k : {"name", "mimeType"}) {
        if (std::string v = StringMember(o, k); !v.empty()) attrs[k] = std::move(v);
      }
    } else {
      auto h = PromptDefinitionHash(o);
      if (!h.ok()) continue;
      name = StringMember(o, "name");
      hash = std::move(*h);
    }
    Observe(kind, server, name, hash, std::move(attrs));
    out[name] = std::move(hash);
  }
  MutexLock lock(mu_);
  listed_.insert({kind, server});
  return out;
}

std::optional<ToolCatalog::Tool> ToolCatalog::Find(const std::string& server,
                                                   const std::string& tool) const {
  MutexLock lock(mu_);
  auto it = items_.find({PinKind::kTool, server, tool});
  if (it == items_.end()) return std::nullopt;
  return Tool{it->second.hash, it->second.approved};
}

std::optional<ToolCatalog::Item> ToolCatalog::FindItem(PinKind kind, const std::string& server,
                                                       const std::string& name) const {
  MutexLock lock(mu_);
  auto it = items_.find({kind, server, name});
  if (it == items_.end()) return std::nullopt;
  return it->second;
}

bool ToolCatalog::Listed(PinKind kind, const std::string& server) const {
  MutexLock lock(mu_);
  return listed_.contains({kind, server});
}

Status ToolCatalog::Approve(const std::string& server, const std::string& tool,
                            const std::string& hash, const std::string& by) {
  return Approve(PinKind::kTool, server, tool, hash, by);
}

Status ToolCatalog::Approve(PinKind kind, const std::string& server, const std::string& name,
                            const std::string& hash, const std::string& by) {
  RETURN_IF_ERROR(pins_.Approve(kind, server, name, hash));
  std::string time = FormatRfc3339Millis(clock_.Now());
  json::object ev =
      kind == PinKind::kTool
          ? events::Build(events::ToolApprove{ids_.NextString(), time, server, name, hash, by})
          : events::Build(events::ItemApprove{ids_.NextString(), time, server, EntityType(kind),
                                              name, hash, by});
  if (events_) RETURN_IF_ERROR(events_(json::serialize(ev)));
  MutexLock lock(mu_);
  auto t = items_.find({kind, server, name});
  if (t != items_.end() && t->second.hash == hash) t->second.approved = true;
  return OkStatus();
}

}  // namespace custody::mcp
