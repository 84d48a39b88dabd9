// SqliteLedgerStore: the embedded LedgerStore, one SQLite file in WAL mode with
// synchronous=FULL, so a committed batch has been fsynced before CommitBatch returns.
//
// Thread-safe: one connection guarded by a mutex. Opening runs the schema migration and an
// integrity check of the leaf count against the latest checkpoint.
#pragma once

#include <memory>
#include <string>

#include "common/mutex.h"
#include "ledger/ledger_store.h"

struct sqlite3;

namespace custody::ledger {

class SqliteLedgerStore final : public LedgerStore {
 public:
  struct Options {
    bool read_only = false;
    // Creates the file (and schema) if missing; otherwise NotFound.
    bool create_if_missing = true;
  };
  static Result<std::unique_ptr<SqliteLedgerStore>> Open(const std::string& path,
                                                         const Options& options);
  static Result<std::unique_ptr<SqliteLedgerStore>> Open(const std::string& path) {
    return Open(path, Options{});
  }
  ~SqliteLedgerStore() override;

  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Status CommitBatch(const LedgerBatch& batch) override;
  Result<uint64_t> LeafCount() override;
  Result<StoredLeaf> GetLeaf(uint64_t index) override;
  Status ScanLeaves(uint64_t from, const std::function<bool(const StoredLeaf&)>& fn) override;
  Result<std::vector<uint64_t>> FindLeaves(Column column, const std::string& value,
                                           const std::string& kind) override;
  using LedgerStore::FindLeaves;
  Result<StoredTile> GetTile(uint8_t level, uint64_t index) override;
  Result<std::optional<StoredCheckpoint>> LatestCheckpoint() override;
  Result<std::optional<StoredCheckpoint>> GetCheckpoint(uint64_t size) override;
  Status ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) override;

 private:
  struct Statements;
  SqliteLedgerStore(sqlite3* db, std::string path);
  Status Prepare() REQUIRES(mu_);
  Status Exec(const char* sql) REQUIRES(mu_);
  Status Error(const char* what) const REQUIRES(mu_);

  Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_);
  std::unique_ptr<Statements> stmt_ GUARDED_BY(mu_);
  std::string path_;
};

}  // namespace custody::ledger
