#include "ledger/merkle.h"

#include <bit>
#include <cstring>

namespace custody::ledger {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// One hasher per thread: EVP context setup is the dominant cost of hashing 33 or 65 bytes.
crypto::Sha256Hasher& ThreadHasher() {
  thread_local crypto::Sha256Hasher hasher;
  return hasher;
}

// Largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

}  // namespace

Hash HashLeaf(std::span<const uint8_t> data) {
  return ThreadHasher().Update(kLeafPrefix).Update(data).Finish();
}

Hash HashLeaf(std::string_view data) {
  return ThreadHasher().Update(kLeafPrefix).Update(data).Finish();
}

Hash HashChildren(const Hash& l, const Hash& r) {
  // One Update call: this is the innermost operation of every proof and append.
  uint8_t buf[1 + 2 * sizeof(Hash)];
  buf[0] = kNodePrefix;
  std::memcpy(buf + 1, l.data(), l.size());
  std::memcpy(buf + 1 + l.size(), r.data(), r.size());
  return ThreadHasher().Update(std::span<const uint8_t>(buf, sizeof buf)).Finish();
}

Hash EmptyRoot() {
  static const Hash kEmpty = crypto::Sha256(std::string_view());
  return kEmpty;
}

Hash RootFromLeafHashes(std::span<const Hash> leaves) {
  if (leaves.empty()) return EmptyRoot();
  if (leaves.size() == 1) return leaves[0];
  const uint64_t k = SplitPoint(leaves.size());
  return HashChildren(RootFromLeafHashes(leaves.subspan(0, k)),
                      RootFromLeafHashes(leaves.subspan(k)));
}

Result<CompactRange> CompactRange::FromHashes(uint64_t size, std::vector<Hash> hashes) {
  if (hashes.size() != static_cast<size_t>(std::popcount(size))) {
    return InvalidArgumentError("compact range of size " + std::to_string(size) + " needs " +
                                std::to_string(std::popcount(size)) + " hashes, got " +
                                std::to_string(hashes.size()));
  }
  CompactRange range;
  range.size_ = size;
  range.hashes_ = std::move(hashes);
  return range;
}

void CompactRange::Append(const Hash& leaf_hash, const NodeVisitor& visit) {
  uint64_t index = size_;
  uint8_t level = 0;
  Hash hash = leaf_hash;
  if (visit) visit(level, index, hash);
  // Each trailing one bit of the old size is a complete sibling on the left to merge with.
  while (index & 1) {
    hash = HashChildren(hashes_.back(), hash);
    hashes_.pop_back();
    index >>= 1;
    ++level;
    if (visit) visit(level, index, hash);
  }
  hashes_.push_back(hash);
  ++size_;
}

Hash CompactRange::Root() const {
  if (hashes_.empty()) return EmptyRoot();
  Hash root = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) root = HashChildren(hashes_[i], root);
  return root;
}

}  // namespace custody::ledger
