#include "ledger/tiles.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ledger/proof_test_util.h"

namespace custody::ledger {
namespace {

using testing::MakeLeafHashes;
using testing::MemoryTree;
using testing::Mth;
using testing::RefPath;

TEST(TilePathTest, FormatsLikeTheSpec) {
  EXPECT_EQ(TilePath(0, 1234067, 256), "tile/0/x001/x234/067");
  EXPECT_EQ(TilePath(0, 0, 256), "tile/0/000");
  EXPECT_EQ(TilePath(0, 1234, 256), "tile/0/x001/234");
  EXPECT_EQ(TilePath(0, 1234, 17), "tile/0/x001/234.p/17");
  EXPECT_EQ(TilePath(3, 999, 1), "tile/3/999.p/1");
  EXPECT_EQ(TilePath(2, 1000, 256), "tile/2/x001/000");
  EXPECT_EQ(TilePath(63, 0, 255), "tile/63/000.p/255");
  EXPECT_EQ(EntryBundlePath(1234067, 256), "tile/entries/x001/x234/067");
  EXPECT_EQ(EntryBundlePath(5, 112), "tile/entries/005.p/112");
  EXPECT_EQ(TilePath(0, UINT64_MAX >> 8, 256), "tile/0/x072/x057/x594/x037/x927/935");
}

TEST(TilePathTest, ParsesWhatItFormats) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const uint8_t level = static_cast<uint8_t>(rng() % 8);
    const unsigned shift = 8u * (level + 1u);
    const uint64_t index = shift >= 64 ? 0 : (rng() >> shift) >> (rng() % 56);
    const uint16_t width = static_cast<uint16_t>(1 + rng() % 256);
    auto tile = ParseTilePath(TilePath(level, index, width));
    ASSERT_TRUE(tile.ok()) << TilePath(level, index, width) << " " << tile.status().ToString();
    EXPECT_EQ(*tile, (TileCoords{false, level, index, width}));
    auto bundle = ParseTilePath(EntryBundlePath(index, width));
    ASSERT_TRUE(bundle.ok()) << EntryBundlePath(index, width);
    EXPECT_EQ(*bundle, (TileCoords{true, 0, index, width}));
  }
}

TEST(TilePathTest, RejectsNonCanonicalPaths) {
  for (const char* path : {
           "",
           "tile/",
           "tile/0",
           "tile/0/",
           "tile/00/000",                                    // leading zero in level
           "tile/64/000",                                    // level above 63
           "tile/-1/000",                                    //
           "tile/+1/000",                                    //
           "tile/0/0",                                       // short group
           "tile/0/0000",                                    // long group
           "tile/0/1234",                                    // needs x001/234
           "tile/0/x000/001",                                // redundant zero group
           "tile/0/001/234",                                 // missing x
           "tile/0/x001",                                    // last group has x
           "tile/0/x001/",                                   //
           "tile/0/x001/23a",                                //
           "tile/0/000.p/0",                                 // width 0
           "tile/0/000.p/256",                               // full tiles have no .p
           "tile/0/000.p/017",                               // leading zero in width
           "tile/0/000.p/",                                  //
           "tile/0/000.p/17/",                               //
           "tile/0/000.q/17",                                //
           "tile/0/000/",                                    //
           "/tile/0/000",                                    //
           "tiles/0/000",                                    //
           "tile/entries/",                                  //
           "tile/entries/0000",                              //
           "tile/entries/000.p/0",                           //
           "tile/7/x001/000",                                // beyond a 64-bit tree
           "tile/0/x072/x057/x594/x037/x927/936",            // index 2^56: beyond a 64-bit tree
           "tile/0/x999/x999/x999/x999/x999/x999/x999/999",  // overflows uint64
       }) {
    auto parsed = ParseTilePath(path);
    EXPECT_FALSE(parsed.ok()) << path;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << path;
    }
  }
}

TEST(TileGeometryTest, SpecExampleTreeOf70000) {
  // tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
  // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and
  // one partial level 2 tile of width 1."
  const uint64_t n = 70000;
  for (uint64_t i = 0; i < 273; ++i) EXPECT_EQ(TileWidthAt(0, i, n), 256) << i;
  EXPECT_EQ(TileWidthAt(0, 273, n), 112);
  EXPECT_EQ(TileWidthAt(0, 274, n), 0);
  EXPECT_EQ(TileWidthAt(1, 0, n), 256);
  EXPECT_EQ(TileWidthAt(1, 1, n), 17);
  EXPECT_EQ(TileWidthAt(1, 2, n), 0);
  EXPECT_EQ(TileWidthAt(2, 0, n), 1);
  EXPECT_EQ(TileWidthAt(3, 0, n), 0);
  // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of
  // width 1."
  EXPECT_EQ(TileWidthAt(0, 0, 256), 256);
  EXPECT_EQ(TileWidthAt(0, 1, 256), 0);
  EXPECT_EQ(TileWidthAt(1, 0, 256), 1);
  EXPECT_EQ(TileWidthAt(0, 0, 0), 0);
}

TEST(TileGeometryTest, SlotsOfNodes) {
  EXPECT_FALSE(TileSlotOfNode(3, 5).has_value());
  auto s = TileSlotOfNode(8, 257);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->level, 1);
  EXPECT_EQ(s->index, 1u);
  EXPECT_EQ(s->slot, 1);
  s = TileSlotOfNode(0, 70000);
  EXPECT_EQ(s->level, 0);
  EXPECT_EQ(s->index, 273u);
  EXPECT_EQ(s->slot, 112);
}

TEST(TileCodecTest, TilesRoundTripAndRejectPartialHashes) {
  const auto hashes = MakeLeafHashes(5);
  const std::string bytes = EncodeTile(hashes);
  EXPECT_EQ(bytes.size(), 160u);
  auto back = DecodeTile(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, hashes);
  EXPECT_FALSE(DecodeTile("").ok());
  EXPECT_FALSE(DecodeTile(bytes.substr(0, 159)).ok());
  EXPECT_FALSE(DecodeTile(std::string(257 * 32, 'a')).ok());
  EXPECT_TRUE(DecodeTile(std::string(256 * 32, 'a')).ok());
}

TEST(TileCodecTest, EntryBundlesRoundTrip) {
  const std::vector<std::string> entries = {"", "a", std::string(300, 'x'),
                                            std::string(65535, '\xff'), "{\"k\":1}"};
  auto bundle = EncodeEntryBundle(entries);
  ASSERT_TRUE(bundle.ok());
  EXPECT_EQ(bundle->substr(0, 5), std::string("\x00\x00\x00\x01"
                                              "a",
                                              5));
  EXPECT_EQ(bundle->substr(5, 2), std::string("\x01\x2c", 2));  // 300 big-endian
  auto back = DecodeEntryBundle(*bundle);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, entries);
  auto empty = DecodeEntryBundle("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(TileCodecTest, EntryBundlesRejectTruncationAndOversize) {
  const std::vector<std::string> entries = {"hello", "world"};
  const std::string bundle = *EncodeEntryBundle(entries);
  for (size_t cut = 1; cut < bundle.size(); ++cut) {
    if (cut == 7) continue;  // a whole first entry is a valid bundle
    EXPECT_FALSE(DecodeEntryBundle(bundle.substr(0, cut)).ok()) << cut;
  }
  const std::vector<std::string> big = {std::string(65536, 'a')};
  EXPECT_EQ(EncodeEntryBundle(big).status().code(), StatusCode::kInvalidArgument);
  std::string many;
  for (int i = 0; i < 257; ++i) many.append(std::string("\x00\x00", 2));
  EXPECT_FALSE(DecodeEntryBundle(many).ok());
}

// Serves the tiles of the first `size` leaves of a MemoryTree, as storage would at that size.
class TileStore {
 public:
  explicit TileStore(const std::vector<Hash>& leaves) : tree_(leaves), size_(leaves.size()) {}
  void set_size(uint64_t size) { size_ = size; }
  uint64_t calls() const { return calls_; }

  TileFetcher Fetcher() {
    return [this](uint8_t level, uint64_t index) -> Result<std::vector<Hash>> {
      ++calls_;
      const uint16_t width = TileWidthAt(level, index, size_);
      if (width == 0) return NotFoundError(TilePath(level, index, 256) + " does not exist");
      std::vector<Hash> row;
      for (uint64_t i = 0; i < width; ++i) {
        auto h = tree_.ReadNode(static_cast<uint8_t>(level * kTileHeight), index * 256 + i);
        if (!h.ok()) return h.status();
        row.push_back(*h);
      }
      return row;
    };
  }

 private:
  MemoryTree tree_;
  uint64_t size_;
  uint64_t calls_ = 0;
};

TEST(TileHashReaderTest, EveryProofUpTo80MatchesTheReferenceAsTheLogGrows) {
  const auto leaves = MakeLeafHashes(80);
  TileStore store(leaves);
  // One reader for the whole run: partial tiles are cached and must extend as the log grows.
  TileHashReader reader(store.Fetcher());
  std::vector<Hash> proof;
  for (uint64_t n = 1; n <= 80; ++n) {
    store.set_size(n);
    const Hash root = Mth(leaves, 0, n);
    auto r = RootAt(n, reader);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, root);
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(::testing::Message() << "index " << i << " size " << n);
      ASSERT_TRUE(InclusionProofInto(i, n, reader, &proof).ok());
      EXPECT_EQ(proof, RefPath(leaves, i, 0, n));
      EXPECT_TRUE(VerifyInclusion(i, n, leaves[i], proof, root).ok());
    }
    for (uint64_t m = 0; m <= n; ++m) {
      ASSERT_TRUE(ConsistencyProofInto(m, n, reader, &proof).ok());
      EXPECT_EQ(proof, testing::RefConsistency(leaves, m, n)) << m << " -> " << n;
      EXPECT_TRUE(VerifyConsistency(m, n, proof, Mth(leaves, 0, m), root).ok());
    }
  }
  // The single level-0 tile was fetched once per growth, not once per proof.
  EXPECT_LE(reader.fetches(), 80u);
}

TEST(TileHashReaderTest, MultiLevelTreeAgreesWithInMemoryTree) {
  const uint64_t kLeaves = 70000;
  const auto leaves = MakeLeafHashes(kLeaves);
  MemoryTree memory(leaves);
  TileStore store(leaves);
  TileHashReader reader(store.Fetcher());
  // Roots for every size from a compact range, to verify against.
  std::vector<Hash> roots;
  roots.reserve(kLeaves + 1);
  CompactRange range;
  roots.push_back(range.Root());
  for (const Hash& h : leaves) {
    range.Append(h);
    roots.push_back(range.Root());
  }
  std::mt19937_64 rng(42);
  std::vector<uint64_t> sizes = {1, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70000};
  for (int i = 0; i < 40; ++i) sizes.push_back(1 + rng() % kLeaves);
  for (uint64_t n : sizes) {
    store.set_size(n);
    memory.set_limit(n);
    auto r = RootAt(n, reader);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, roots[n]) << n;
    std::vector<uint64_t> indexes = {0, n - 1, n / 2, (n - 1) & ~uint64_t{255}};
    for (int k = 0; k < 20; ++k) indexes.push_back(rng() % n);
    for (uint64_t i : indexes) {
      SCOPED_TRACE(::testing::Message() << "index " << i << " size " << n);
      auto via_tiles = InclusionProof(i, n, reader);
      ASSERT_TRUE(via_tiles.ok()) << via_tiles.status().ToString();
      EXPECT_EQ(*via_tiles, *InclusionProof(i, n, memory));
      EXPECT_TRUE(VerifyInclusion(i, n, leaves[i], *via_tiles, roots[n]).ok());
      const uint64_t m = i;  // reuse as an older size
      auto cons = ConsistencyProof(m, n, reader);
      ASSERT_TRUE(cons.ok()) << cons.status().ToString();
      EXPECT_EQ(*cons, *ConsistencyProof(m, n, memory));
      EXPECT_TRUE(VerifyConsistency(m, n, *cons, roots[m], roots[n]).ok());
    }
  }
}

TEST(TileHashReaderTest, RepeatedProofsHitTheCache) {
  const auto leaves = MakeLeafHashes(3000);
  TileStore store(leaves);
  TileHashReader reader(store.Fetcher());
  ASSERT_TRUE(InclusionProof(1000, 3000, reader).ok());
  const uint64_t after_first = store.calls();
  for (int k = 0; k < 50; ++k) ASSERT_TRUE(InclusionProof(1000, 3000, reader).ok());
  EXPECT_EQ(store.calls(), after_first);
  for (uint64_t i = 768; i < 1024; ++i) ASSERT_TRUE(InclusionProof(i, 3000, reader).ok());
  EXPECT_EQ(store.calls(), after_first);  // same level-0 tile, same upper tiles
}

TEST(TileHashReaderTest, EvictsTheLeastRecentlyUsedTile) {
  const auto leaves = MakeLeafHashes(3000);
  TileStore store(leaves);
  TileHashReader reader(store.Fetcher(), /*max_cached_tiles=*/2);
  ASSERT_TRUE(reader.ReadNode(0, 0).ok());    // tile 0
  ASSERT_TRUE(reader.ReadNode(0, 256).ok());  // tile 1
  ASSERT_TRUE(reader.ReadNode(0, 1).ok());    // tile 0 again: now the most recent
  EXPECT_EQ(store.calls(), 2u);
  ASSERT_TRUE(reader.ReadNode(0, 512).ok());  // tile 2 evicts tile 1
  EXPECT_EQ(store.calls(), 3u);
  ASSERT_TRUE(reader.ReadNode(0, 2).ok());  // tile 0 still cached
  EXPECT_EQ(store.calls(), 3u);
  auto h = reader.ReadNode(0, 257);  // tile 1 fetched again
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, leaves[257]);
  EXPECT_EQ(store.calls(), 4u);
}

TEST(TileHashReaderTest, ReportsMissingAndRewrittenTiles) {
  const auto leaves = MakeLeafHashes(600);
  TileStore store(leaves);
  store.set_size(300);
  TileHashReader reader(store.Fetcher());
  // Node (0, 400) does not exist at size 300: the store says so and the reader passes it on.
  EXPECT_EQ(reader.ReadNode(0, 400).status().code(), StatusCode::kNotFound);
  // Node (5, 9) spans leaves [288, 320), past the partial tile's 44 hashes.
  EXPECT_EQ(reader.ReadNode(5, 9).status().code(), StatusCode::kNotFound);
  store.set_size(320);
  auto node = reader.ReadNode(5, 9);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ(*node, Mth(leaves, 288, 320));

  // A store whose partial tile changes under the reader is corrupt.
  std::vector<Hash> row = {leaves[0], leaves[1]};
  TileHashReader fickle([&](uint8_t, uint64_t) -> Result<std::vector<Hash>> { return row; });
  ASSERT_TRUE(fickle.ReadNode(0, 1).ok());
  row = {leaves[5], leaves[1], leaves[2]};
  EXPECT_EQ(fickle.ReadNode(0, 2).status().code(), StatusCode::kDataLoss);

  TileHashReader too_wide(
      [&](uint8_t, uint64_t) -> Result<std::vector<Hash>> { return std::vector<Hash>(257); });
  EXPECT_EQ(too_wide.ReadNode(0, 0).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace custody::ledger
