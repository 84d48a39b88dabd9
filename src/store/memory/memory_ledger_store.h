// MemoryLedgerStore: the LedgerStore in memory, for unit tests of the ledger and of the modules
// above it (no file, no fsync: "durable" means only that CommitBatch has returned). It answers
// as SqliteLedgerStore does: both pass store/testing/ledger_store_conformance.h.
// Thread-safe (one mutex); scans release it before calling back, so a callback may use the store.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "common/mutex.h"
#include "store/ledger_store.h"

namespace custody::store {

class MemoryLedgerStore final : public LedgerStore {
 public:
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Status CommitBatch(const LedgerBatch& batch) override;
  Result<uint64_t> LeafCount() override;
  Result<StoredLeaf> GetLeaf(uint64_t index) override;
  Status ScanLeaves(uint64_t from, const std::function<bool(const StoredLeaf&)>& fn) override;
  Result<StoredTile> GetTile(uint8_t level, uint64_t index) override;
  Result<std::optional<StoredCheckpoint>> LatestCheckpoint() override;
  Result<std::optional<StoredCheckpoint>> GetCheckpoint(uint64_t size) override;
  Status ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) override;

 private:
  Mutex mu_;
  std::map<std::string, std::string> meta_ GUARDED_BY(mu_);
  std::map<uint64_t, StoredLeaf> leaves_ GUARDED_BY(mu_);  // by index
  // Full rows, and rows of levels above 0 (partial ones rewritten as they grow).
  std::map<std::pair<uint8_t, uint64_t>, std::vector<crypto::Sha256Digest>> tiles_ GUARDED_BY(mu_);
  std::map<uint64_t, StoredCheckpoint> checkpoints_ GUARDED_BY(mu_);  // by size
};

}  // namespace custody::store
