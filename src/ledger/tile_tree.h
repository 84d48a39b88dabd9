// TileTree: the Merkle tree as the ledger writes it. It appends leaf hashes (the compact range
// does the hashing, amortised O(1) per leaf), keeps the rightmost C2SP tlog-tiles row of each
// tile level in memory until it is full, reports which rows changed so a batch can persist them,
// and answers HashReader queries through a TileHashReader over those rows and the store (so a
// proof is O(log n) lookups, with each tile's internal nodes hashed once).
//
// Not thread-safe: the Ledger serialises access with its tree mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ledger/merkle.h"
#include "ledger/proof.h"
#include "ledger/tiles.h"
#include "store/ledger_store.h"

namespace custody::ledger {

class TileTree final : public HashReader {
 public:
  TileTree(store::LedgerStore& store, size_t cache_tiles);

  // Loads the rightmost row of each tile level of a tree of `size` leaves from the store and
  // rebuilds the compact range from them. DataLoss if the stored tiles do not cover `size`.
  Status Load(uint64_t size);

  void Append(const Hash& leaf_hash);
  uint64_t size() const { return range_.size(); }
  Hash Root() const { return range_.Root(); }

  // The tile rows changed since the last call, for persisting with a batch (a partial row of
  // level 0 is left out: the store has those hashes with the leaves).
  std::vector<store::StoredTile> TakeDirtyTiles();
  // The batch holding the current size has been committed: it is the durable state now.
  void Committed();

  // Returns to the last durable state (the last Load() or Committed()), used when a batch could
  // not be committed. Never to a size the store has not committed: that would fail to load and
  // leave the tree empty while the store holds every leaf.
  Status Rollback();

  // HashReader: the hash of a complete subtree of the current tree.
  Result<Hash> ReadNode(uint8_t level, uint64_t index) override;

 private:
  struct EdgeRow {
    uint64_t index = 0;
    std::vector<Hash> hashes;  // 0..256 entries of tree level 8L
    bool dirty = false;
  };

  void Visit(uint8_t level, uint64_t index, const Hash& hash);
  Result<std::vector<Hash>> Fetch(uint8_t tile_level, uint64_t tile_index);
  void ResetReader();

  store::LedgerStore& store_;
  size_t cache_tiles_;
  uint64_t durable_size_ = 0;
  CompactRange range_;
  std::vector<EdgeRow> edge_;                // edge_[L]: the rightmost row of tile level L
  std::vector<store::StoredTile> finished_;  // rows completed since the last take
  std::unique_ptr<TileHashReader> reader_;
};

}  // namespace custody::ledger
