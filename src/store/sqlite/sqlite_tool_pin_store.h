// SqliteToolPinStore: the definition pins in <data_dir>/mcp.db (schema version 2: table `pins`,
// keyed by server, kind and name). One mutex around the connection.
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

  Result<PinObservation> Observe(PinKind kind, const std::string& server, const std::string& name,
                                 const std::string& hash, int64_t now_ms) override;
  Status Approve(PinKind kind, const std::string& server, const std::string& name,
                 const std::string& hash) override;
  Result<std::vector<PinRecord>> List(PinKind kind) override;

 private:
  explicit SqliteToolPinStore(std::unique_ptr<SqliteDb> db);
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
};

}  // namespace custody::store
