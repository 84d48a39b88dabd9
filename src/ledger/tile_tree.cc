#include "ledger/tile_tree.h"

namespace custody::ledger {

static_assert(kTileWidth == store::kLedgerTileWidth, "the store keeps full rows of this width");

TileTree::TileTree(store::LedgerStore& store, size_t cache_tiles)
    : store_(store), cache_tiles_(cache_tiles < 64 ? 64 : cache_tiles) {
  ResetReader();
}

void TileTree::ResetReader() {
  reader_ = std::make_unique<TileHashReader>(
      [this](uint8_t level, uint64_t index) { return Fetch(level, index); }, cache_tiles_);
}

Result<std::vector<Hash>> TileTree::Fetch(uint8_t tile_level, uint64_t tile_index) {
  if (tile_level < edge_.size() && edge_[tile_level].index == tile_index) {
    return edge_[tile_level].hashes;
  }
  ASSIGN_OR_RETURN(store::StoredTile t, store_.GetTile(tile_level, tile_index));
  return std::move(t.hashes);
}

Status TileTree::Load(uint64_t size) {
  range_ = CompactRange();
  edge_.clear();
  finished_.clear();
  durable_size_ = size;
  ResetReader();
  for (uint8_t L = 0; (size >> (8 * L)) > 0; ++L) {
    uint64_t count = size >> (8 * L);  // complete nodes at tree level 8L
    EdgeRow row;
    row.index = (count - 1) >> 8;
    uint64_t width = count - (row.index << 8);
    auto stored = store_.GetTile(L, row.index);
    if (!stored.ok()) {
      return DataLossError("tree of size " + std::to_string(size) + " needs tile " +
                           std::to_string(L) + "/" + std::to_string(row.index) + ": " +
                           stored.status().message());
    }
    if (stored->hashes.size() < width) {
      return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(row.index) + " has " +
                           std::to_string(stored->hashes.size()) + " hashes; a tree of size " +
                           std::to_string(size) + " needs " + std::to_string(width));
    }
    row.hashes.assign(stored->hashes.begin(), stored->hashes.begin() + static_cast<long>(width));
    edge_.push_back(std::move(row));
  }
  ASSIGN_OR_RETURN(range_, CompactRangeAt(size, *reader_));
  return OkStatus();
}

void TileTree::Append(const Hash& leaf_hash) {
  range_.Append(leaf_hash, [this](uint8_t level, uint64_t index, const Hash& hash) {
    Visit(level, index, hash);
  });
}

// Only nodes on tile rows (tree levels divisible by 8) are stored; the reader derives the rest.
void TileTree::Visit(uint8_t level, uint64_t index, const Hash& hash) {
  if (level % 8 != 0) return;
  uint8_t L = level / 8;
  if (edge_.size() <= L) edge_.resize(L + 1);
  EdgeRow& row = edge_[L];
  if (row.hashes.size() == 256) {
    if (row.dirty) finished_.push_back(store::StoredTile{L, row.index, std::move(row.hashes)});
    row = EdgeRow{};
    row.index = index >> 8;
  } else if (row.hashes.empty()) {
    row.index = index >> 8;
  }
  row.hashes.push_back(hash);
  row.dirty = true;
}

std::vector<store::StoredTile> TileTree::TakeDirtyTiles() {
  std::vector<store::StoredTile> out = std::move(finished_);
  finished_.clear();
  for (uint8_t L = 0; L < edge_.size(); ++L) {
    if (!edge_[L].dirty) continue;
    edge_[L].dirty = false;
    // A partial row of level 0 is the leaves' hashes, which the store has (LedgerStore).
    if (L == 0 && edge_[L].hashes.size() < kTileWidth) continue;
    out.push_back(store::StoredTile{L, edge_[L].index, edge_[L].hashes});
  }
  return out;
}

void TileTree::Committed() { durable_size_ = range_.size(); }

Status TileTree::Rollback() { return Load(durable_size_); }

Result<Hash> TileTree::ReadNode(uint8_t level, uint64_t index) {
  return reader_->ReadNode(level, index);
}

}  // namespace custody::ledger
