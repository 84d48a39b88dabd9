#include "ledger/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/encoding.h"

namespace custody::ledger {
namespace {

// The eight leaves used by Certificate Transparency implementations to test RFC 6962 trees, and
// the roots of their prefixes (github.com/transparency-dev/merkle, testonly/constants.go).
std::vector<std::vector<uint8_t>> TestLeaves() {
  std::vector<std::vector<uint8_t>> leaves;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    leaves.push_back(*HexDecode(hex));
  }
  return leaves;
}

const char* const kRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

TEST(MerkleTest, EmptyRootIsSha256OfNothing) {
  EXPECT_EQ(HexEncode(EmptyRoot()), kRoots[0]);
  EXPECT_EQ(RootFromLeafHashes({}), EmptyRoot());
  EXPECT_EQ(CompactRange().Root(), EmptyRoot());
}

TEST(MerkleTest, LeafAndNodeHashesUseDomainSeparation) {
  // The first test leaf is empty: its hash is SHA-256(0x00).
  EXPECT_EQ(HexEncode(HashLeaf(std::string_view())),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  const Hash a = HashLeaf(std::string_view("a"));
  const Hash b = HashLeaf(std::string_view("b"));
  std::vector<uint8_t> preimage = {0x01};
  preimage.insert(preimage.end(), a.begin(), a.end());
  preimage.insert(preimage.end(), b.begin(), b.end());
  EXPECT_EQ(HashChildren(a, b), crypto::Sha256(preimage));
  EXPECT_NE(HashChildren(a, b), HashChildren(b, a));
  const std::vector<uint8_t> bytes = {'a'};
  EXPECT_EQ(HashLeaf(bytes), a);
}

TEST(MerkleTest, KnownAnswerRootsForRfc6962TestLeaves) {
  const auto leaves = TestLeaves();
  std::vector<Hash> hashes;
  CompactRange range;
  for (size_t n = 0; n <= leaves.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(HexEncode(RootFromLeafHashes(hashes)), kRoots[n]);
    EXPECT_EQ(HexEncode(range.Root()), kRoots[n]);
    if (n == leaves.size()) break;
    hashes.push_back(HashLeaf(leaves[n]));
    range.Append(hashes.back());
  }
}

TEST(MerkleTest, KnownAnswerInteriorNodes) {
  const auto leaves = TestLeaves();
  std::map<std::pair<uint8_t, uint64_t>, Hash> nodes;
  CompactRange range;
  for (const auto& leaf : leaves) {
    range.Append(HashLeaf(leaf), [&](uint8_t level, uint64_t index, const Hash& h) {
      EXPECT_TRUE(nodes.emplace(std::make_pair(level, index), h).second);
    });
  }
  // Level 1 and 2 nodes of the 8-leaf tree (transparency-dev/merkle testonly NodeHashes).
  EXPECT_EQ(HexEncode(nodes.at({1, 0})),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
  EXPECT_EQ(HexEncode(nodes.at({1, 1})),
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
  EXPECT_EQ(HexEncode(nodes.at({1, 2})),
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a");
  EXPECT_EQ(HexEncode(nodes.at({1, 3})),
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
  EXPECT_EQ(HexEncode(nodes.at({2, 1})),
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  EXPECT_EQ(nodes.size(), 8u + 4u + 2u + 1u);
}

// Every Append reports exactly the subtrees it completes, each with its reference MTH, and the
// compact range's root matches the reference at every size.
TEST(MerkleTest, CompactRangeMatchesReferenceAndReportsEveryCompleteSubtree) {
  std::vector<Hash> leaves;
  CompactRange range;
  std::map<std::pair<uint8_t, uint64_t>, Hash> seen;
  for (uint64_t n = 0; n < 300; ++n) {
    leaves.push_back(HashLeaf("leaf " + std::to_string(n)));
    std::vector<std::pair<uint8_t, uint64_t>> reported;
    range.Append(leaves.back(), [&](uint8_t level, uint64_t index, const Hash& h) {
      reported.emplace_back(level, index);
      const uint64_t begin = index << level;
      const uint64_t end = (index + 1) << level;
      ASSERT_LE(end, leaves.size());
      EXPECT_EQ(h, RootFromLeafHashes(std::span<const Hash>(leaves).subspan(begin, end - begin)));
      EXPECT_TRUE(seen.emplace(std::make_pair(level, index), h).second) << "reported twice";
    });
    // Leaf n completes one subtree per trailing one bit of n, plus the leaf itself.
    ASSERT_EQ(reported.size(), 1u + std::countr_one(n));
    for (size_t i = 0; i < reported.size(); ++i) {
      EXPECT_EQ(reported[i].first, i);
      EXPECT_EQ(reported[i].second, n >> i);
    }
    ASSERT_EQ(range.size(), n + 1);
    ASSERT_EQ(range.hashes().size(), static_cast<size_t>(std::popcount(n + 1)));
    ASSERT_EQ(range.Root(), RootFromLeafHashes(leaves)) << "size " << n + 1;
  }
}

TEST(MerkleTest, CompactRangeRestoresFromStoredHashes) {
  CompactRange range;
  for (int i = 0; i < 21; ++i) range.Append(HashLeaf(std::to_string(i)));
  auto restored = CompactRange::FromHashes(range.size(), range.hashes());
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  for (int i = 21; i < 40; ++i) {
    range.Append(HashLeaf(std::to_string(i)));
    restored->Append(HashLeaf(std::to_string(i)));
  }
  EXPECT_EQ(restored->Root(), range.Root());
  EXPECT_EQ(restored->size(), 40u);

  // 21 = 0b10101 needs three hashes.
  std::vector<Hash> two(2);
  auto bad = CompactRange::FromHashes(21, two);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace custody::ledger
