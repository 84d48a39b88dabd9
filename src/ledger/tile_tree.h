// TileTree: the stored hashes of the Merkle tree, organised as C2SP tlog-tiles (height 8,
// width 256), with the internal nodes of each tile kept beside its row, so that any complete
// subtree (level, index) is one lookup and a proof costs O(log n) lookups and no rehashing.
//
// The rightmost ("edge") tile of each tile level grows as leaves are appended; every other tile
// is immutable, loaded from the LedgerStore on demand and kept in a bounded LRU cache. Appending
// costs amortised O(1) hashes (the compact range does the hashing). Not thread-safe: the Ledger
// serialises access with its tree mutex.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "ledger/ledger_store.h"
#include "ledger/merkle.h"
#include "ledger/proof.h"

namespace custody::ledger {

class TileTree final : public HashReader {
 public:
  TileTree(LedgerStore& store, size_t cache_tiles);

  // Loads the edge tiles of a tree of `size` leaves from the store and rebuilds the compact
  // range from them. DataLoss if the stored tiles do not cover `size`.
  Status Load(uint64_t size);

  void Append(const Hash& leaf_hash);
  uint64_t size() const { return range_.size(); }
  Hash Root() const { return range_.Root(); }

  // The tile rows changed since the last call, for persisting with a batch.
  std::vector<StoredTile> TakeDirtyTiles();

  // Restores the state of the last Load() or TakeDirtyTiles() (the last durable state), used
  // when a batch could not be committed.
  Status Rollback();

  // HashReader: the hash of a complete subtree of the current tree.
  Result<Hash> ReadNode(uint8_t level, uint64_t index) override;

 private:
  // rows[k] holds this tile's nodes at tree level 8L + k; rows[0] is the C2SP tile row.
  struct Tile {
    uint64_t index = 0;
    std::array<std::vector<Hash>, 8> rows;
  };
  using Key = std::pair<uint8_t, uint64_t>;

  void Visit(uint8_t level, uint64_t index, const Hash& hash);
  void Finalize(uint8_t tile_level);
  Result<std::shared_ptr<const Tile>> FullTile(uint8_t tile_level, uint64_t tile_index);
  void CachePut(Key key, std::shared_ptr<const Tile> tile);
  static void FillInternal(Tile& t);

  LedgerStore& store_;
  size_t cache_tiles_;
  uint64_t durable_size_ = 0;
  CompactRange range_;
  std::vector<Tile> edge_;            // edge_[L]: the rightmost tile of tile level L
  std::vector<bool> edge_dirty_;      // edge_dirty_[L]: edge_[L] changed since last take
  std::vector<StoredTile> finished_;  // tiles completed since the last take
  std::map<Key, std::pair<std::shared_ptr<const Tile>, std::list<Key>::iterator>> cache_;
  std::list<Key> lru_;  // most recently used first
};

}  // namespace custody::ledger
