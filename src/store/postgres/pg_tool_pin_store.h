// PgToolPinStore: ToolPinStore in PostgreSQL (component "mcp_pins", version 1), shared by the
// nodes of a deployment: an approval given through one node holds at all of them, and two nodes
// seeing a definition for the first time at once pin it once (the insert and the comparison are
// one transaction on the pin's row). Thread-safe (PgDb's pool).
#pragma once

#include <memory>
#include <string>

#include "store/postgres/pg_db.h"
#include "store/tool_pin_store.h"

namespace custody::store {

class PgToolPinStore final : public ToolPinStore {
 public:
  static Result<std::unique_ptr<PgToolPinStore>> Open(const std::string& url,
                                                      PgOptions options = {});
  ~PgToolPinStore() override;

  Result<PinObservation> Observe(PinKind kind, const std::string& server, const std::string& name,
                                 const std::string& hash, int64_t now_ms) override;
  Status Approve(PinKind kind, const std::string& server, const std::string& name,
                 const std::string& hash) override;
  Result<std::vector<PinRecord>> List(PinKind kind) override;

 private:
  explicit PgToolPinStore(std::unique_ptr<PgDb> db) : db_(std::move(db)) {}
  std::unique_ptr<PgDb> db_;
};

}  // namespace custody::store
