// ToolPinStore: the MCP gateway's tool-definition pins. The first hash seen for (server, tool)
// is trusted and pinned; a different one later is a changed definition (a "rug pull"): it is
// remembered as `seen_hash` and calls are refused until an operator approves exactly that hash.
// How a hash is computed is the gateway's business (mcp/tool_pins.h). Implementations are
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace custody::store {

struct PinRecord {
  std::string server;
  std::string tool;
  std::string approved_hash;  // calls are allowed only while the definition hashes to this
  std::string seen_hash;      // the latest definition the upstream advertised
  int64_t first_seen_ms = 0;
  int64_t changed_ms = 0;  // when seen_hash last moved away from approved_hash (0: never)
};

struct PinObservation {
  bool approved = false;       // seen hash == approved hash
  bool first_seen = false;     // pinned just now
  bool newly_changed = false;  // a hash not seen before, different from the approved one
  std::string approved_hash;
};

class ToolPinStore {
 public:
  virtual ~ToolPinStore() = default;
  // Records that the upstream advertises `hash` for the tool.
  virtual Result<PinObservation> Observe(const std::string& server, const std::string& tool,
                                         const std::string& hash, int64_t now_ms) = 0;
  // Approves `hash`, which must be the one last seen (FailedPrecondition otherwise; NotFound for
  // a tool never seen).
  virtual Status Approve(const std::string& server, const std::string& tool,
                         const std::string& hash) = 0;
  // Every pin, ordered by server then tool.
  virtual Result<std::vector<PinRecord>> List() = 0;
};

}  // namespace custody::store
