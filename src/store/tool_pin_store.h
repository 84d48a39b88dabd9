// ToolPinStore: the MCP gateway's definition pins, of tools and, beside them, of resources and
// prompts. The first hash seen for (server, kind, name) is trusted and pinned; a different one
// later is a changed definition (a "rug pull"): it is remembered as `seen_hash` and use is
// refused until an operator approves exactly that hash. The kind is part of the key, so a tool,
// a resource and a prompt of one server never share a pin whatever their names. How a hash is
// computed is the gateway's business (mcp/tool_pins.h). Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace custody::store {

// What a pin is of: an MCP server's tool (by name), resource (by canonical URI) or prompt (by
// name).
enum class PinKind : uint8_t { kTool, kResource, kPrompt };

// "tool" | "resource" | "prompt": how mcp.db, the ledger and the API spell a kind.
inline std::string_view PinKindName(PinKind kind) {
  switch (kind) {
    case PinKind::kResource:
      return "resource";
    case PinKind::kPrompt:
      return "prompt";
    case PinKind::kTool:
      break;
  }
  return "tool";
}
// The kind PinKindName spells `name`; nullopt for anything else.
inline std::optional<PinKind> ParsePinKind(std::string_view name) {
  for (PinKind k : {PinKind::kTool, PinKind::kResource, PinKind::kPrompt}) {
    if (PinKindName(k) == name) return k;
  }
  return std::nullopt;
}

struct PinRecord {
  std::string server;
  PinKind kind = PinKind::kTool;
  std::string name;           // a tool's or prompt's name, a resource's canonical URI
  std::string approved_hash;  // use is allowed only while the definition hashes to this
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
  // Records that the upstream advertises `hash` for the item.
  virtual Result<PinObservation> Observe(PinKind kind, const std::string& server,
                                         const std::string& name, const std::string& hash,
                                         int64_t now_ms) = 0;
  // Approves `hash`, which must be the one last seen (FailedPrecondition otherwise; NotFound for
  // an item never seen).
  virtual Status Approve(PinKind kind, const std::string& server, const std::string& name,
                         const std::string& hash) = 0;
  // Every pin of `kind`, ordered by server then name.
  virtual Result<std::vector<PinRecord>> List(PinKind kind) = 0;
};

}  // namespace custody::store
