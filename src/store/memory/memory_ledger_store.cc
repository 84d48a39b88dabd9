#include "store/memory/memory_ledger_store.h"

#include <vector>

namespace custody::store {

namespace {
// Scans hand out copies in chunks, with the lock released between them (as the SQLite store).
constexpr size_t kChunk = 1024;
}  // namespace

Result<std::optional<std::string>> MemoryLedgerStore::GetMeta(const std::string& key) {
  MutexLock lock(mu_);
  auto it = meta_.find(key);
  if (it == meta_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemoryLedgerStore::PutMeta(const std::string& key, const std::string& value) {
  MutexLock lock(mu_);
  meta_[key] = value;
  return OkStatus();
}

Status MemoryLedgerStore::CommitBatch(const LedgerBatch& batch) {
  MutexLock lock(mu_);
  // All or nothing: what SQLite's constraints refuse is refused before anything changes.
  for (const StoredLeaf& leaf : batch.leaves) {
    if (leaves_.count(leaf.index) != 0) {
      return FailedPreconditionError("ledger store: leaf " + std::to_string(leaf.index) +
                                     " is already stored");
    }
  }
  if (checkpoints_.count(batch.checkpoint.size) != 0) {
    return FailedPreconditionError("ledger store: a checkpoint at size " +
                                   std::to_string(batch.checkpoint.size) + " is already stored");
  }
  for (const StoredLeaf& leaf : batch.leaves) leaves_[leaf.index] = leaf;
  for (const StoredTile& tile : batch.tiles) {
    // A partial tile of level 0 is its leaves' hashes (GetTile reads them from the leaves).
    if (tile.level == 0 && tile.hashes.size() < kLedgerTileWidth) continue;
    tiles_[{tile.level, tile.index}] = tile.hashes;
  }
  checkpoints_[batch.checkpoint.size] = batch.checkpoint;
  return OkStatus();
}

Result<uint64_t> MemoryLedgerStore::LeafCount() {
  MutexLock lock(mu_);
  return leaves_.empty() ? uint64_t{0} : leaves_.rbegin()->first + 1;
}

Result<StoredLeaf> MemoryLedgerStore::GetLeaf(uint64_t index) {
  MutexLock lock(mu_);
  auto it = leaves_.find(index);
  if (it == leaves_.end())
    return NotFoundError("no ledger entry at index " + std::to_string(index));
  return it->second;
}

Status MemoryLedgerStore::ScanLeaves(uint64_t from,
                                     const std::function<bool(const StoredLeaf&)>& fn) {
  std::vector<StoredLeaf> chunk;
  while (true) {
    chunk.clear();
    {
      MutexLock lock(mu_);
      for (auto it = leaves_.lower_bound(from); it != leaves_.end() && chunk.size() < kChunk;
           ++it) {
        chunk.push_back(it->second);
      }
    }
    for (const StoredLeaf& leaf : chunk) {
      if (!fn(leaf)) return OkStatus();
    }
    if (chunk.size() < kChunk) return OkStatus();
    from = chunk.back().index + 1;
  }
}

Result<StoredTile> MemoryLedgerStore::GetTile(uint8_t level, uint64_t index) {
  MutexLock lock(mu_);
  std::string where = "tile " + std::to_string(level) + "/" + std::to_string(index);
  StoredTile tile;
  tile.level = level;
  tile.index = index;
  auto row = tiles_.find({level, index});
  if (row != tiles_.end() && (level != 0 || row->second.size() == kLedgerTileWidth)) {
    tile.hashes = row->second;
    return tile;
  }
  if (level != 0) return NotFoundError(where + " not found");
  // Level 0 and not full: the hashes of the leaves stored so far, contiguous from its first.
  const uint64_t first = index * kLedgerTileWidth;
  for (auto it = leaves_.find(first);
       it != leaves_.end() && it->first == first + tile.hashes.size() &&
       tile.hashes.size() < kLedgerTileWidth;
       ++it) {
    tile.hashes.push_back(it->second.leaf_hash);
  }
  if (tile.hashes.empty()) return NotFoundError(where + " not found");
  return tile;
}

Result<std::optional<StoredCheckpoint>> MemoryLedgerStore::LatestCheckpoint() {
  MutexLock lock(mu_);
  if (checkpoints_.empty()) return std::optional<StoredCheckpoint>();
  return std::optional<StoredCheckpoint>(checkpoints_.rbegin()->second);
}

Result<std::optional<StoredCheckpoint>> MemoryLedgerStore::GetCheckpoint(uint64_t size) {
  MutexLock lock(mu_);
  auto it = checkpoints_.find(size);
  if (it == checkpoints_.end()) return std::optional<StoredCheckpoint>();
  return std::optional<StoredCheckpoint>(it->second);
}

Status MemoryLedgerStore::ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) {
  uint64_t from = 0;
  std::vector<StoredCheckpoint> chunk;
  while (true) {
    chunk.clear();
    {
      MutexLock lock(mu_);
      for (auto it = checkpoints_.lower_bound(from);
           it != checkpoints_.end() && chunk.size() < kChunk; ++it) {
        chunk.push_back(it->second);
      }
    }
    for (const StoredCheckpoint& cp : chunk) {
      if (!fn(cp)) return OkStatus();
    }
    if (chunk.size() < kChunk) return OkStatus();
    from = chunk.back().size + 1;
  }
}

}  // namespace custody::store
