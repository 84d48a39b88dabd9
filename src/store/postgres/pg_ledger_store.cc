#include "store/postgres/pg_ledger_store.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "store/postgres/pg_schema.h"

namespace custody::store {
namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE ledger_meta(
  key   TEXT PRIMARY KEY,
  value BYTEA NOT NULL);
CREATE TABLE ledger_leaves(
  idx       BIGINT PRIMARY KEY,
  leaf_hash BYTEA NOT NULL,
  data      BYTEA NOT NULL,
  event_id  TEXT,
  kind      TEXT,
  session   TEXT,
  agent     TEXT,
  time      TEXT);
CREATE INDEX ledger_leaves_event_id ON ledger_leaves(event_id) WHERE event_id IS NOT NULL;
CREATE INDEX ledger_leaves_session ON ledger_leaves(session, idx) WHERE session IS NOT NULL;
CREATE INDEX ledger_leaves_agent ON ledger_leaves(agent, idx) WHERE agent IS NOT NULL;
CREATE TABLE ledger_tiles(
  level  SMALLINT NOT NULL,
  idx    BIGINT NOT NULL,
  hashes BYTEA NOT NULL,
  PRIMARY KEY(level, idx));
CREATE TABLE ledger_checkpoints(
  size BIGINT PRIMARY KEY,
  root BYTEA NOT NULL,
  note TEXT NOT NULL);
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

constexpr const char* kLeafColumns = "idx, leaf_hash, data, event_id, kind, session, agent, time";

// Index columns: an empty string is stored as NULL.
PgParam NullIfEmpty(const std::string& v) { return v.empty() ? PgNull() : PgText(v); }
PgParam Index(uint64_t v) { return PgInt(static_cast<int64_t>(v)); }

bool ReadHash(const PgRows& rows, int row, int col, crypto::Sha256Digest& out) {
  std::vector<uint8_t> b = rows.Bytes(row, col);
  if (b.size() != out.size()) return false;
  std::memcpy(out.data(), b.data(), b.size());
  return true;
}

Result<StoredLeaf> ReadLeaf(const PgRows& rows, int i) {
  StoredLeaf leaf;
  leaf.index = static_cast<uint64_t>(rows.Int(i, 0));
  if (!ReadHash(rows, i, 1, leaf.leaf_hash)) {
    return DataLossError("leaf " + std::to_string(leaf.index) +
                         ": stored leaf hash is not 32 bytes");
  }
  std::vector<uint8_t> data = rows.Bytes(i, 2);
  leaf.data.assign(data.begin(), data.end());
  leaf.columns.event_id = std::string(rows.Text(i, 3));
  leaf.columns.kind = std::string(rows.Text(i, 4));
  leaf.columns.session = std::string(rows.Text(i, 5));
  leaf.columns.agent = std::string(rows.Text(i, 6));
  leaf.columns.time = std::string(rows.Text(i, 7));
  return leaf;
}

Result<StoredCheckpoint> ReadCheckpoint(const PgRows& rows, int i) {
  StoredCheckpoint cp;
  cp.size = static_cast<uint64_t>(rows.Int(i, 0));
  if (!ReadHash(rows, i, 1, cp.root)) {
    return DataLossError("checkpoint at size " + std::to_string(cp.size) +
                         ": stored root is not 32 bytes");
  }
  cp.note = std::string(rows.Text(i, 2));
  return cp;
}

Result<std::optional<StoredCheckpoint>> OneCheckpoint(Result<PgRows> rows) {
  if (!rows.ok()) return rows.status();
  if (rows->size() == 0) return std::optional<StoredCheckpoint>();
  ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpoint(*rows, 0));
  return std::optional<StoredCheckpoint>(std::move(cp));
}

}  // namespace

Result<std::unique_ptr<PgLedgerStore>> PgLedgerStore::Open(const std::string& url,
                                                           PgOptions options) {
  return Open(url, OpenOptions{}, std::move(options));
}

Result<std::unique_ptr<PgLedgerStore>> PgLedgerStore::Open(const std::string& url, OpenOptions open,
                                                           PgOptions options) {
  options.what = "ledger database";
  // The sequencer's transaction holds one connection while it reads what other nodes appended
  // through another.
  options.pool_size = std::max<size_t>(options.pool_size, 2);
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  if (open.read_only) {
    // PgSchemaVersion reads custody_schema, which a database Custody never opened lacks.
    auto version = PgSchemaVersion(*db, "ledger");
    const int64_t known = static_cast<int64_t>(std::size(kSchemaSteps));
    if (!version.ok() || *version != known) {
      return FailedPreconditionError(
          "ledger database at " + db->where() + " has no Custody ledger of schema version " +
          std::to_string(known) + " (open it once with `custody serve` to create or migrate it)");
    }
  } else {
    RETURN_IF_ERROR(ApplyPgSchema(*db, "ledger", kSchemaSteps));
  }
  return std::unique_ptr<PgLedgerStore>(new PgLedgerStore(std::move(db)));
}

PgLedgerStore::~PgLedgerStore() = default;

Result<std::optional<std::string>> PgLedgerStore::GetMeta(const std::string& key) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("read meta", "SELECT value FROM ledger_meta WHERE key = $1", {PgText(key)}));
  if (rows.size() == 0) return std::optional<std::string>();
  std::vector<uint8_t> v = rows.Bytes(0, 0);
  return std::optional<std::string>(std::string(v.begin(), v.end()));
}

Status PgLedgerStore::PutMeta(const std::string& key, const std::string& value) {
  return db_
      ->Exec("write meta",
             "INSERT INTO ledger_meta(key, value) VALUES($1, $2) "
             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
             {PgText(key),
              PgBytes(std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()))})
      .status();
}

namespace {

PgParam Bytes(const std::string& v) {
  return PgBytes(std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
}

// Writes a batch on `c`, inside its transaction, in as few round trips as PostgreSQL's limit of
// 65535 parameters allows: one statement whose data-modifying CTEs insert the leaves and upsert
// the tiles beside the checkpoint's INSERT (up to kLeavesPerStatement leaves; the leaves of a
// larger batch go first in statements of their own). A leaf index stored already fails the
// statement with a unique violation (AlreadyExists), and the transaction with it. The last
// statement goes with COMMIT, in one round trip (PgConn::ExecThenCommit).
Status WriteBatch(PgConn& c, const LedgerBatch& batch) {
  constexpr size_t kLeafParams = 8, kTileParams = 3;
  constexpr size_t kMaxParams = 65535;
  constexpr size_t kLeavesPerStatement = 4096;  // 32768 parameters
  // Partial rows of level 0 are the leaves' own hashes (GetTile reads them from there). One
  // statement may not upsert a row twice: a row that comes again later in the batch is left out.
  std::vector<const StoredTile*> tiles;
  for (size_t i = 0; i < batch.tiles.size(); ++i) {
    const StoredTile& t = batch.tiles[i];
    if (t.level == 0 && t.hashes.size() < kLedgerTileWidth) continue;
    bool later = false;
    for (size_t j = i + 1; j < batch.tiles.size() && !later; ++j) {
      later = batch.tiles[j].level == t.level && batch.tiles[j].index == t.index;
    }
    if (!later) tiles.push_back(&t);
  }
  std::vector<PgParam> params;
  auto add_leaves = [&](size_t first, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const StoredLeaf& leaf = batch.leaves[first + i];
      params.push_back(Index(leaf.index));
      params.push_back(PgBytes(leaf.leaf_hash));
      params.push_back(Bytes(leaf.data));
      params.push_back(NullIfEmpty(leaf.columns.event_id));
      params.push_back(NullIfEmpty(leaf.columns.kind));
      params.push_back(NullIfEmpty(leaf.columns.session));
      params.push_back(NullIfEmpty(leaf.columns.agent));
      params.push_back(NullIfEmpty(leaf.columns.time));
    }
  };
  auto leaves_sql = [](size_t n) {
    return std::string("INSERT INTO ledger_leaves(") + kLeafColumns + ") VALUES" +
           PgValueRows(n, kLeafParams);
  };
  size_t first = 0;
  const size_t total = batch.leaves.size();
  while (total - first > kLeavesPerStatement) {
    params.clear();
    add_leaves(first, kLeavesPerStatement);
    RETURN_IF_ERROR(c.Exec("insert leaves", leaves_sql(kLeavesPerStatement), params).status());
    first += kLeavesPerStatement;
  }
  const size_t last = total - first;
  // Tiles: a few per batch (one per level, plus the level-0 rows a batch fills); a batch with
  // more than fit beside its leaves upserts them in statements of their own.
  const size_t tile_room = (kMaxParams - 3 - last * kLeafParams) / kTileParams;
  auto tiles_sql = [](size_t n, size_t offset) {  // $offset+1 the first parameter
    std::string values;
    for (size_t r = 0; r < n; ++r) {
      values += r == 0 ? "(" : ", (";
      values += "$" + std::to_string(offset + r * kTileParams + 1) + "::smallint, $" +
                std::to_string(offset + r * kTileParams + 2) + "::bigint, $" +
                std::to_string(offset + r * kTileParams + 3) + "::bytea)";
    }
    return "INSERT INTO ledger_tiles(level, idx, hashes) VALUES" + values +
           " ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes";
  };
  auto add_tile = [&](const StoredTile& t) {
    params.push_back(PgInt(t.level));
    params.push_back(Index(t.index));
    params.push_back(PgBytes(
        std::span(reinterpret_cast<const uint8_t*>(t.hashes.data()), t.hashes.size() * 32)));
  };
  size_t tile_first = 0;
  while (tiles.size() - tile_first > tile_room) {
    const size_t n = std::min(tiles.size() - tile_first, (kMaxParams - 1) / kTileParams);
    params.clear();
    for (size_t i = 0; i < n; ++i) add_tile(*tiles[tile_first + i]);
    RETURN_IF_ERROR(c.Exec("write tiles", tiles_sql(n, 0), params).status());
    tile_first += n;
  }
  // The rest and the checkpoint: one statement. Parameters are numbered in the order added.
  params.clear();
  std::string sql;
  std::vector<std::string> ctes;
  if (last > 0) {
    add_leaves(first, last);
    ctes.push_back("leaves AS (" + leaves_sql(last) + ")");
  }
  const size_t tile_count = tiles.size() - tile_first;
  if (tile_count > 0) {
    // The tiles' parameters come after the leaves'.
    const std::string t = tiles_sql(tile_count, params.size());
    for (size_t i = 0; i < tile_count; ++i) add_tile(*tiles[tile_first + i]);
    ctes.push_back("tiles AS (" + t + ")");
  }
  for (size_t i = 0; i < ctes.size(); ++i) sql += (i == 0 ? "WITH " : ", ") + ctes[i];
  if (!sql.empty()) sql += " ";
  const size_t cp = params.size();
  sql += "INSERT INTO ledger_checkpoints(size, root, note) VALUES($" + std::to_string(cp + 1) +
         ", $" + std::to_string(cp + 2) + ", $" + std::to_string(cp + 3) + ")";
  params.push_back(Index(batch.checkpoint.size));
  params.push_back(PgBytes(batch.checkpoint.root));
  params.push_back(PgText(batch.checkpoint.note));
  return c.ExecThenCommit("write batch", sql, params);
}

// The transaction-scoped advisory lock every node's sequencer takes before it reads the head:
// appends from all nodes are numbered one batch at a time. Reads never take it.
constexpr int64_t kSequencerLock = 0x437573746f64794c;  // "CustodyL"

}  // namespace

Status PgLedgerStore::CommitBatch(const LedgerBatch& batch) {
  return db_->Transact("commit batch", [&](PgConn& c) { return WriteBatch(c, batch); });
}

Status PgLedgerStore::CommitAtHead(LedgerBatch& batch, const PrepareBatch& prepare) {
  // BEGIN, the lock and the head in one round trip (three statements of the simple protocol: the
  // head's read takes its snapshot after the lock is held, so it sees the previous holder's
  // batch). Then the batch (one statement) and COMMIT, in one more (two round trips in all).
  static const std::string kBegin = "SELECT pg_advisory_xact_lock(" +
                                    std::to_string(kSequencerLock) +
                                    "); SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_leaves";
  return db_->TransactAfter("commit batch", kBegin, [&](PgConn& c, const PgRows& head) -> Status {
    if (head.size() != 1) return UnavailableError("ledger database: reading the head gave no row");
    RETURN_IF_ERROR(prepare(static_cast<uint64_t>(head.Int(0, 0)), batch));
    return WriteBatch(c, batch);
  });
}

Result<std::vector<crypto::Sha256Digest>> PgLedgerStore::LeafHashes(uint64_t from, uint64_t to) {
  std::vector<crypto::Sha256Digest> out;
  if (to <= from) return out;
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read leaf hashes",
                             "SELECT idx, leaf_hash FROM ledger_leaves WHERE idx >= $1 AND "
                             "idx < $2 ORDER BY idx",
                             {Index(from), Index(to)}));
  out.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    const uint64_t idx = static_cast<uint64_t>(rows.Int(i, 0));
    if (idx != from + out.size()) break;
    crypto::Sha256Digest h;
    if (!ReadHash(rows, i, 1, h)) {
      return DataLossError("leaf " + std::to_string(idx) + ": stored leaf hash is not 32 bytes");
    }
    out.push_back(h);
  }
  if (out.size() != to - from) {
    return NotFoundError("no ledger entry at index " + std::to_string(from + out.size()));
  }
  return out;
}

Result<uint64_t> PgLedgerStore::LeafCount() {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("count leaves",
                                          "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_leaves"));
  return static_cast<uint64_t>(rows.Int(0, 0));
}

Result<StoredLeaf> PgLedgerStore::GetLeaf(uint64_t index) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read leaf",
                                          std::string("SELECT ") + kLeafColumns +
                                              " FROM ledger_leaves WHERE idx = $1",
                                          {Index(index)}));
  if (rows.size() == 0) return NotFoundError("no ledger entry at index " + std::to_string(index));
  return ReadLeaf(rows, 0);
}

Status PgLedgerStore::ScanLeaves(uint64_t from, const std::function<bool(const StoredLeaf&)>& fn) {
  constexpr int kChunk = 1024;
  while (true) {
    // Each chunk is read before `fn` runs, so `fn` may use the store (its connection is back).
    ASSIGN_OR_RETURN(PgRows rows, db_->Exec("scan leaves",
                                            std::string("SELECT ") + kLeafColumns +
                                                " FROM ledger_leaves WHERE idx >= $1 "
                                                "ORDER BY idx LIMIT $2",
                                            {Index(from), PgInt(kChunk)}));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(StoredLeaf leaf, ReadLeaf(rows, i));
      from = leaf.index + 1;
      if (!fn(leaf)) return OkStatus();
    }
    if (rows.size() < kChunk) return OkStatus();
  }
}

Result<std::vector<uint64_t>> PgLedgerStore::FindLeaves(Column column, const std::string& value,
                                                        const std::string& kind) {
  std::vector<uint64_t> out;
  if (value.empty()) return out;
  const char* sql =
      column == Column::kEventId
          ? "SELECT idx FROM ledger_leaves WHERE event_id = $1 AND ($2::text IS NULL OR "
            "kind = $2) ORDER BY idx"
      : column == Column::kSession
          ? "SELECT idx FROM ledger_leaves WHERE session = $1 AND ($2::text IS NULL OR "
            "kind = $2) ORDER BY idx"
          : "SELECT idx FROM ledger_leaves WHERE agent = $1 AND ($2::text IS NULL OR "
            "kind = $2) ORDER BY idx";
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("find leaves", sql, {PgText(value), NullIfEmpty(kind)}));
  for (int i = 0; i < rows.size(); ++i) out.push_back(static_cast<uint64_t>(rows.Int(i, 0)));
  return out;
}

Result<StoredTile> PgLedgerStore::GetTile(uint8_t level, uint64_t index) {
  std::string where = "tile " + std::to_string(level) + "/" + std::to_string(index);
  StoredTile tile;
  tile.level = level;
  tile.index = index;
  ASSIGN_OR_RETURN(
      PgRows row,
      db_->Exec("read tile", "SELECT hashes FROM ledger_tiles WHERE level = $1 AND idx = $2",
                {PgInt(level), Index(index)}));
  if (row.size() != 0) {
    std::vector<uint8_t> bytes = row.Bytes(0, 0);
    if (bytes.empty() || bytes.size() % 32 != 0 || bytes.size() > kLedgerTileWidth * 32) {
      return DataLossError(where + ": stored row has " + std::to_string(bytes.size()) + " bytes");
    }
    tile.hashes.resize(bytes.size() / 32);
    std::memcpy(tile.hashes.data(), bytes.data(), bytes.size());
  }
  if (level != 0 || tile.hashes.size() == kLedgerTileWidth) {
    if (tile.hashes.empty()) return NotFoundError(where + " not found");
    return tile;
  }
  // Level 0 and not full: the hashes of the leaves stored so far.
  tile.hashes.clear();
  const uint64_t first = index * kLedgerTileWidth;
  ASSIGN_OR_RETURN(PgRows leaves,
                   db_->Exec("read leaf hashes",
                             "SELECT idx, leaf_hash FROM ledger_leaves WHERE idx >= $1 AND "
                             "idx < $2 ORDER BY idx",
                             {Index(first), Index(first + kLedgerTileWidth)}));
  for (int i = 0; i < leaves.size(); ++i) {
    // Contiguous from the tile's first leaf: a gap ends the row (the verifier names it).
    if (static_cast<uint64_t>(leaves.Int(i, 0)) != first + tile.hashes.size()) break;
    crypto::Sha256Digest h;
    if (!ReadHash(leaves, i, 1, h)) {
      return DataLossError(where + ": leaf " + std::to_string(first + tile.hashes.size()) +
                           " has a stored leaf hash that is not 32 bytes");
    }
    tile.hashes.push_back(h);
  }
  if (tile.hashes.empty()) return NotFoundError(where + " not found");
  return tile;
}

Result<std::optional<StoredCheckpoint>> PgLedgerStore::LatestCheckpoint() {
  return OneCheckpoint(
      db_->Exec("read checkpoint",
                "SELECT size, root, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"));
}

Result<std::optional<StoredCheckpoint>> PgLedgerStore::GetCheckpoint(uint64_t size) {
  return OneCheckpoint(db_->Exec("read checkpoint",
                                 "SELECT size, root, note FROM ledger_checkpoints WHERE size = $1",
                                 {Index(size)}));
}

Status PgLedgerStore::ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) {
  constexpr int kChunk = 1024;
  uint64_t from = 0;
  while (true) {
    ASSIGN_OR_RETURN(PgRows rows, db_->Exec("scan checkpoints",
                                            "SELECT size, root, note FROM ledger_checkpoints "
                                            "WHERE size >= $1 ORDER BY size LIMIT $2",
                                            {Index(from), PgInt(kChunk)}));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpoint(rows, i));
      from = cp.size + 1;
      if (!fn(cp)) return OkStatus();
    }
    if (rows.size() < kChunk) return OkStatus();
  }
}

}  // namespace custody::store
