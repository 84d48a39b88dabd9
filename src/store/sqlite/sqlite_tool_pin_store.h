// SqliteToolPinStore: the tool pins in <data_dir>/mcp.db (schema version 1). One mutex around
// the connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "store/tool_pin_store.h"

namespace custody::store {

class SqliteDb;

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
  explicit SqliteToolPinStore(std::unique_ptr<SqliteDb> db);
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
};

}  // namespace custody::store
