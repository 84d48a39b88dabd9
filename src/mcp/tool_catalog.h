// The tools the gateway knows: each server's tools as last listed upstream, their definition
// hashes pinned in the ToolPinStore, and whether each may be called (its definition is the
// approved one). A changed definition is recorded in the ledger (tool.definition_change) and
// its calls refused until an operator approves exactly that hash (tool.approve).
// Thread-safe; tested alone in tool_catalog_test.cc.
#pragma once

#include <boost/json/fwd.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
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
  Result<std::vector<PinRecord>> List() { return pins_.List(); }

 private:
  ToolPinStore& pins_;
  EventSink events_;
  const Clock& clock_;
  const UpstreamOptions report_;
  UuidV7Generator ids_;

  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, Tool> tools_ GUARDED_BY(mu_);
};

}  // namespace custody::mcp
