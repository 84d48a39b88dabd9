// Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4, identical in result to RFC 6962
// §2.1.1 and §2.1.2) and their verifiers.
//
// Generation reads complete subtrees through a HashReader, so it never recomputes the tree: a
// proof costs O(log n) reads and at most O(log n) hashes (to assemble the one incomplete
// right-edge sibling a proof may need from the complete subtrees of its binary decomposition).
// The verifiers are pure and follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "ledger/merkle.h"

namespace custody::ledger {

// Source of hashes of complete subtrees: ReadNode(level, index) returns
// MTH(leaves [index << level, (index + 1) << level)). Implementations say whether they are
// thread-safe; the proof functions call ReadNode only for subtrees complete in the tree asked for.
class HashReader {
 public:
  virtual ~HashReader() = default;
  virtual Result<Hash> ReadNode(uint8_t level, uint64_t index) = 0;
};

// Memoises the incomplete right-edge subtrees of one tree size (at most one per level), so a batch
// of proofs against the same checkpoint assembles each of them once instead of once per proof.
// Owned by the caller; not thread-safe. It resets itself when used with another tree size; call
// Clear() if the HashReader's contents for a size could change (they never do in a log).
class RightEdgeCache {
 public:
  void Clear() { valid_ = 0; }

 private:
  friend class RightEdgeAccess;
  uint64_t size_ = 0;
  uint64_t valid_ = 0;  // bit l: hashes_[l] holds the right-edge subtree at level l for size_
  std::array<Hash, 64> hashes_;
};

// MTH of the first `size` leaves, from the complete subtrees of the decomposition of `size`.
Result<Hash> RootAt(uint64_t size, HashReader& r);

// The compact range of the first `size` leaves, read from complete subtrees: how a ledger resumes
// appending after a restart without rehashing its leaves.
Result<CompactRange> CompactRangeAt(uint64_t size, HashReader& r);

// The audit path of leaf `index` in the tree of `size` leaves, leaf sibling first.
// InvalidArgument unless index < size.
Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, HashReader& r);
// Same, into `*out` (cleared first), so a hot loop can reuse one buffer.
// With `cache`, proofs for many leaves at one size share the right-edge work.
Status InclusionProofInto(uint64_t index, uint64_t size, HashReader& r, std::vector<Hash>* out,
                          RightEdgeCache* cache = nullptr);

// The consistency proof between the trees of size1 and size2 leaves. Empty when size1 is 0 or
// size1 == size2. InvalidArgument if size1 > size2.
Result<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2, HashReader& r);
Status ConsistencyProofInto(uint64_t size1, uint64_t size2, HashReader& r, std::vector<Hash>* out,
                            RightEdgeCache* cache = nullptr);

// RFC 9162 §2.1.3.2. OK iff `proof` proves that `leaf_hash` is leaf `index` of the tree of `size`
// leaves whose root is `root`. Failures are Unauthenticated (the proof does not verify) or
// InvalidArgument (index >= size).
Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       std::span<const Hash> proof, const Hash& root);

// RFC 9162 §2.1.4.2, extended to the trivial cases the RFC leaves to the caller: size1 == size2
// needs an empty proof and equal roots; size1 == 0 needs an empty proof and root1 == EmptyRoot().
Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                         const Hash& root1, const Hash& root2);

// The root a valid inclusion proof leads to (the verifier's running hash r), for callers that
// need the root rather than a yes/no answer. Same preconditions as VerifyInclusion.
Result<Hash> RootFromInclusionProof(uint64_t index, uint64_t size, const Hash& leaf_hash,
                                    std::span<const Hash> proof);

}  // namespace custody::ledger
