// C2SP tlog-tiles geometry (https://c2sp.org/tlog-tiles): tiles of height 8 and width 256.
//
// Tile (L, N) holds the hashes of tree level 8L, entries [N * 256, N * 256 + width): for L = 0
// the leaf hashes, for L > 0 the roots of full tiles of level L - 1. A full tile has 256 hashes;
// the rightmost tiles of a tree are partial (1..255 hashes) and grow as the tree grows. The hashes
// of the seven tree levels inside a tile are not stored; TileHashReader recomputes and caches
// them.
//
// Byte layouts (fixed, as served over HTTP):
//   tile          = width concatenated 32-byte hashes
//   entry bundle  = for each entry: uint16 big-endian length || entry bytes
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "ledger/merkle.h"
#include "ledger/proof.h"

namespace custody::ledger {

inline constexpr uint8_t kTileHeight = 8;
inline constexpr uint16_t kTileWidth = 256;
inline constexpr uint8_t kMaxTileLevel = 63;  // the spec's bound on <L>

// "tile/<L>/<N>[.p/<W>]": N in zero-padded 3-digit groups, all but the last prefixed with "x"
// (1234067 -> "x001/x234/067"); ".p/<W>" only when width < 256. Width must be 1..256.
std::string TilePath(uint8_t level, uint64_t index, uint16_t width);
// "tile/entries/<N>[.p/<W>]".
std::string EntryBundlePath(uint64_t index, uint16_t width);

struct TileCoords {
  bool entries = false;  // an entry bundle rather than a hash tile
  uint8_t level = 0;     // 0 for entry bundles
  uint64_t index = 0;
  uint16_t width = kTileWidth;
  friend bool operator==(const TileCoords&, const TileCoords&) = default;
};
// Parses a path made by TilePath or EntryBundlePath (no leading slash), accepting only the
// canonical spelling: no leading zeros in L or W, exact 3-digit groups, no redundant "x000/"
// groups, L <= 63, W in 1..255, N within range. InvalidArgument otherwise.
Result<TileCoords> ParseTilePath(std::string_view path);

// Width of tile (level, index) in a tree of `tree_size` leaves: 256 when full, 1..255 when
// partial, 0 when the tile does not exist at that size.
uint16_t TileWidthAt(uint8_t level, uint64_t index, uint64_t tree_size);

// Where the node (tree level, index) is stored, if it is a tile entry (tree level % 8 == 0).
struct TileSlot {
  uint8_t level;   // tile level
  uint64_t index;  // tile index
  uint8_t slot;    // position within the tile
};
std::optional<TileSlot> TileSlotOfNode(uint8_t tree_level, uint64_t index);

// Tile bytes <-> hashes. DecodeTile requires 1..256 whole hashes.
std::string EncodeTile(std::span<const Hash> hashes);
Result<std::vector<Hash>> DecodeTile(std::string_view data);

// Entry bundles. Entries are raw bytes of at most 65535 bytes each.
Result<std::string> EncodeEntryBundle(std::span<const std::string> entries);
Result<std::vector<std::string>> DecodeEntryBundle(std::string_view bundle);

// Returns the stored hashes of tile (tile level, tile index) as of now: a full row of 256 or the
// current partial row. NotFound if the tile does not exist.
using TileFetcher =
    std::function<Result<std::vector<Hash>>(uint8_t tile_level, uint64_t tile_index)>;

// A HashReader over tiles: any complete subtree is one stored hash, or the root of a perfect
// subtree inside one tile, which it computes once per tile and caches (all seven intra-tile
// levels). Partial tiles are cached as the prefix they had and fetched again only when a node
// needs a wider prefix; a refetched row must extend the cached one, else DataLoss. The least
// recently used tile is evicted beyond `max_cached_tiles` (a tile costs about 16 KiB).
// Not thread-safe: use one per thread, or guard it.
class TileHashReader : public HashReader {
 public:
  explicit TileHashReader(TileFetcher fetch, size_t max_cached_tiles = 1024);

  Result<Hash> ReadNode(uint8_t level, uint64_t index) override;

  // Number of fetcher calls so far (for tests and metrics).
  uint64_t fetches() const { return fetches_; }

 private:
  struct Tile {
    // levels[k] holds the complete subtrees of height k within the tile; levels[0] is the row.
    std::array<std::vector<Hash>, kTileHeight> levels;
    std::list<uint64_t>::iterator lru;  // position in lru_
  };
  Result<Tile*> GetTile(uint8_t tile_level, uint64_t tile_index, size_t min_width);
  // Hashes the intra-tile subtrees that the row's new entries complete.
  static void Extend(Tile& tile);

  TileFetcher fetch_;
  size_t max_cached_tiles_;
  std::unordered_map<uint64_t, Tile> cache_;  // key: tile_level << 56 | tile_index
  std::list<uint64_t> lru_;                   // cache_ keys, most recently used first
  uint64_t fetches_ = 0;
};

}  // namespace custody::ledger
