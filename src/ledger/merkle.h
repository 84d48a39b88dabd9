// RFC 6962 / RFC 9162 §2.1 Merkle tree hashing over an append-only sequence of leaves.
//
//   leaf hash  = SHA-256(0x00 || leaf bytes)
//   node hash  = SHA-256(0x01 || left || right)
//   empty tree = SHA-256("")
//
// A tree of n leaves splits at k, the largest power of two smaller than n (RFC 9162 §2.1.1), so
// every tree is made of the complete (perfect) subtrees given by the binary decomposition of n.
// We name a complete subtree by (level, index): it spans leaves [index << level,
// (index + 1) << level). All free functions are thread-safe: each thread hashes with its own
// reused Sha256Hasher.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/sha256.h"

namespace custody::ledger {

using Hash = crypto::Sha256Digest;

// SHA-256(0x00 || data).
Hash HashLeaf(std::span<const uint8_t> data);
Hash HashLeaf(std::string_view data);
// SHA-256(0x01 || l || r).
Hash HashChildren(const Hash& l, const Hash& r);
// SHA-256 of the empty string: the root of the empty tree.
Hash EmptyRoot();

// MTH(D[n]) computed straight from the definition over the leaf hashes. O(n) hashes; meant for
// tests, offline verification and as the reference the fast paths are checked against.
Hash RootFromLeafHashes(std::span<const Hash> leaves);

// The compact range ("right edge") of an append-only tree: the roots of the complete subtrees of
// the binary decomposition of size(), largest (leftmost) first. O(log n) state; appending costs
// amortised O(1) hashes and the root O(log n). Not thread-safe; the owner serialises appends.
class CompactRange {
 public:
  // Called for every subtree that an Append completes, in increasing level order: first the leaf
  // itself (level 0, index = its position), then each parent it completes. Storage uses it to
  // fill tiles.
  using NodeVisitor = std::function<void(uint8_t level, uint64_t index, const Hash& hash)>;

  CompactRange() = default;

  // Restores a range from storage: `hashes` must be the roots of the decomposition of `size`,
  // largest first (one per set bit of size). InvalidArgument if the count does not match.
  static Result<CompactRange> FromHashes(uint64_t size, std::vector<Hash> hashes);

  void Append(const Hash& leaf_hash, const NodeVisitor& visit = nullptr);

  // MTH of the size() leaves appended so far; EmptyRoot() when empty.
  Hash Root() const;
  uint64_t size() const { return size_; }
  const std::vector<Hash>& hashes() const { return hashes_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> hashes_;  // one per set bit of size_, highest bit first
};

}  // namespace custody::ledger
