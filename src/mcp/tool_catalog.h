// What the gateway knows of each server's tools, resources and prompts: each as last listed
// upstream, its definition hash pinned in the ToolPinStore (mcp/tool_pins.h says what a hash
// covers), and whether it may be used (its definition is the approved one). A changed
// definition is recorded in the ledger (tool.definition_change, resource.definition_change,
// prompt.definition_change) and its use refused until an operator approves exactly that hash
// (tool.approve, resource.approve, prompt.approve).
// Thread-safe; tested alone in tool_catalog_test.cc.
#pragma once

#include <boost/json/fwd.hpp>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"
#include "mcp/tool_pins.h"
#include "mcp/upstream.h"

namespace custody::mcp {

// Appends one event (a JSON object) to the ledger; returns once it is durable.
using EventSink = std::function<Status(const std::string& event_json)>;

class ToolCatalog {
 public:
  struct Tool {
    std::string hash;
    bool approved = false;
  };
  // A resource or prompt as last listed.
  struct Item {
    std::string hash;
    bool approved = false;
    // What policy sees of it besides its id (Resource: name and mimeType, when listed as
    // strings), without definition_hash.
    std::map<std::string, std::string> attrs;
  };

  // `report` carries the logger and error reporter (UpstreamOptions::log, ::errors).
  ToolCatalog(ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
              UpstreamOptions report);

  // Records the tool definitions of one tools/list page of `server`; returns their hashes by
  // tool name. A tool the pin store cannot answer for stays unapproved (reported as
  // mcp.tool_pin_store); a newly changed definition is recorded and logged.
  std::map<std::string, std::string> Pin(const std::string& server,
                                         const boost::json::array& tools);
  // The tool as last listed; nullopt if `server` has never listed it.
  std::optional<Tool> Find(const std::string& server, const std::string& tool) const;
  // Approves `hash` for the tool (the pin store's rules) and records tool.approve with `by`.
  Status Approve(const std::string& server, const std::string& tool, const std::string& hash,
                 const std::string& by);
  Result<std::vector<PinRecord>> List() { return pins_.List(PinKind::kTool); }

  // The same for one page of resources/list (`kind` kResource: items by canonical URI; one
  // whose uri NormalizeUri refuses is skipped) or prompts/list (kPrompt: by name), with the
  // same store and ledger rules. Returns the hashes by URI or name.
  std::map<std::string, std::string> PinItems(PinKind kind, const std::string& server,
                                              const boost::json::array& items);
  // The resource (by canonical URI) or prompt as last listed; nullopt if never listed.
  std::optional<Item> FindItem(PinKind kind, const std::string& server,
                               const std::string& name) const;
  // Whether a list of `kind` of `server` has passed through PinItems since the gateway started.
  bool Listed(PinKind kind, const std::string& server) const;
  // Approves `hash` for the item of any kind (a resource by canonical URI) and records
  // <kind>.approve with `by`.
  Status Approve(PinKind kind, const std::string& server, const std::string& name,
                 const std::string& hash, const std::string& by);
  Result<std::vector<PinRecord>> List(PinKind kind) { return pins_.List(kind); }

 private:
  // One item's definition `hash` as listed: observed in the store, a change recorded and
  // logged, kept in items_.
  void Observe(PinKind kind, const std::string& server, const std::string& name,
               const std::string& hash, std::map<std::string, std::string> attrs);

  ToolPinStore& pins_;
  EventSink events_;
  const Clock& clock_;
  const UpstreamOptions report_;
  UuidV7Generator ids_;

  mutable Mutex mu_;
  // By (kind, server, name).
  std::map<std::tuple<PinKind, std::string, std::string>, Item> items_ GUARDED_BY(mu_);
  std::set<std::pair<PinKind, std::string>> listed_ GUARDED_BY(mu_);  // (kind, server)
};

}  // namespace custody::mcp
