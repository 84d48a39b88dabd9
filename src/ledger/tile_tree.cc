#include "ledger/tile_tree.h"

namespace custody::ledger {

TileTree::TileTree(LedgerStore& store, size_t cache_tiles)
    : store_(store), cache_tiles_(cache_tiles < 64 ? 64 : cache_tiles) {}

void TileTree::FillInternal(Tile& t) {
  for (int k = 1; k < 8; ++k) {
    const auto& below = t.rows[k - 1];
    auto& row = t.rows[k];
    row.clear();
    for (size_t i = 0; i + 1 < below.size(); i += 2) {
      row.push_back(HashChildren(below[i], below[i + 1]));
    }
  }
}

Status TileTree::Load(uint64_t size) {
  range_ = CompactRange();
  edge_.clear();
  edge_dirty_.clear();
  finished_.clear();
  durable_size_ = size;
  for (uint8_t L = 0; (size >> (8 * L)) > 0; ++L) {
    uint64_t count = size >> (8 * L);  // complete nodes at tree level 8L
    Tile t;
    t.index = (count - 1) >> 8;
    uint64_t width = count - (t.index << 8);
    auto stored = store_.GetTile(L, t.index);
    if (!stored.ok()) {
      return DataLossError("tree of size " + std::to_string(size) + " needs tile " +
                           std::to_string(L) + "/" + std::to_string(t.index) + ": " +
                           stored.status().message());
    }
    if (stored->hashes.size() < width) {
      return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(t.index) + " has " +
                           std::to_string(stored->hashes.size()) + " hashes; a tree of size " +
                           std::to_string(size) + " needs " + std::to_string(width));
    }
    t.rows[0].assign(stored->hashes.begin(), stored->hashes.begin() + static_cast<long>(width));
    FillInternal(t);
    edge_.push_back(std::move(t));
    edge_dirty_.push_back(false);
  }
  std::vector<Hash> hashes;
  for (int level = 63; level >= 0; --level) {
    if (((size >> level) & 1) == 0) continue;
    ASSIGN_OR_RETURN(Hash h, ReadNode(static_cast<uint8_t>(level), (size >> level) - 1));
    hashes.push_back(h);
  }
  ASSIGN_OR_RETURN(range_, CompactRange::FromHashes(size, std::move(hashes)));
  return OkStatus();
}

void TileTree::Append(const Hash& leaf_hash) {
  range_.Append(leaf_hash, [this](uint8_t level, uint64_t index, const Hash& hash) {
    Visit(level, index, hash);
  });
}

void TileTree::Visit(uint8_t level, uint64_t index, const Hash& hash) {
  uint8_t L = level / 8;
  int k = level % 8;
  if (edge_.size() <= L) {
    edge_.resize(L + 1);
    edge_dirty_.resize(L + 1, false);
    edge_[L].index = index >> (8 - k);
  }
  if (k == 0 && edge_[L].rows[0].size() == 256) Finalize(L);
  Tile& t = edge_[L];
  if (t.rows[0].empty() && k == 0) t.index = index >> 8;
  t.rows[k].push_back(hash);
  if (k == 0) edge_dirty_[L] = true;
}

void TileTree::Finalize(uint8_t L) {
  Tile& t = edge_[L];
  auto full = std::make_shared<Tile>(std::move(t));
  if (edge_dirty_[L]) {
    finished_.push_back(StoredTile{L, full->index, full->rows[0]});
    edge_dirty_[L] = false;
  }
  uint64_t index = full->index;
  CachePut({L, index}, std::move(full));
  t = Tile();
  t.index = index + 1;
}

std::vector<StoredTile> TileTree::TakeDirtyTiles() {
  std::vector<StoredTile> out = std::move(finished_);
  finished_.clear();
  for (uint8_t L = 0; L < edge_.size(); ++L) {
    if (!edge_dirty_[L]) continue;
    out.push_back(StoredTile{L, edge_[L].index, edge_[L].rows[0]});
    edge_dirty_[L] = false;
  }
  durable_size_ = range_.size();
  return out;
}

Status TileTree::Rollback() {
  // Tiles finished in the failed batch may sit in the cache; they were never stored, so drop
  // everything cached and reload from the store.
  cache_.clear();
  lru_.clear();
  return Load(durable_size_);
}

void TileTree::CachePut(Key key, std::shared_ptr<const Tile> tile) {
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.erase(it->second.second);
    cache_.erase(it);
  }
  lru_.push_front(key);
  cache_.emplace(key, std::make_pair(std::move(tile), lru_.begin()));
  while (cache_.size() > cache_tiles_) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
}

Result<std::shared_ptr<const TileTree::Tile>> TileTree::FullTile(uint8_t L, uint64_t index) {
  auto it = cache_.find({L, index});
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  ASSIGN_OR_RETURN(StoredTile stored, store_.GetTile(L, index));
  if (stored.hashes.size() != 256) {
    return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(index) +
                         " should be full but has " + std::to_string(stored.hashes.size()) +
                         " hashes");
  }
  auto t = std::make_shared<Tile>();
  t->index = index;
  t->rows[0] = std::move(stored.hashes);
  FillInternal(*t);
  std::shared_ptr<const Tile> ct = t;
  CachePut({L, index}, ct);
  return ct;
}

Result<Hash> TileTree::ReadNode(uint8_t level, uint64_t index) {
  uint8_t L = level / 8;
  int k = level % 8;
  uint64_t tile_index = index >> (8 - k);
  uint64_t pos = index - (tile_index << (8 - k));
  if (L < edge_.size() && edge_[L].index == tile_index) {
    const auto& row = edge_[L].rows[k];
    if (pos < row.size()) return row[pos];
    return NotFoundError("node " + std::to_string(level) + "/" + std::to_string(index) +
                         " is not complete in a tree of size " + std::to_string(size()));
  }
  if (L >= edge_.size() || tile_index > edge_[L].index) {
    return NotFoundError("node " + std::to_string(level) + "/" + std::to_string(index) +
                         " is beyond a tree of size " + std::to_string(size()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const Tile> t, FullTile(L, tile_index));
  return t->rows[k][pos];
}

}  // namespace custody::ledger
