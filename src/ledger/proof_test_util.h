// Test helpers shared by the ledger's proof and tile tests: an in-memory tree that serves complete
// subtrees, and the recursive RFC 6962 §2.1.1/§2.1.2 definitions used as the reference.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "ledger/merkle.h"
#include "ledger/proof.h"

namespace custody::ledger::testing {

inline std::vector<Hash> MakeLeafHashes(uint64_t n) {
  std::vector<Hash> leaves;
  leaves.reserve(n);
  for (uint64_t i = 0; i < n; ++i) leaves.push_back(HashLeaf("event " + std::to_string(i)));
  return leaves;
}

inline Hash Mth(std::span<const Hash> leaves, uint64_t begin, uint64_t end) {
  return RootFromLeafHashes(leaves.subspan(begin, end - begin));
}

// Serves every complete subtree of the first `limit` leaves, built with CompactRange. Reading a
// node that is not complete within `limit` fails, so a proof that peeks past its tree size fails.
class MemoryTree : public HashReader {
 public:
  explicit MemoryTree(std::vector<Hash> leaves) : leaves_(std::move(leaves)) {
    CompactRange range;
    for (const Hash& leaf : leaves_) {
      range.Append(leaf, [&](uint8_t level, uint64_t index, const Hash& h) {
        if (levels_.size() <= level) levels_.resize(level + 1);
        EXPECT_EQ(levels_[level].size(), index);
        levels_[level].push_back(h);
      });
    }
    limit_ = leaves_.size();
  }

  Result<Hash> ReadNode(uint8_t level, uint64_t index) override {
    ++reads_;
    if (level >= 64 || level >= levels_.size() || index >= levels_[level].size() ||
        ((index + 1) << level) > limit_) {
      return NotFoundError("no complete node (" + std::to_string(level) + ", " +
                           std::to_string(index) + ") in tree size " + std::to_string(limit_));
    }
    return levels_[level][index];
  }

  void set_limit(uint64_t limit) { limit_ = limit; }
  const std::vector<Hash>& leaves() const { return leaves_; }
  int reads() const { return reads_; }
  void reset_reads() { reads_ = 0; }

 private:
  std::vector<Hash> leaves_;
  std::vector<std::vector<Hash>> levels_;
  uint64_t limit_ = 0;
  int reads_ = 0;
};

// RFC 6962 §2.1.1 PATH(m, D[begin:end]).
inline std::vector<Hash> RefPath(std::span<const Hash> d, uint64_t m, uint64_t begin,
                                 uint64_t end) {
  const uint64_t n = end - begin;
  if (n <= 1) return {};
  const uint64_t k = std::bit_floor(n - 1);
  std::vector<Hash> path;
  if (m < k) {
    path = RefPath(d, m, begin, begin + k);
    path.push_back(Mth(d, begin + k, end));
  } else {
    path = RefPath(d, m - k, begin + k, end);
    path.push_back(Mth(d, begin, begin + k));
  }
  return path;
}

// RFC 6962 §2.1.2 SUBPROOF(m, D[begin:end], b).
inline std::vector<Hash> RefSubproof(std::span<const Hash> d, uint64_t m, uint64_t begin,
                                     uint64_t end, bool b) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (b) return {};
    return {Mth(d, begin, end)};
  }
  const uint64_t k = std::bit_floor(n - 1);
  std::vector<Hash> proof;
  if (m <= k) {
    proof = RefSubproof(d, m, begin, begin + k, b);
    proof.push_back(Mth(d, begin + k, end));
  } else {
    proof = RefSubproof(d, m - k, begin + k, end, false);
    proof.push_back(Mth(d, begin, begin + k));
  }
  return proof;
}

inline std::vector<Hash> RefConsistency(std::span<const Hash> d, uint64_t m, uint64_t n) {
  if (m == 0 || m == n) return {};
  return RefSubproof(d, m, 0, n, true);
}

}  // namespace custody::ledger::testing
