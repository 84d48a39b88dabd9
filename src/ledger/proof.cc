#include "ledger/proof.h"

#include <bit>
#include <string>

namespace custody::ledger {
namespace {

std::string Str(uint64_t v) { return std::to_string(v); }

// Hash of the subtree spanning leaves [begin, end), where `begin` is aligned to a power of two
// larger than end - begin (true of the whole tree and of every right-edge subtree). It folds the
// complete subtrees of the binary decomposition of end - begin from the right, which is exactly
// how MTH splits at the largest power of two.
Result<Hash> RangeHash(uint64_t begin, uint64_t end, HashReader& r) {
  uint64_t width = end - begin;
  // Collect (level, index) of the decomposition, largest first; at most 64 of them.
  uint8_t levels[64];
  uint64_t indexes[64];
  int count = 0;
  uint64_t pos = begin;
  while (width != 0) {
    const uint8_t level = static_cast<uint8_t>(std::bit_width(width) - 1);
    levels[count] = level;
    indexes[count] = pos >> level;
    ++count;
    pos += uint64_t{1} << level;
    width -= uint64_t{1} << level;
  }
  ASSIGN_OR_RETURN(Hash hash, r.ReadNode(levels[count - 1], indexes[count - 1]));
  for (int i = count - 1; i-- > 0;) {
    ASSIGN_OR_RETURN(Hash left, r.ReadNode(levels[i], indexes[i]));
    hash = HashChildren(left, hash);
  }
  return hash;
}

}  // namespace

// Grants proof.cc access to RightEdgeCache's state without exposing it in the header API.
class RightEdgeAccess {
 public:
  static const Hash* Find(RightEdgeCache* c, uint64_t size, uint8_t level) {
    if (c == nullptr) return nullptr;
    if (c->size_ != size) {
      c->size_ = size;
      c->valid_ = 0;
      return nullptr;
    }
    return ((c->valid_ >> level) & 1) != 0 ? &c->hashes_[level] : nullptr;
  }
  static void Put(RightEdgeCache* c, uint8_t level, const Hash& h) {
    if (c == nullptr) return;
    c->hashes_[level] = h;
    c->valid_ |= uint64_t{1} << level;
  }
};

namespace {

// Appends to `out` the siblings on the path from the complete node (level, index) up to the root
// of the tree of `size` leaves. A sibling to the right may be an incomplete right-edge subtree;
// a missing right sibling (beyond the tree) means the node is carried up unchanged.
Status AppendPath(uint8_t level, uint64_t index, uint64_t size, HashReader& r,
                  std::vector<Hash>* out, RightEdgeCache* cache) {
  const uint64_t last = size - 1;
  for (uint8_t l = level; l < 64 && (last >> l) != 0; ++l) {
    const uint64_t node = index >> (l - level);
    const uint64_t sibling = node ^ 1;
    if (sibling > (last >> l)) continue;  // starts beyond the tree
    const uint64_t begin = sibling << l;
    if (size - begin >= (uint64_t{1} << l)) {
      ASSIGN_OR_RETURN(Hash h, r.ReadNode(l, sibling));
      out->push_back(h);
    } else if (const Hash* cached = RightEdgeAccess::Find(cache, size, l)) {
      out->push_back(*cached);
    } else {
      ASSIGN_OR_RETURN(Hash h, RangeHash(begin, size, r));
      RightEdgeAccess::Put(cache, l, h);
      out->push_back(h);
    }
  }
  return OkStatus();
}

Status ProofFailure(std::string what) { return UnauthenticatedError(std::move(what)); }

}  // namespace

Result<Hash> RootAt(uint64_t size, HashReader& r) {
  if (size == 0) return EmptyRoot();
  return RangeHash(0, size, r);
}

Result<CompactRange> CompactRangeAt(uint64_t size, HashReader& r) {
  std::vector<Hash> hashes;
  hashes.reserve(std::popcount(size));
  uint64_t pos = 0;
  for (int level = 63; level >= 0; --level) {
    if (((size >> level) & 1) == 0) continue;
    ASSIGN_OR_RETURN(Hash h, r.ReadNode(static_cast<uint8_t>(level), pos >> level));
    hashes.push_back(h);
    pos += uint64_t{1} << level;
  }
  return CompactRange::FromHashes(size, std::move(hashes));
}

Status InclusionProofInto(uint64_t index, uint64_t size, HashReader& r, std::vector<Hash>* out,
                          RightEdgeCache* cache) {
  out->clear();
  if (index >= size) {
    return InvalidArgumentError("inclusion proof: index " + Str(index) +
                                " is not below tree size " + Str(size));
  }
  out->reserve(std::bit_width(size - 1));
  return AppendPath(0, index, size, r, out, cache);
}

Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, HashReader& r) {
  std::vector<Hash> proof;
  RETURN_IF_ERROR(InclusionProofInto(index, size, r, &proof));
  return proof;
}

Status ConsistencyProofInto(uint64_t size1, uint64_t size2, HashReader& r, std::vector<Hash>* out,
                            RightEdgeCache* cache) {
  out->clear();
  if (size1 > size2) {
    return InvalidArgumentError("consistency proof: size " + Str(size1) + " is larger than " +
                                Str(size2));
  }
  if (size1 == 0 || size1 == size2) return OkStatus();
  out->reserve(std::bit_width(size2 - 1) + 1);
  // RFC 9162 §2.1.4.1 SUBPROOF reduces to: the last complete subtree of the decomposition of
  // size1 (left out when size1 is a power of two, since the verifier knows it as root1), then
  // that subtree's audit path in the tree of size2.
  const uint8_t level = static_cast<uint8_t>(std::countr_zero(size1));
  const uint64_t index = (size1 - 1) >> level;
  if (!std::has_single_bit(size1)) {
    ASSIGN_OR_RETURN(Hash h, r.ReadNode(level, index));
    out->push_back(h);
  }
  return AppendPath(level, index, size2, r, out, cache);
}

Result<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2, HashReader& r) {
  std::vector<Hash> proof;
  RETURN_IF_ERROR(ConsistencyProofInto(size1, size2, r, &proof));
  return proof;
}

Result<Hash> RootFromInclusionProof(uint64_t index, uint64_t size, const Hash& leaf_hash,
                                    std::span<const Hash> proof) {
  // 1. leaf_index >= tree_size fails.
  if (index >= size) {
    return InvalidArgumentError("inclusion proof: index " + Str(index) +
                                " is not below tree size " + Str(size));
  }
  // 2. fn = leaf_index, sn = tree_size - 1.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  // 3. r = hash.
  Hash r = leaf_hash;
  // 4. For each p in inclusion_path:
  for (const Hash& p : proof) {
    // a. sn == 0: too many proof elements.
    if (sn == 0) return ProofFailure("inclusion proof has too many hashes");
    // b. LSB(fn) set, or fn == sn:
    if ((fn & 1) != 0 || fn == sn) {
      r = HashChildren(p, r);
      // Carry the node up past levels where it has no right sibling.
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = HashChildren(r, p);
    }
    // c. Shift once.
    fn >>= 1;
    sn >>= 1;
  }
  // 5. sn must be 0 (no hashes missing); the root comparison is the caller's.
  if (sn != 0) return ProofFailure("inclusion proof has too few hashes");
  return r;
}

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       std::span<const Hash> proof, const Hash& root) {
  ASSIGN_OR_RETURN(Hash r, RootFromInclusionProof(index, size, leaf_hash, proof));
  if (r != root) {
    return ProofFailure("inclusion proof for index " + Str(index) + " in tree size " + Str(size) +
                        " does not lead to the expected root");
  }
  return OkStatus();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                         const Hash& root1, const Hash& root2) {
  if (size1 > size2) {
    return InvalidArgumentError("consistency proof: size " + Str(size1) + " is larger than " +
                                Str(size2));
  }
  if (size1 == size2) {
    if (!proof.empty()) return ProofFailure("consistency proof between equal sizes must be empty");
    if (root1 != root2) return ProofFailure("trees of equal size have different roots");
    return OkStatus();
  }
  if (size1 == 0) {
    if (!proof.empty()) return ProofFailure("consistency proof from the empty tree must be empty");
    if (root1 != EmptyRoot()) return ProofFailure("root of the empty tree is not SHA-256(\"\")");
    return OkStatus();
  }
  // RFC 9162 §2.1.4.2, with 0 < first < second.
  // 1. An empty consistency_path fails.
  if (proof.empty()) return ProofFailure("consistency proof is empty");
  // 2. If first is an exact power of 2, prepend first_hash. We read it from `root1` instead of
  //    copying the path.
  const bool prepend = std::has_single_bit(size1);
  auto element = [&](size_t i) -> const Hash& {
    if (prepend) return i == 0 ? root1 : proof[i - 1];
    return proof[i];
  };
  const size_t path_size = proof.size() + (prepend ? 1 : 0);
  // 3. fn = first - 1, sn = second - 1.
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  // 4. If LSB(fn) is set, right-shift fn and sn until it is not.
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  // 5. fr = sr = first value of the path.
  Hash fr = element(0);
  Hash sr = element(0);
  // 6. For each subsequent value c:
  for (size_t i = 1; i < path_size; ++i) {
    const Hash& c = element(i);
    // a. sn == 0: too many proof elements.
    if (sn == 0) return ProofFailure("consistency proof has too many hashes");
    // b. LSB(fn) set, or fn == sn:
    if ((fn & 1) != 0 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = HashChildren(sr, c);
    }
    // c. Shift once.
    fn >>= 1;
    sn >>= 1;
  }
  // 7. fr == first_hash, sr == second_hash, sn == 0.
  if (sn != 0) return ProofFailure("consistency proof has too few hashes");
  if (fr != root1) {
    return ProofFailure("consistency proof does not lead to the root of size " + Str(size1));
  }
  if (sr != root2) {
    return ProofFailure("consistency proof does not lead to the root of size " + Str(size2));
  }
  return OkStatus();
}

}  // namespace custody::ledger
