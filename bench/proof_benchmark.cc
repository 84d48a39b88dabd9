// Cost of the ledger's pure hot-path operations: hashing, appending to the compact range, proof
// generation (from an in-memory node store and through the tile reader), proof verification,
// checkpoint signing and receipt verification. Storage is not involved.
//
// Not wired into CMake on purpose. To build it against a release build of the ledger library:
//   cmake --preset release -B build/rel
//   cmake --build build/rel --target custody_ledger
//   c++ -std=c++20 -O2 -DNDEBUG -Isrc bench/proof_benchmark.cc -o build/rel/proof_benchmark
//     build/rel/src/ledger/libcustody_ledger.a build/rel/src/crypto/libcustody_crypto.a
//     build/rel/src/common/libcustody_common.a -lbenchmark -lcrypto -lpthread
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "ledger/tiles.h"

namespace custody::ledger {
namespace {

constexpr uint64_t kTreeSize = (1 << 20) + 12345;  // ~1M leaves, deliberately not a power of 2

// Every complete subtree of a tree, kept in memory: what a storage layer's node cache would hold.
class NodeStore : public HashReader {
 public:
  explicit NodeStore(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      range_.Append(HashLeaf("event " + std::to_string(i)),
                    [&](uint8_t level, uint64_t index, const Hash& h) {
                      if (levels_.size() <= level) levels_.resize(level + 1);
                      levels_[level].push_back(h);
                      (void)index;
                    });
    }
  }
  Result<Hash> ReadNode(uint8_t level, uint64_t index) override {
    if (level >= levels_.size() || index >= levels_[level].size()) {
      return NotFoundError("no such node");
    }
    return levels_[level][index];
  }
  // Tile rows as storage would return them.
  Result<std::vector<Hash>> Tile(uint8_t tile_level, uint64_t tile_index) const {
    const uint16_t width = TileWidthAt(tile_level, tile_index, range_.size());
    if (width == 0) return NotFoundError("no such tile");
    const auto& row = levels_[tile_level * kTileHeight];
    return std::vector<Hash>(row.begin() + static_cast<std::ptrdiff_t>(tile_index * 256),
                             row.begin() + static_cast<std::ptrdiff_t>(tile_index * 256 + width));
  }
  Hash Root() const { return range_.Root(); }

 private:
  CompactRange range_;
  std::vector<std::vector<Hash>> levels_;
};

NodeStore& Store() {
  static NodeStore* store = new NodeStore(kTreeSize);
  return *store;
}

void BM_HashLeaf512(benchmark::State& state) {
  const std::string event(512, 'e');
  for (auto _ : state) benchmark::DoNotOptimize(HashLeaf(event));
  state.SetBytesProcessed(state.iterations() * 512);
}
BENCHMARK(BM_HashLeaf512);

void BM_HashChildren(benchmark::State& state) {
  Hash a = HashLeaf(std::string_view("a")), b = HashLeaf(std::string_view("b"));
  for (auto _ : state) {
    a = HashChildren(a, b);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_HashChildren);

void BM_CompactRangeAppend(benchmark::State& state) {
  CompactRange range;
  const Hash leaf = HashLeaf(std::string_view("leaf"));
  uint64_t tile_nodes = 0;
  for (auto _ : state) {
    range.Append(leaf, [&](uint8_t level, uint64_t, const Hash&) {
      tile_nodes += (level % kTileHeight == 0);
    });
  }
  benchmark::DoNotOptimize(tile_nodes);
}
BENCHMARK(BM_CompactRangeAppend);

void BM_CompactRangeRoot(benchmark::State& state) {
  CompactRange range;
  for (uint64_t i = 0; i < kTreeSize; ++i) range.Append(Hash{});
  for (auto _ : state) benchmark::DoNotOptimize(range.Root());
}
BENCHMARK(BM_CompactRangeRoot);

// Proof for a recent leaf (what the sequencer does per event) or a random one.
void BM_InclusionProofNodeStore(benchmark::State& state) {
  NodeStore& store = Store();
  const bool recent = state.range(0) == 1;
  std::mt19937_64 rng(1);
  std::vector<Hash> proof;
  for (auto _ : state) {
    const uint64_t index = recent ? kTreeSize - 1 - rng() % 1000 : rng() % kTreeSize;
    if (!InclusionProofInto(index, kTreeSize, store, &proof).ok()) state.SkipWithError("proof");
    benchmark::DoNotOptimize(proof.data());
  }
}
BENCHMARK(BM_InclusionProofNodeStore)->Arg(1)->Arg(0)->ArgNames({"recent"});

// A sequencer batch: proofs for the last 1000 leaves against one checkpoint, sharing the
// right-edge subtrees through a RightEdgeCache.
void BM_InclusionProofBatchWithRightEdgeCache(benchmark::State& state) {
  NodeStore& store = Store();
  RightEdgeCache cache;
  std::vector<Hash> proof;
  uint64_t k = 0;
  for (auto _ : state) {
    const uint64_t index = kTreeSize - 1 - (k++ % 1000);
    if (!InclusionProofInto(index, kTreeSize, store, &proof, &cache).ok()) {
      state.SkipWithError("proof");
    }
    benchmark::DoNotOptimize(proof.data());
  }
}
BENCHMARK(BM_InclusionProofBatchWithRightEdgeCache);

void BM_InclusionProofTiles(benchmark::State& state) {
  NodeStore& store = Store();
  TileHashReader reader([&](uint8_t l, uint64_t i) { return store.Tile(l, i); });
  const bool recent = state.range(0) == 1;
  std::mt19937_64 rng(1);
  std::vector<Hash> proof;
  for (auto _ : state) {
    const uint64_t index = recent ? kTreeSize - 1 - rng() % 1000 : rng() % kTreeSize;
    if (!InclusionProofInto(index, kTreeSize, reader, &proof).ok()) state.SkipWithError("proof");
    benchmark::DoNotOptimize(proof.data());
  }
  state.counters["tile_fetches"] = static_cast<double>(reader.fetches());
}
BENCHMARK(BM_InclusionProofTiles)->Arg(1)->Arg(0)->ArgNames({"recent"});

void BM_ConsistencyProofTiles(benchmark::State& state) {
  NodeStore& store = Store();
  TileHashReader reader([&](uint8_t l, uint64_t i) { return store.Tile(l, i); });
  std::mt19937_64 rng(2);
  std::vector<Hash> proof;
  for (auto _ : state) {
    const uint64_t m = 1 + rng() % kTreeSize;
    if (!ConsistencyProofInto(m, kTreeSize, reader, &proof).ok()) state.SkipWithError("proof");
    benchmark::DoNotOptimize(proof.data());
  }
}
BENCHMARK(BM_ConsistencyProofTiles);

void BM_VerifyInclusion(benchmark::State& state) {
  NodeStore& store = Store();
  const uint64_t index = kTreeSize - 7;
  const Hash leaf = HashLeaf("event " + std::to_string(index));
  const auto proof = *InclusionProof(index, kTreeSize, store);
  const Hash root = store.Root();
  for (auto _ : state) {
    benchmark::DoNotOptimize(VerifyInclusion(index, kTreeSize, leaf, proof, root).ok());
  }
}
BENCHMARK(BM_VerifyInclusion);

struct Signing {
  Signing() {
    key = std::make_shared<const crypto::Ed25519PrivateKey>(
        std::move(crypto::Ed25519PrivateKey::Generate()).value());
    signer = std::make_unique<NoteSigner>(*NoteSigner::Create("bench.example/ledger", key));
    verifier =
        std::make_unique<NoteVerifier>(*NoteVerifier::FromVerifierKey(signer->VerifierKey()));
  }
  std::shared_ptr<const crypto::Ed25519PrivateKey> key;
  std::unique_ptr<NoteSigner> signer;
  std::unique_ptr<NoteVerifier> verifier;
};

void BM_SignCheckpoint(benchmark::State& state) {
  Signing s;
  const Checkpoint cp{"bench.example/ledger", kTreeSize, Store().Root(), {}};
  for (auto _ : state) benchmark::DoNotOptimize(SignCheckpoint(*s.signer, cp));
}
BENCHMARK(BM_SignCheckpoint);

void BM_FormatReceipt(benchmark::State& state) {
  Signing s;
  NodeStore& store = Store();
  const Checkpoint cp{"bench.example/ledger", kTreeSize, store.Root(), {}};
  Receipt r{kTreeSize - 3, *InclusionProof(kTreeSize - 3, kTreeSize, store),
            *SignCheckpoint(*s.signer, cp), ""};
  for (auto _ : state) benchmark::DoNotOptimize(FormatReceipt(r));
}
BENCHMARK(BM_FormatReceipt);

void BM_VerifyReceipt(benchmark::State& state) {
  Signing s;
  NodeStore& store = Store();
  const uint64_t index = kTreeSize - 3;
  const std::string event = "event " + std::to_string(index);
  const Checkpoint cp{"bench.example/ledger", kTreeSize, store.Root(), {}};
  const std::string receipt = FormatReceipt(
      {index, *InclusionProof(index, kTreeSize, store), *SignCheckpoint(*s.signer, cp), ""});
  for (auto _ : state) {
    if (!VerifyReceipt(*s.verifier, receipt,
                       {reinterpret_cast<const uint8_t*>(event.data()), event.size()})
             .ok()) {
      state.SkipWithError("receipt did not verify");
    }
  }
}
BENCHMARK(BM_VerifyReceipt);

}  // namespace
}  // namespace custody::ledger

BENCHMARK_MAIN();
