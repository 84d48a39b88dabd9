#include "ledger/verifier.h"

#include <map>
#include <vector>

#include "common/encoding.h"
#include "common/jcs.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"
#include "ledger/tiles.h"

namespace custody::ledger {
namespace {

std::string HexOf(const Hash& h) { return HexEncode(h); }

// Checks each tile-row node the rebuilt tree completes against the stored tile rows.
class TileChecker {
 public:
  explicit TileChecker(store::LedgerStore& store) : store_(store) {}

  Status Check(uint8_t level, uint64_t index, const Hash& hash) {
    if (level % 8 != 0) return OkStatus();
    uint8_t L = level / 8;
    uint64_t tile = index >> 8;
    size_t slot = index & 0xff;
    auto& cur = rows_[L];
    if (!cur.loaded || cur.index != tile) {
      auto stored = store_.GetTile(L, tile);
      if (!stored.ok()) {
        return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(tile) + ": " +
                             stored.status().message());
      }
      cur.loaded = true;
      cur.index = tile;
      cur.hashes = std::move(stored->hashes);
    }
    if (slot >= cur.hashes.size()) {
      return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(tile) + " has " +
                           std::to_string(cur.hashes.size()) + " hashes; the leaves need " +
                           std::to_string(slot + 1));
    }
    if (cur.hashes[slot] != hash) {
      uint64_t first = index << level;
      if (L == 0) {
        return DataLossError("leaf " + std::to_string(index) +
                             ": its hash does not match the stored tile 0/" + std::to_string(tile) +
                             " (leaf changed, moved or tile edited)");
      }
      return DataLossError("tile " + std::to_string(L) + "/" + std::to_string(tile) + " entry " +
                           std::to_string(slot) + " does not match leaves " +
                           std::to_string(first) + ".." +
                           std::to_string(first + (uint64_t{1} << level) - 1));
    }
    return OkStatus();
  }

 private:
  struct Row {
    bool loaded = false;
    uint64_t index = 0;
    std::vector<Hash> hashes;
  };
  store::LedgerStore& store_;
  std::map<uint8_t, Row> rows_;
};

}  // namespace

Result<Hash> CheckStoredLeaf(const store::StoredLeaf& leaf, uint64_t expected) {
  if (leaf.index != expected) {
    return DataLossError("leaf " + std::to_string(expected) + " is missing (next stored leaf is " +
                         std::to_string(leaf.index) + ")");
  }
  Hash h = HashLeaf(leaf.data);
  if (h != leaf.leaf_hash) {
    return DataLossError("leaf " + std::to_string(leaf.index) +
                         ": stored bytes do not hash to the stored leaf hash");
  }
  auto canonical = CanonicalizeJson(leaf.data);
  if (!canonical.ok() || *canonical != leaf.data) {
    return DataLossError("leaf " + std::to_string(leaf.index) +
                         ": stored bytes are not RFC 8785 canonical JSON");
  }
  return h;
}

Result<LedgerVerifyReport> VerifyLedger(store::LedgerStore& store, const NoteVerifier& verifier,
                                        const std::string& origin) {
  std::vector<store::StoredCheckpoint> checkpoints;
  RETURN_IF_ERROR(store.ScanCheckpoints([&](const store::StoredCheckpoint& cp) {
    checkpoints.push_back(cp);
    return true;
  }));

  TileHashReader stored_tiles([&store](uint8_t level, uint64_t index) -> Result<std::vector<Hash>> {
    ASSIGN_OR_RETURN(store::StoredTile t, store.GetTile(level, index));
    return std::move(t.hashes);
  });
  const uint64_t signed_max = checkpoints.empty() ? 0 : checkpoints.back().size;
  TileChecker tiles(store);
  CompactRange range;
  Status problem;
  size_t next_cp = 0;
  const store::StoredCheckpoint* prev_cp = nullptr;
  uint64_t expected = 0;

  // Verifies the checkpoint(s) whose size equals the rebuilt tree's size.
  auto check_checkpoints = [&]() -> Status {
    while (next_cp < checkpoints.size() && checkpoints[next_cp].size == range.size()) {
      const store::StoredCheckpoint& cp = checkpoints[next_cp];
      std::string where = "checkpoint at size " + std::to_string(cp.size);
      auto parsed = OpenCheckpoint(verifier, cp.note, origin);
      if (!parsed.ok()) return DataLossError(where + ": " + parsed.status().message());
      if (parsed->size != cp.size || parsed->root != cp.root) {
        return DataLossError(where + ": the signed note does not match the stored size/root");
      }
      Hash root = range.Root();
      if (cp.root != root) {
        return DataLossError(where + ": signed root " + HexOf(cp.root) +
                             " does not match the root rebuilt from the leaves " + HexOf(root));
      }
      if (prev_cp != nullptr) {
        auto proof = ConsistencyProof(prev_cp->size, cp.size, stored_tiles);
        if (!proof.ok()) {
          return DataLossError(where +
                               ": cannot build a consistency proof from the stored tiles: " +
                               proof.status().message());
        }
        Status c = VerifyConsistency(prev_cp->size, cp.size, *proof, prev_cp->root, cp.root);
        if (!c.ok()) {
          return DataLossError(where + ": not consistent with the checkpoint at size " +
                               std::to_string(prev_cp->size) + ": " + c.message());
        }
      }
      prev_cp = &cp;
      ++next_cp;
    }
    if (next_cp < checkpoints.size() && checkpoints[next_cp].size < range.size()) {
      return DataLossError("checkpoint at size " + std::to_string(checkpoints[next_cp].size) +
                           " is out of order");
    }
    return OkStatus();
  };

  RETURN_IF_ERROR(check_checkpoints());  // a checkpoint of size 0 would be checked here
  Status scan = store.ScanLeaves(0, [&](const store::StoredLeaf& leaf) {
    if (leaf.index == expected && leaf.index >= signed_max) {
      problem = DataLossError("leaves from " + std::to_string(leaf.index) +
                              " on are not covered by any checkpoint");
      return false;
    }
    Result<Hash> h = CheckStoredLeaf(leaf, expected);
    if (!h.ok()) {
      problem = h.status();
      return false;
    }
    Status visit_status;
    range.Append(*h, [&](uint8_t level, uint64_t index, const Hash& node) {
      if (visit_status.ok()) visit_status = tiles.Check(level, index, node);
    });
    if (!visit_status.ok()) {
      problem = visit_status;
      return false;
    }
    ++expected;
    problem = check_checkpoints();
    return problem.ok();
  });
  if (!scan.ok()) return DataLossError("cannot read the ledger: " + scan.message());
  RETURN_IF_ERROR(problem);

  if (next_cp < checkpoints.size()) {
    return DataLossError("checkpoint at size " + std::to_string(checkpoints[next_cp].size) +
                         " covers leaves that are missing (the ledger has " +
                         std::to_string(expected) + ")");
  }
  uint64_t signed_size = prev_cp ? prev_cp->size : 0;
  if (expected != signed_size) {
    return DataLossError("leaves " + std::to_string(signed_size) + ".." +
                         std::to_string(expected - 1) + " are not covered by any checkpoint");
  }
  LedgerVerifyReport report;
  report.leaves = expected;
  report.checkpoints = checkpoints.size();
  report.root = range.Root();
  return report;
}

}  // namespace custody::ledger
