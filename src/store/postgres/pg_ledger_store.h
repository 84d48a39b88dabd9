// PgLedgerStore: LedgerStore in PostgreSQL (storage.backend = "postgres"): the same layout as
// SqliteLedgerStore (leaves, tiles, checkpoints, meta; component "ledger", version 1), bytea
// for hashes and event bytes. A batch is one transaction; PostgreSQL's commit is durable
// (synchronous_commit, which Custody does not change). Several nodes append to one store
// (Shared): CommitAtHead numbers each batch under a transaction-scoped advisory lock, after the
// head it reads in that transaction; reads never take the lock. Leaf indexes are the primary key
// as well, so two writers that both think they append at index N cannot both succeed: the second
// batch fails with AlreadyExists and writes nothing. Thread-safe (PgDb's pool).
#pragma once

#include <memory>
#include <string>

#include "store/ledger_store.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

class PgLedgerStore final : public LedgerStore {
 public:
  struct OpenOptions {
    // Never writes, not even a migration: the schema must already be this binary's version
    // (`custody ledger verify` and other readers).
    bool read_only = false;
  };
  static Result<std::unique_ptr<PgLedgerStore>> Open(const std::string& url,
                                                     PgOptions options = {});
  static Result<std::unique_ptr<PgLedgerStore>> Open(const std::string& url, OpenOptions open,
                                                     PgOptions options = {});
  ~PgLedgerStore() override;

  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Status CommitBatch(const LedgerBatch& batch) override;
  bool Shared() const override { return true; }
  Status CommitAtHead(LedgerBatch& batch, const PrepareBatch& prepare) override;
  Result<std::vector<crypto::Sha256Digest>> LeafHashes(uint64_t from, uint64_t to) override;
  Result<uint64_t> LeafCount() override;
  Result<StoredLeaf> GetLeaf(uint64_t index) override;
  Status ScanLeaves(uint64_t from, const std::function<bool(const StoredLeaf&)>& fn) override;
  Result<std::vector<uint64_t>> FindLeaves(Column column, const std::string& value,
                                           const std::string& kind) override;
  Result<StoredTile> GetTile(uint8_t level, uint64_t index) override;
  Result<std::optional<StoredCheckpoint>> LatestCheckpoint() override;
  Result<std::optional<StoredCheckpoint>> GetCheckpoint(uint64_t size) override;
  Status ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) override;

 private:
  explicit PgLedgerStore(std::unique_ptr<PgDb> db) : db_(std::move(db)) {}
  std::unique_ptr<PgDb> db_;
};

}  // namespace custody::store
