#include "ledger/proof.h"

#include <gtest/gtest.h>

#include <bit>
#include <vector>

#include "ledger/proof_test_util.h"

namespace custody::ledger {
namespace {

using testing::MakeLeafHashes;
using testing::MemoryTree;
using testing::Mth;
using testing::RefConsistency;
using testing::RefPath;

constexpr uint64_t kMaxSize = 80;  // the issue asks for every proof up to at least 70

Hash Flip(Hash h, int bit) {
  h[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  return h;
}

TEST(ProofTest, RootAtMatchesReferenceForEverySize) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  for (uint64_t n = 0; n <= kMaxSize; ++n) {
    tree.set_limit(n);
    auto root = RootAt(n, tree);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(*root, Mth(tree.leaves(), 0, n)) << n;
  }
}

TEST(ProofTest, CompactRangeAtResumesAppending) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  for (uint64_t n = 0; n <= kMaxSize; ++n) {
    tree.set_limit(n);
    auto range = CompactRangeAt(n, tree);
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    EXPECT_EQ(range->size(), n);
    EXPECT_EQ(range->Root(), Mth(tree.leaves(), 0, n));
    if (n < kMaxSize) {
      range->Append(tree.leaves()[n]);
      EXPECT_EQ(range->Root(), Mth(tree.leaves(), 0, n + 1));
    }
  }
}

TEST(ProofTest, EveryInclusionProofMatchesRfc6962AndVerifies) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  std::vector<Hash> proof;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    tree.set_limit(n);  // any read past size n fails the proof
    const Hash root = Mth(tree.leaves(), 0, n);
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(::testing::Message() << "index " << i << " size " << n);
      tree.reset_reads();
      ASSERT_TRUE(InclusionProofInto(i, n, tree, &proof).ok());
      EXPECT_EQ(proof, RefPath(tree.leaves(), i, 0, n));
      // O(log n) reads: one per path level plus the decomposition of one right-edge sibling.
      EXPECT_LE(tree.reads(), 2 * std::bit_width(n));
      EXPECT_TRUE(VerifyInclusion(i, n, tree.leaves()[i], proof, root).ok());
      auto via_result = InclusionProof(i, n, tree);
      ASSERT_TRUE(via_result.ok());
      EXPECT_EQ(*via_result, proof);
    }
  }
}

TEST(ProofTest, EveryConsistencyProofMatchesRfc6962AndVerifies) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  std::vector<Hash> proof;
  for (uint64_t n = 0; n <= kMaxSize; ++n) {
    tree.set_limit(n);
    const Hash root2 = Mth(tree.leaves(), 0, n);
    for (uint64_t m = 0; m <= n; ++m) {
      SCOPED_TRACE(::testing::Message() << "sizes " << m << " -> " << n);
      tree.reset_reads();
      ASSERT_TRUE(ConsistencyProofInto(m, n, tree, &proof).ok());
      EXPECT_EQ(proof, RefConsistency(tree.leaves(), m, n));
      EXPECT_LE(tree.reads(), 2 * std::bit_width(n) + 1);
      const Hash root1 = Mth(tree.leaves(), 0, m);
      EXPECT_TRUE(VerifyConsistency(m, n, proof, root1, root2).ok());
    }
  }
}

TEST(ProofTest, RightEdgeCacheSharesWorkAcrossABatch) {
  MemoryTree tree(MakeLeafHashes(1000));
  RightEdgeCache cache;
  std::vector<Hash> with_cache;
  std::vector<Hash> without;
  for (uint64_t n : {1000u, 999u, 1000u, 513u, 512u}) {
    tree.set_limit(n);
    int reads_with = 0;
    int reads_without = 0;
    for (uint64_t i = 0; i < n; ++i) {
      tree.reset_reads();
      ASSERT_TRUE(InclusionProofInto(i, n, tree, &with_cache, &cache).ok());
      reads_with += tree.reads();
      tree.reset_reads();
      ASSERT_TRUE(InclusionProofInto(i, n, tree, &without).ok());
      reads_without += tree.reads();
      ASSERT_EQ(with_cache, without) << i << " " << n;
    }
    for (uint64_t m = 0; m <= n; m += 7) {
      ASSERT_TRUE(ConsistencyProofInto(m, n, tree, &with_cache, &cache).ok());
      ASSERT_TRUE(ConsistencyProofInto(m, n, tree, &without).ok());
      ASSERT_EQ(with_cache, without) << m << " " << n;
    }
    if (!std::has_single_bit(n)) {
      EXPECT_LT(reads_with, reads_without) << n;
    }
  }
}

TEST(ProofTest, RfcSevenLeafExamples) {
  // RFC 6962 §2.1.3: audit paths and consistency proofs of the 7-leaf tree.
  MemoryTree tree(MakeLeafHashes(7));
  const auto& d = tree.leaves();
  const Hash a = d[0], b = d[1], c = d[2], dd = d[3], e = d[4], f = d[5], j = d[6];
  const Hash g = HashChildren(a, b), h = HashChildren(c, dd), i = HashChildren(e, f);
  const Hash k = HashChildren(g, h), l = HashChildren(i, j);
  EXPECT_EQ(*InclusionProof(0, 7, tree), (std::vector<Hash>{b, h, l}));
  EXPECT_EQ(*InclusionProof(3, 7, tree), (std::vector<Hash>{c, g, l}));
  EXPECT_EQ(*InclusionProof(4, 7, tree), (std::vector<Hash>{f, j, k}));
  EXPECT_EQ(*InclusionProof(6, 7, tree), (std::vector<Hash>{i, k}));
  EXPECT_EQ(*ConsistencyProof(3, 7, tree), (std::vector<Hash>{c, dd, g, l}));
  EXPECT_EQ(*ConsistencyProof(4, 7, tree), (std::vector<Hash>{l}));
  EXPECT_EQ(*ConsistencyProof(6, 7, tree), (std::vector<Hash>{i, j, k}));
}

TEST(ProofTest, GenerationRejectsImpossibleArguments) {
  MemoryTree tree(MakeLeafHashes(8));
  EXPECT_EQ(InclusionProof(8, 8, tree).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(0, 0, tree).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(5, 4, tree).status().code(), StatusCode::kInvalidArgument);
  // A node the reader cannot serve surfaces as the reader's error, not a wrong proof.
  EXPECT_EQ(InclusionProof(3, 9, tree).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ConsistencyProof(3, 9, tree).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RootAt(9, tree).status().code(), StatusCode::kNotFound);
}

// Pairs for the exhaustive tamper tests: every pair up to 17 leaves and a few larger shapes.
std::vector<std::pair<uint64_t, uint64_t>> TamperPairs(bool allow_equal_and_zero) {
  std::vector<std::pair<uint64_t, uint64_t>> pairs;
  for (uint64_t n = 1; n <= 17; ++n) {
    for (uint64_t m = allow_equal_and_zero ? 0 : 1; m < n + (allow_equal_and_zero ? 1 : 0); ++m)
      pairs.emplace_back(m, n);
  }
  for (auto p : {std::pair<uint64_t, uint64_t>{37, 70},
                 {69, 70},
                 {0, 64},
                 {63, 64},
                 {32, 65},
                 {1, 80},
                 {45, 79}}) {
    pairs.push_back(p);
  }
  return pairs;
}

TEST(ProofTest, InclusionVerifierRejectsAnyFlippedBit) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  for (auto [i, n] : TamperPairs(false)) {
    SCOPED_TRACE(::testing::Message() << "index " << i << " size " << n);
    tree.set_limit(n);
    const auto proof = *InclusionProof(i, n, tree);
    const Hash leaf = tree.leaves()[i];
    const Hash root = Mth(tree.leaves(), 0, n);
    ASSERT_TRUE(VerifyInclusion(i, n, leaf, proof, root).ok());
    for (int bit = 0; bit < 256; ++bit) {
      EXPECT_FALSE(VerifyInclusion(i, n, Flip(leaf, bit), proof, root).ok());
      EXPECT_FALSE(VerifyInclusion(i, n, leaf, proof, Flip(root, bit)).ok());
      for (size_t e = 0; e < proof.size(); ++e) {
        auto bad = proof;
        bad[e] = Flip(bad[e], bit);
        EXPECT_FALSE(VerifyInclusion(i, n, leaf, bad, root).ok()) << "element " << e;
      }
    }
    for (int bit = 0; bit < 64; ++bit) {
      const uint64_t j = i ^ (uint64_t{1} << bit);
      EXPECT_FALSE(VerifyInclusion(j, n, leaf, proof, root).ok()) << "index bit " << bit;
    }
    for (uint64_t j = 0; j < n; ++j) {
      if (j != i) {
        EXPECT_FALSE(VerifyInclusion(j, n, leaf, proof, root).ok()) << "index " << j;
      }
    }
    // Another size fails unless it shapes the path identically (the root binds the size).
    for (uint64_t n2 = i + 1; n2 <= kMaxSize; ++n2) {
      if (n2 == n) continue;
      const auto path2 = RefPath(tree.leaves(), i, 0, n2);
      if (path2.size() != proof.size()) {
        EXPECT_FALSE(VerifyInclusion(i, n2, leaf, proof, root).ok()) << "size " << n2;
      }
    }
    auto longer = proof;
    longer.push_back(root);
    EXPECT_FALSE(VerifyInclusion(i, n, leaf, longer, root).ok());
    auto longer_front = proof;
    longer_front.insert(longer_front.begin(), leaf);
    EXPECT_FALSE(VerifyInclusion(i, n, leaf, longer_front, root).ok());
    if (!proof.empty()) {
      auto shorter = proof;
      shorter.pop_back();
      EXPECT_FALSE(VerifyInclusion(i, n, leaf, shorter, root).ok());
      auto shorter_front = proof;
      shorter_front.erase(shorter_front.begin());
      EXPECT_FALSE(VerifyInclusion(i, n, leaf, shorter_front, root).ok());
    }
  }
  EXPECT_EQ(VerifyInclusion(3, 3, Hash{}, {}, Hash{}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(0, 0, Hash{}, {}, Hash{}).code(), StatusCode::kInvalidArgument);
}

TEST(ProofTest, ConsistencyVerifierRejectsAnyFlippedBit) {
  MemoryTree tree(MakeLeafHashes(kMaxSize));
  for (auto [m, n] : TamperPairs(true)) {
    SCOPED_TRACE(::testing::Message() << "sizes " << m << " -> " << n);
    tree.set_limit(n);
    const auto proof = *ConsistencyProof(m, n, tree);
    const Hash root1 = Mth(tree.leaves(), 0, m);
    const Hash root2 = Mth(tree.leaves(), 0, n);
    ASSERT_TRUE(VerifyConsistency(m, n, proof, root1, root2).ok());
    for (int bit = 0; bit < 256; ++bit) {
      EXPECT_FALSE(VerifyConsistency(m, n, proof, Flip(root1, bit), root2).ok());
      // The empty tree is a prefix of every tree, so from size 0 any root2 is consistent.
      if (m != 0) {
        EXPECT_FALSE(VerifyConsistency(m, n, proof, root1, Flip(root2, bit)).ok());
      }
      for (size_t e = 0; e < proof.size(); ++e) {
        auto bad = proof;
        bad[e] = Flip(bad[e], bit);
        EXPECT_FALSE(VerifyConsistency(m, n, bad, root1, root2).ok()) << "element " << e;
      }
    }
    auto longer = proof;
    longer.push_back(root2);
    EXPECT_FALSE(VerifyConsistency(m, n, longer, root1, root2).ok());
    auto longer_front = proof;
    longer_front.insert(longer_front.begin(), root1);
    EXPECT_FALSE(VerifyConsistency(m, n, longer_front, root1, root2).ok());
    if (!proof.empty()) {
      auto shorter = proof;
      shorter.pop_back();
      EXPECT_FALSE(VerifyConsistency(m, n, shorter, root1, root2).ok());
      auto shorter_front = proof;
      shorter_front.erase(shorter_front.begin());
      EXPECT_FALSE(VerifyConsistency(m, n, shorter_front, root1, root2).ok());
    }
    // The same proof and roots under other sizes.
    for (uint64_t m2 = 0; m2 <= n; ++m2) {
      if (m2 != m) {
        EXPECT_FALSE(VerifyConsistency(m2, n, proof, root1, root2).ok()) << m2;
      }
    }
    for (uint64_t n2 = m; n2 <= kMaxSize; ++n2) {
      if (n2 == n) continue;
      if (RefConsistency(tree.leaves(), m, n2).size() != proof.size()) {
        EXPECT_FALSE(VerifyConsistency(m, n2, proof, root1, root2).ok()) << n2;
      }
    }
  }
  EXPECT_EQ(VerifyConsistency(5, 4, {}, Hash{}, Hash{}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace custody::ledger
