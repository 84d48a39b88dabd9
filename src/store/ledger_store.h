// LedgerStore: durable storage for the ledger's leaves, hash tiles and signed checkpoints.
//
// The byte layout of what is stored is fixed (see docs/ARCHITECTURE.md, "Ledger storage"):
//   leaves      idx (0-based) -> JCS bytes, SHA-256 leaf hash, and index columns
//   tiles       (level, index) -> up to 256 concatenated 32-byte hashes (C2SP tlog-tiles rows);
//               the rightmost tile of each level is partial and rewritten as it grows
//   checkpoints size -> root and the signed note text
// A batch (leaves + changed tiles + one checkpoint) is committed atomically and durably.
// Implementations are thread-safe: SqliteLedgerStore (store/sqlite/), MemoryLedgerStore
// (store/memory/) and PgLedgerStore (store/postgres/, the one shared by several nodes), all checked
// by store/testing/ledger_store_conformance.h. The ledger (ledger/ledger.h) owns its store; it is
// opened through store/stores.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "crypto/sha256.h"

namespace custody::store {

// Hashes in a full tile row (C2SP tlog-tiles; ledger/tiles.h kTileWidth).
inline constexpr size_t kLedgerTileWidth = 256;

// Columns that later layers index (session, agent, ...). Empty strings are stored as NULL.
struct EventColumns {
  std::string event_id;
  std::string kind;
  std::string session;
  std::string agent;
  std::string time;
};

struct StoredLeaf {
  uint64_t index = 0;
  std::string data;  // JCS bytes, exactly as appended
  crypto::Sha256Digest leaf_hash{};
  EventColumns columns;
};

struct StoredTile {
  uint8_t level = 0;
  uint64_t index = 0;
  std::vector<crypto::Sha256Digest> hashes;  // 1..256 entries
};

struct StoredCheckpoint {
  uint64_t size = 0;
  crypto::Sha256Digest root{};
  std::string note;  // the C2SP signed note
};

// What one sequencer batch writes.
struct LedgerBatch {
  std::vector<StoredLeaf> leaves;  // contiguous, starting at the store's current size
  std::vector<StoredTile> tiles;   // rows to insert or replace
  StoredCheckpoint checkpoint;     // checkpoint.size == previous size + leaves.size()
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;

  // Commits `batch` in one transaction and returns only once it is durable. Its tiles are the
  // rows that changed, except partial rows of level 0: those are the leaves' own hashes, which
  // GetTile returns.
  virtual Status CommitBatch(const LedgerBatch& batch) = 0;

  // True when other processes append to this store at the same time (several `custody serve`
  // nodes on one PostgreSQL database). The ledger then sequences through CommitAtHead and catches
  // up with what the others appended before it builds each batch (ledger/ledger.h).
  virtual bool Shared() const { return false; }

  // Sequencing for a shared store, in one transaction: excludes every other writer, reads the
  // number of leaves (`head`), calls `prepare(head, batch)`, which must number the leaves from
  // `head` and fill in the tiles and checkpoint, and commits the batch. `prepare` may read this
  // store. When `prepare` fails nothing is written and its status is returned. The default,
  // for a store with one writer, is LeafCount, then prepare, then CommitBatch.
  using PrepareBatch = std::function<Status(uint64_t head, LedgerBatch& batch)>;
  virtual Status CommitAtHead(LedgerBatch& batch, const PrepareBatch& prepare) {
    ASSIGN_OR_RETURN(uint64_t head, LeafCount());
    RETURN_IF_ERROR(prepare(head, batch));
    return CommitBatch(batch);
  }

  // The leaf hashes of [from, to), in order (catching up with other writers). NotFound if one
  // is missing. The default scans the leaves.
  virtual Result<std::vector<crypto::Sha256Digest>> LeafHashes(uint64_t from, uint64_t to) {
    std::vector<crypto::Sha256Digest> out;
    if (to <= from) return out;
    out.reserve(to - from);
    RETURN_IF_ERROR(ScanLeaves(from, [&](const StoredLeaf& l) {
      if (l.index != from + out.size()) return false;
      out.push_back(l.leaf_hash);
      return from + out.size() < to;
    }));
    if (out.size() != to - from) {
      return NotFoundError("no ledger entry at index " + std::to_string(from + out.size()));
    }
    return out;
  }

  // Number of leaves; equals the size of the latest checkpoint in a consistent store.
  virtual Result<uint64_t> LeafCount() = 0;
  virtual Result<StoredLeaf> GetLeaf(uint64_t index) = 0;
  // Visits leaves in index order starting at `from`; stops early if `fn` returns false.
  virtual Status ScanLeaves(uint64_t from, const std::function<bool(const StoredLeaf&)>& fn) = 0;

  // Indexes (ascending) of the leaves whose index column `column` equals `value`, and whose kind
  // is `kind` unless that is empty (investigations: every event of a session, an event by id, the
  // sessions an agent started). This default scans every leaf; SqliteLedgerStore answers from
  // its indexes.
  enum class Column { kEventId, kSession, kAgent };
  virtual Result<std::vector<uint64_t>> FindLeaves(Column column, const std::string& value,
                                                   const std::string& kind) {
    std::vector<uint64_t> out;
    RETURN_IF_ERROR(ScanLeaves(0, [&](const StoredLeaf& l) {
      const std::string& v = column == Column::kEventId   ? l.columns.event_id
                             : column == Column::kSession ? l.columns.session
                                                          : l.columns.agent;
      if (!v.empty() && v == value && (kind.empty() || l.columns.kind == kind))
        out.push_back(l.index);
      return true;
    }));
    return out;
  }
  Result<std::vector<uint64_t>> FindLeaves(Column column, const std::string& value) {
    return FindLeaves(column, value, "");
  }

  // NotFound if the tile was never written (for level 0: if none of its leaves exists). A
  // partial tile of level 0 is the hashes of the leaves stored so far, from its first leaf on.
  virtual Result<StoredTile> GetTile(uint8_t level, uint64_t index) = 0;

  virtual Result<std::optional<StoredCheckpoint>> LatestCheckpoint() = 0;
  virtual Result<std::optional<StoredCheckpoint>> GetCheckpoint(uint64_t size) = 0;
  virtual Status ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) = 0;
};

}  // namespace custody::store
