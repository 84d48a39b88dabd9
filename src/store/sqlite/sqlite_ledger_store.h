// SqliteLedgerStore: the embedded LedgerStore, one SQLite file in WAL mode with
// synchronous=FULL, so a committed batch has been fsynced before CommitBatch returns. Unlike the
// server's other files it keeps normal locking: `custody ledger verify` and other readers may
// open a live ledger from another process.
//
// Thread-safe: one connection guarded by a mutex. Opening runs the schema migration and an
// integrity check of the leaf count against the latest checkpoint. Its statements are prepared
// once, when it opens (the commit path runs three per batch and one per leaf).
#pragma once

#include <memory>
#include <string>

#include "common/mutex.h"
#include "store/ledger_store.h"
#include "store/sqlite/sqlite_db.h"

namespace custody::store {

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
  SqliteLedgerStore(std::unique_ptr<SqliteDb> db, std::string path);
  Status Prepare() REQUIRES(mu_);

  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mu_);
  // Handles owned by db_ (prepared once by Prepare()).
  std::unique_ptr<Statements> stmt_ GUARDED_BY(mu_);
  std::string path_;
};

}  // namespace custody::store
