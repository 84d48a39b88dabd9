// Tool-definition pinning. A tool's definition hash is SHA-256 over the RFC 8785 (JCS) bytes of
// {name, description, inputSchema, annotations} (members the server omits are omitted), in
// lowercase hex. The first hash seen for (server, tool) is trusted and pinned; a different one
// later is a changed definition (a "rug pull"): it is remembered as `seen_hash` and calls are
// refused until an operator approves exactly that hash.
//
// ToolPinStore is an interface; SqliteToolPinStore keeps pins in <data_dir>/mcp.db.
// Thread-safe (one mutex around the connection).
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace custody::store {
class SqliteDb;
}

namespace custody::mcp {

// The definition hash of one tool object from a tools/list result. InvalidArgument when the
// tool has no string name or is not valid I-JSON.
Result<std::string> ToolDefinitionHash(const boost::json::object& tool);

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
  virtual Result<std::vector<PinRecord>> List() = 0;
};

class SqliteToolPinStore final : public ToolPinStore {
 public:
  static Result<std::unique_ptr<SqliteToolPinStore>> Open(const std::string& path);
  ~SqliteToolPinStore() override;

  Result<PinObservation> Observe(const std::string& server, const std::string& tool,
                                 const std::string& hash, int64_t now_ms) override;
  Status Approve(const std::string& server, const std::string& tool,
                 const std::string& hash) override;
  Result<std::vector<PinRecord>> List() override;

 private:
  explicit SqliteToolPinStore(std::unique_ptr<store::SqliteDb> db);
  Mutex mu_;
  std::unique_ptr<store::SqliteDb> db_ GUARDED_BY(mu_);
};

}  // namespace custody::mcp
