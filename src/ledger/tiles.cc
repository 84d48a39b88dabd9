#include "ledger/tiles.h"

#include <charconv>
#include <cstring>

namespace custody::ledger {
namespace {

constexpr std::string_view kTilePrefix = "tile/";
constexpr std::string_view kEntriesPrefix = "tile/entries/";
constexpr size_t kHashSize = sizeof(Hash);

void AppendIndex(std::string& out, uint64_t index) {
  // Groups of three digits, most significant first.
  char groups[7][4];
  int count = 0;
  do {
    const unsigned g = static_cast<unsigned>(index % 1000);
    groups[count][0] = static_cast<char>('0' + g / 100);
    groups[count][1] = static_cast<char>('0' + g / 10 % 10);
    groups[count][2] = static_cast<char>('0' + g % 10);
    groups[count][3] = '\0';
    ++count;
    index /= 1000;
  } while (index != 0);
  for (int i = count - 1; i >= 0; --i) {
    if (i != 0) out.push_back('x');
    out.append(groups[i], 3);
    if (i != 0) out.push_back('/');
  }
}

void AppendWidth(std::string& out, uint16_t width) {
  if (width < kTileWidth) {
    out.append(".p/");
    out.append(std::to_string(width));
  }
}

// Parses a canonical decimal (no sign, no leading zeros unless "0") into [0, max].
std::optional<uint64_t> ParseCanonicalDecimal(std::string_view s, uint64_t max) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

Status BadPath(std::string_view path, std::string_view why) {
  return InvalidArgumentError("bad tile path \"" + std::string(path.substr(0, 200)) +
                              "\": " + std::string(why));
}

// Parses "<N>[.p/<W>]" as written by AppendIndex/AppendWidth.
Status ParseIndexAndWidth(std::string_view path, std::string_view rest, TileCoords* out) {
  std::string_view index_part = rest;
  out->width = kTileWidth;
  if (const size_t p = rest.find(".p/"); p != std::string_view::npos) {
    index_part = rest.substr(0, p);
    auto w = ParseCanonicalDecimal(rest.substr(p + 3), kTileWidth - 1);
    if (!w || *w == 0) return BadPath(path, "partial width must be 1..255 without leading zeros");
    out->width = static_cast<uint16_t>(*w);
  }
  // Groups: all but the last are "xDDD/", the last is "DDD".
  uint64_t index = 0;
  size_t groups = 0;
  while (true) {
    const bool last = index_part.size() == 3;
    if (!last && (index_part.size() < 5 || index_part[0] != 'x' || index_part[4] != '/')) {
      return BadPath(path, "index must be 3-digit groups, all but the last prefixed with x");
    }
    const std::string_view digits = last ? index_part : index_part.substr(1, 3);
    unsigned g = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return BadPath(path, "index groups must be decimal digits");
      g = g * 10 + static_cast<unsigned>(c - '0');
    }
    if (groups == 0 && !last && g == 0) return BadPath(path, "index has a leading zero group");
    if (index > (UINT64_MAX - g) / 1000) return BadPath(path, "index out of range");
    index = index * 1000 + g;
    ++groups;
    if (last) break;
    index_part.remove_prefix(5);
  }
  out->index = index;
  return OkStatus();
}

}  // namespace

std::string TilePath(uint8_t level, uint64_t index, uint16_t width) {
  std::string out(kTilePrefix);
  out.append(std::to_string(level));
  out.push_back('/');
  AppendIndex(out, index);
  AppendWidth(out, width);
  return out;
}

std::string EntryBundlePath(uint64_t index, uint16_t width) {
  std::string out(kEntriesPrefix);
  AppendIndex(out, index);
  AppendWidth(out, width);
  return out;
}

Result<TileCoords> ParseTilePath(std::string_view path) {
  TileCoords coords;
  if (path.starts_with(kEntriesPrefix)) {
    coords.entries = true;
    RETURN_IF_ERROR(ParseIndexAndWidth(path, path.substr(kEntriesPrefix.size()), &coords));
  } else if (path.starts_with(kTilePrefix)) {
    std::string_view rest = path.substr(kTilePrefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return BadPath(path, "missing level");
    auto level = ParseCanonicalDecimal(rest.substr(0, slash), kMaxTileLevel);
    if (!level) return BadPath(path, "level must be 0..63 without leading zeros");
    coords.level = static_cast<uint8_t>(*level);
    RETURN_IF_ERROR(ParseIndexAndWidth(path, rest.substr(slash + 1), &coords));
  } else {
    return BadPath(path, "must start with tile/");
  }
  // The tile must start inside a 64-bit tree: index * 256^(L+1) < 2^64.
  const unsigned shift = kTileHeight * (coords.level + 1u);
  if (shift < 64 && coords.index > (UINT64_MAX >> shift)) return BadPath(path, "index too large");
  if (shift >= 64 && coords.index != 0) return BadPath(path, "index too large");
  return coords;
}

uint16_t TileWidthAt(uint8_t level, uint64_t index, uint64_t tree_size) {
  const unsigned shift = kTileHeight * level;
  if (shift >= 64) return 0;
  const uint64_t entries = tree_size >> shift;  // complete hashes at tree level 8L
  const uint64_t start = index;                 // tile index in units of 256 entries
  if ((entries >> kTileHeight) > start) return kTileWidth;
  if ((entries >> kTileHeight) < start) return 0;
  return static_cast<uint16_t>(entries & (kTileWidth - 1));
}

std::optional<TileSlot> TileSlotOfNode(uint8_t tree_level, uint64_t index) {
  if (tree_level % kTileHeight != 0) return std::nullopt;
  return TileSlot{static_cast<uint8_t>(tree_level / kTileHeight), index >> kTileHeight,
                  static_cast<uint8_t>(index & (kTileWidth - 1))};
}

std::string EncodeTile(std::span<const Hash> hashes) {
  std::string out;
  out.resize(hashes.size() * kHashSize);
  if (!hashes.empty()) std::memcpy(out.data(), hashes.data(), out.size());
  return out;
}

Result<std::vector<Hash>> DecodeTile(std::string_view data) {
  if (data.empty() || data.size() % kHashSize != 0 || data.size() > kTileWidth * kHashSize) {
    return InvalidArgumentError("tile of " + std::to_string(data.size()) +
                                " bytes is not 1..256 whole SHA-256 hashes");
  }
  std::vector<Hash> hashes(data.size() / kHashSize);
  std::memcpy(hashes.data(), data.data(), data.size());
  return hashes;
}

Result<std::string> EncodeEntryBundle(std::span<const std::string> entries) {
  std::string out;
  size_t total = 0;
  for (const auto& e : entries) total += 2 + e.size();
  out.reserve(total);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.size() > 0xffff) {
      return InvalidArgumentError("entry " + std::to_string(i) + " has " +
                                  std::to_string(e.size()) +
                                  " bytes; entry bundles hold at most 65535");
    }
    out.push_back(static_cast<char>(e.size() >> 8));
    out.push_back(static_cast<char>(e.size() & 0xff));
    out.append(e);
  }
  return out;
}

Result<std::vector<std::string>> DecodeEntryBundle(std::string_view bundle) {
  std::vector<std::string> entries;
  size_t pos = 0;
  while (pos < bundle.size()) {
    if (bundle.size() - pos < 2) {
      return InvalidArgumentError("entry bundle truncated in the length of entry " +
                                  std::to_string(entries.size()));
    }
    const size_t len = (static_cast<size_t>(static_cast<uint8_t>(bundle[pos])) << 8) |
                       static_cast<uint8_t>(bundle[pos + 1]);
    pos += 2;
    if (bundle.size() - pos < len) {
      return InvalidArgumentError("entry bundle truncated in entry " +
                                  std::to_string(entries.size()));
    }
    entries.emplace_back(bundle.substr(pos, len));
    pos += len;
    if (entries.size() > kTileWidth) {
      return InvalidArgumentError("entry bundle holds more than 256 entries");
    }
  }
  return entries;
}

TileHashReader::TileHashReader(TileFetcher fetch, size_t max_cached_tiles)
    : fetch_(std::move(fetch)), max_cached_tiles_(max_cached_tiles == 0 ? 1 : max_cached_tiles) {}

void TileHashReader::Extend(Tile& tile) {
  for (size_t k = 1; k < kTileHeight; ++k) {
    const auto& below = tile.levels[k - 1];
    auto& row = tile.levels[k];
    const size_t want = below.size() / 2;
    row.reserve(kTileWidth >> k);
    for (size_t j = row.size(); j < want; ++j) {
      row.push_back(HashChildren(below[2 * j], below[2 * j + 1]));
    }
  }
}

Result<TileHashReader::Tile*> TileHashReader::GetTile(uint8_t tile_level, uint64_t tile_index,
                                                      size_t min_width) {
  const uint64_t key = (static_cast<uint64_t>(tile_level) << 56) | tile_index;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (it->second.levels[0].size() >= min_width) return &it->second;
  }

  ++fetches_;
  ASSIGN_OR_RETURN(std::vector<Hash> row, fetch_(tile_level, tile_index));
  const std::string name = TilePath(tile_level, tile_index, kTileWidth);
  if (row.size() > kTileWidth) {
    return DataLossError("tile " + name + " has " + std::to_string(row.size()) + " hashes");
  }
  if (row.size() < min_width) {
    return NotFoundError("tile " + name + " has " + std::to_string(row.size()) +
                         " hashes; the node needs " + std::to_string(min_width));
  }
  if (it == cache_.end()) {
    if (cache_.size() >= max_cached_tiles_) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
    it = cache_.emplace(key, Tile{}).first;
    lru_.push_front(key);
    it->second.lru = lru_.begin();
  }
  Tile& tile = it->second;
  auto& cached = tile.levels[0];
  const size_t old_width = cached.size();
  // Tiles only grow: a refetched row must start with what we cached.
  if (old_width > row.size() ||
      (old_width != 0 && std::memcmp(cached.data(), row.data(), old_width * sizeof(Hash)) != 0)) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
    return DataLossError("tile " + name + " changed: it no longer extends its earlier contents");
  }
  cached.reserve(kTileWidth);
  cached.insert(cached.end(), row.begin() + static_cast<std::ptrdiff_t>(old_width), row.end());
  Extend(tile);
  return &tile;
}

Result<Hash> TileHashReader::ReadNode(uint8_t level, uint64_t index) {
  if (level >= 64) return InvalidArgumentError("node level " + std::to_string(level) + " >= 64");
  const uint8_t tile_level = level / kTileHeight;
  const uint8_t sub = level % kTileHeight;
  // The node spans tile entries [index << sub, (index + 1) << sub) at tree level 8 * tile_level.
  const uint64_t tile_index = index >> (kTileHeight - sub);
  const uint64_t in_tile = index & ((uint64_t{1} << (kTileHeight - sub)) - 1);
  const size_t min_width = static_cast<size_t>((in_tile + 1) << sub);
  ASSIGN_OR_RETURN(Tile * tile, GetTile(tile_level, tile_index, min_width));
  return tile->levels[sub][in_tile];
}

}  // namespace custody::ledger
