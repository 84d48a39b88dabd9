#include "store/sqlite/sqlite_ledger_store.h"

#include <sqlite3.h>

#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "store/sqlite/sqlite_schema.h"

namespace custody::store {
namespace {

constexpr const char* kWhat = "ledger database";

// Schema steps (store/sqlite_schema.h): kSchemaSteps[i] takes ledger.db from version i to i+1.
// Released steps never change; a layout change is a new step. (The meta row schema_version is
// older than user_version and stays "1": it marks a file as a Custody ledger.)
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS leaves(
  idx       INTEGER PRIMARY KEY,
  leaf_hash BLOB NOT NULL,
  data      BLOB NOT NULL,
  event_id  TEXT,
  kind      TEXT,
  session   TEXT,
  agent     TEXT,
  time      TEXT);
CREATE INDEX IF NOT EXISTS leaves_event_id ON leaves(event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS leaves_session ON leaves(session, idx) WHERE session IS NOT NULL;
CREATE INDEX IF NOT EXISTS leaves_agent ON leaves(agent, idx) WHERE agent IS NOT NULL;
CREATE TABLE IF NOT EXISTS tiles(
  level  INTEGER NOT NULL,
  idx    INTEGER NOT NULL,
  hashes BLOB NOT NULL,
  PRIMARY KEY(level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
  size INTEGER PRIMARY KEY,
  root BLOB NOT NULL,
  note TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1};
constexpr int64_t kSchemaVersion = static_cast<int64_t>(std::size(kSchemaSteps));
// A read-only open cannot migrate, so it reads a file of any version from this one up to
// kSchemaVersion as it is: their layouts must be readable by this code (version 0 is the
// version 1 layout). Raise it when a step changes what the readers query.
constexpr int64_t kOldestReadableVersion = 0;

// The schema check of a read-only open, which must never write: a newer file is refused
// (ApplySchema refuses it before it writes anything, with the same message as a write open), an
// older one is read as it is if its layout is readable, else it must be migrated first.
Status CheckReadOnlySchema(sqlite3* db, const std::string& path) {
  ASSIGN_OR_RETURN(int64_t version, SchemaVersion(db, kWhat));
  if (version > kSchemaVersion) return ApplySchema(db, kWhat, path, kSchemaSteps);
  if (version < kOldestReadableVersion) {
    return FailedPreconditionError(
        std::string(kWhat) + " " + path + " has schema version " + std::to_string(version) +
        ", older than version " + std::to_string(kSchemaVersion) +
        " and not readable as it is; open it once with `custody serve` (or another command "
        "that writes to the ledger) to migrate it");
  }
  return OkStatus();
}

// Index columns: an empty string is stored as NULL. Bound without a copy (the leaf outlives
// the statement's use).
void BindColumn(Stmt& s, int i, const std::string& v) {
  if (v.empty()) {
    s.BindNull(i);
  } else {
    s.BindTextRef(i, v);
  }
}

bool ColumnHash(const Stmt& s, int i, crypto::Sha256Digest& out) {
  std::span<const uint8_t> b = s.BlobView(i);
  if (b.size() != 32) return false;
  std::memcpy(out.data(), b.data(), 32);
  return true;
}

}  // namespace

struct SqliteLedgerStore::Statements {
  // Owned by the SqliteDb (finalized when it closes).
  sqlite3_stmt* get_meta = nullptr;
  sqlite3_stmt* put_meta = nullptr;
  sqlite3_stmt* insert_leaf = nullptr;
  sqlite3_stmt* put_tile = nullptr;
  sqlite3_stmt* insert_checkpoint = nullptr;
  sqlite3_stmt* leaf_count = nullptr;
  sqlite3_stmt* get_leaf = nullptr;
  sqlite3_stmt* scan_leaves = nullptr;
  sqlite3_stmt* get_tile = nullptr;
  sqlite3_stmt* leaf_hashes = nullptr;
  sqlite3_stmt* latest_checkpoint = nullptr;
  sqlite3_stmt* get_checkpoint = nullptr;
  sqlite3_stmt* scan_checkpoints = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
};

SqliteLedgerStore::SqliteLedgerStore(std::unique_ptr<SqliteDb> db, std::string path)
    : db_(std::move(db)), stmt_(std::make_unique<Statements>()), path_(std::move(path)) {}

SqliteLedgerStore::~SqliteLedgerStore() = default;

Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::Open(const std::string& path,
                                                                   const Options& options) {
  SqliteDb::Options o;
  o.durability = Durability::kFull;
  o.exclusive = false;  // readers in other processes (`custody ledger verify`) share the file
  o.read_only = options.read_only;
  o.create_if_missing = options.create_if_missing;
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, kWhat, o));
  sqlite3* raw = db->raw();
  std::unique_ptr<SqliteLedgerStore> store(new SqliteLedgerStore(std::move(db), path));
  {
    // Uncontended (the store is not shared yet); taken for the analysis.
    MutexLock lock(store->mu_);
    if (options.read_only) {
      RETURN_IF_ERROR(CheckReadOnlySchema(raw, path));
    } else {
      RETURN_IF_ERROR(ApplySchema(raw, kWhat, path, kSchemaSteps));
    }
    RETURN_IF_ERROR(store->Prepare());
  }
  auto version = store->GetMeta("schema_version");
  if (!version.ok()) return version.status();
  if (!*version || **version != "1") {
    return DataLossError("ledger database " + path + " has no Custody ledger schema (version 1)");
  }
  return store;
}

Status SqliteLedgerStore::Prepare() {
  struct {
    sqlite3_stmt** slot;
    const char* sql;
  } defs[] = {
      {&stmt_->get_meta, "SELECT value FROM meta WHERE key = ?1"},
      {&stmt_->put_meta, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)"},
      {&stmt_->insert_leaf,
       "INSERT INTO leaves(idx, leaf_hash, data, event_id, kind, session, agent, time) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&stmt_->put_tile, "INSERT OR REPLACE INTO tiles(level, idx, hashes) VALUES(?1, ?2, ?3)"},
      {&stmt_->insert_checkpoint, "INSERT INTO checkpoints(size, root, note) VALUES(?1, ?2, ?3)"},
      {&stmt_->leaf_count, "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves"},
      {&stmt_->get_leaf,
       "SELECT idx, leaf_hash, data, event_id, kind, session, agent, time FROM leaves "
       "WHERE idx = ?1"},
      {&stmt_->scan_leaves,
       "SELECT idx, leaf_hash, data, event_id, kind, session, agent, time FROM leaves "
       "WHERE idx >= ?1 ORDER BY idx LIMIT ?2"},
      {&stmt_->get_tile, "SELECT hashes FROM tiles WHERE level = ?1 AND idx = ?2"},
      {&stmt_->leaf_hashes,
       "SELECT idx, leaf_hash FROM leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx"},
      {&stmt_->latest_checkpoint,
       "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"},
      {&stmt_->get_checkpoint, "SELECT size, root, note FROM checkpoints WHERE size = ?1"},
      {&stmt_->scan_checkpoints,
       "SELECT size, root, note FROM checkpoints WHERE size >= ?1 ORDER BY size LIMIT ?2"},
      {&stmt_->begin, "BEGIN IMMEDIATE"},
      {&stmt_->commit, "COMMIT"},
      {&stmt_->rollback, "ROLLBACK"},
  };
  for (auto& d : defs) {
    Result<sqlite3_stmt*> s = db_->Prepare(d.sql);
    if (!s.ok()) {
      // A missing table or column: not a ledger file.
      if (db_->last_error() == SQLITE_ERROR) {
        return DataLossError(
            "ledger database " + path_ +
            " does not have the Custody ledger schema: " + sqlite3_errmsg(db_->raw()));
      }
      return s.status();
    }
    *d.slot = *s;
  }
  return OkStatus();
}

Result<std::optional<std::string>> SqliteLedgerStore::GetMeta(const std::string& key) {
  MutexLock lock(mu_);
  Stmt s(stmt_->get_meta);
  BindColumn(s, 1, key);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.Blob(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return db_->Error("read meta");
}

Status SqliteLedgerStore::PutMeta(const std::string& key, const std::string& value) {
  MutexLock lock(mu_);
  Stmt s(stmt_->put_meta);
  BindColumn(s, 1, key);
  s.BindBlobRef(2, value);
  if (s.Step() != SQLITE_DONE) return db_->Error("write meta");
  return OkStatus();
}

Status SqliteLedgerStore::CommitBatch(const LedgerBatch& batch) {
  MutexLock lock(mu_);
  {
    Stmt b(stmt_->begin);
    if (b.Step() != SQLITE_DONE) return db_->Error("begin batch");
  }
  auto fail = [&](const char* what) REQUIRES(mu_) {
    Status st = db_->Error(what);
    Stmt r(stmt_->rollback);
    // `st` is the error to report. Should the rollback fail too, the transaction stays open
    // and the next BEGIN fails, reported there.
    (void)r.Step();
    return st;
  };
  for (const StoredLeaf& leaf : batch.leaves) {
    Stmt s(stmt_->insert_leaf);
    s.Bind(1, static_cast<int64_t>(leaf.index));
    s.BindBlobRef(2, leaf.leaf_hash.data(), 32);
    s.BindBlobRef(3, leaf.data);
    BindColumn(s, 4, leaf.columns.event_id);
    BindColumn(s, 5, leaf.columns.kind);
    BindColumn(s, 6, leaf.columns.session);
    BindColumn(s, 7, leaf.columns.agent);
    BindColumn(s, 8, leaf.columns.time);
    if (s.Step() != SQLITE_DONE) return fail("insert leaf");
  }
  for (const StoredTile& tile : batch.tiles) {
    // A partial tile of level 0 is the leaf hashes of its leaves, which are stored with the
    // leaves: GetTile() reads it from there. Rewriting it (up to 8 KiB, on overflow pages) on
    // every commit was half of the pages each commit wrote.
    if (tile.level == 0 && tile.hashes.size() < kLedgerTileWidth) continue;
    Stmt s(stmt_->put_tile);
    s.Bind(1, int64_t{tile.level});
    s.Bind(2, static_cast<int64_t>(tile.index));
    s.BindBlobRef(3, tile.hashes.data(), tile.hashes.size() * 32);
    if (s.Step() != SQLITE_DONE) return fail("write tile");
  }
  {
    Stmt s(stmt_->insert_checkpoint);
    s.Bind(1, static_cast<int64_t>(batch.checkpoint.size));
    s.BindBlobRef(2, batch.checkpoint.root.data(), 32);
    BindColumn(s, 3, batch.checkpoint.note);
    if (s.Step() != SQLITE_DONE) return fail("write checkpoint");
  }
  Stmt c(stmt_->commit);
  if (c.Step() != SQLITE_DONE) return fail("commit batch");
  return OkStatus();
}

Result<uint64_t> SqliteLedgerStore::LeafCount() {
  MutexLock lock(mu_);
  Stmt s(stmt_->leaf_count);
  if (s.Step() != SQLITE_ROW) return db_->Error("count leaves");
  return static_cast<uint64_t>(s.Int(0));
}

namespace {
Result<StoredLeaf> ReadLeafRow(const Stmt& s) {
  StoredLeaf leaf;
  leaf.index = static_cast<uint64_t>(s.Int(0));
  if (!ColumnHash(s, 1, leaf.leaf_hash)) {
    return DataLossError("leaf " + std::to_string(leaf.index) +
                         ": stored leaf hash is not 32 bytes");
  }
  leaf.data = s.Blob(2);
  leaf.columns.event_id = s.Text(3);
  leaf.columns.kind = s.Text(4);
  leaf.columns.session = s.Text(5);
  leaf.columns.agent = s.Text(6);
  leaf.columns.time = s.Text(7);
  return leaf;
}

Result<StoredCheckpoint> ReadCheckpointRow(const Stmt& s) {
  StoredCheckpoint cp;
  cp.size = static_cast<uint64_t>(s.Int(0));
  if (!ColumnHash(s, 1, cp.root)) {
    return DataLossError("checkpoint at size " + std::to_string(cp.size) +
                         ": stored root is not 32 bytes");
  }
  cp.note = s.Text(2);
  return cp;
}
}  // namespace

Result<StoredLeaf> SqliteLedgerStore::GetLeaf(uint64_t index) {
  MutexLock lock(mu_);
  Stmt s(stmt_->get_leaf);
  s.Bind(1, static_cast<int64_t>(index));
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("no ledger entry at index " + std::to_string(index));
  if (rc != SQLITE_ROW) return db_->Error("read leaf");
  return ReadLeafRow(s);
}

// Scans read fixed-size chunks and release the mutex before calling `fn`, so a callback may use
// the store itself (the verifier reads tiles while it scans leaves).
Status SqliteLedgerStore::ScanLeaves(uint64_t from,
                                     const std::function<bool(const StoredLeaf&)>& fn) {
  constexpr int kChunk = 1024;
  std::vector<StoredLeaf> chunk;
  while (true) {
    chunk.clear();
    {
      MutexLock lock(mu_);
      Stmt s(stmt_->scan_leaves);
      s.Bind(1, static_cast<int64_t>(from));
      s.Bind(2, int64_t{kChunk});
      while (true) {
        int rc = s.Step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return db_->Error("scan leaves");
        ASSIGN_OR_RETURN(StoredLeaf leaf, ReadLeafRow(s));
        chunk.push_back(std::move(leaf));
      }
    }
    for (const StoredLeaf& leaf : chunk) {
      if (!fn(leaf)) return OkStatus();
    }
    if (chunk.size() < static_cast<size_t>(kChunk)) return OkStatus();
    from = chunk.back().index + 1;
  }
}

// Uses the partial indexes leaves_event_id, leaves_session and leaves_agent.
Result<std::vector<uint64_t>> SqliteLedgerStore::FindLeaves(Column column, const std::string& value,
                                                            const std::string& kind) {
  const char* sql =
      column == Column::kEventId
          ? "SELECT idx FROM leaves WHERE event_id = ?1 AND (?2 IS NULL OR kind = ?2) "
            "ORDER BY idx"
      : column == Column::kSession
          ? "SELECT idx FROM leaves WHERE session = ?1 AND (?2 IS NULL OR kind = ?2) "
            "ORDER BY idx"
          : "SELECT idx FROM leaves WHERE agent = ?1 AND (?2 IS NULL OR kind = ?2) "
            "ORDER BY idx";
  std::vector<uint64_t> out;
  if (value.empty()) return out;
  MutexLock lock(mu_);
  Stmt s(*db_, sql);  // one of three texts, prepared once and kept
  if (!s.ok()) return db_->Error("prepare");
  s.BindTextRef(1, value);
  BindColumn(s, 2, kind);  // NULL when empty: any kind
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_->Error("find leaves");
    out.push_back(static_cast<uint64_t>(s.Int(0)));
  }
  return out;
}

Result<StoredTile> SqliteLedgerStore::GetTile(uint8_t level, uint64_t index) {
  MutexLock lock(mu_);
  std::string where = "tile " + std::to_string(level) + "/" + std::to_string(index);
  StoredTile tile;
  tile.level = level;
  tile.index = index;
  {
    Stmt s(stmt_->get_tile);
    s.Bind(1, int64_t{level});
    s.Bind(2, static_cast<int64_t>(index));
    int rc = s.Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_->Error("read tile");
    if (rc == SQLITE_ROW) {
      std::span<const uint8_t> row = s.BlobView(0);
      size_t bytes = row.size();
      if (bytes == 0 || bytes % 32 != 0 || bytes > kLedgerTileWidth * 32) {
        return DataLossError(where + ": stored row has " + std::to_string(bytes) + " bytes");
      }
      tile.hashes.resize(bytes / 32);
      std::memcpy(tile.hashes.data(), row.data(), bytes);
    }
  }
  if (level != 0 || tile.hashes.size() == kLedgerTileWidth) {
    if (tile.hashes.empty()) return NotFoundError(where + " not found");
    return tile;
  }
  // Level 0 and not full: the hashes of the leaves stored so far (a partial row stored by an
  // older version is a prefix of them, and is ignored).
  tile.hashes.clear();
  Stmt s(stmt_->leaf_hashes);
  const uint64_t first = index * kLedgerTileWidth;
  s.Bind(1, static_cast<int64_t>(first));
  s.Bind(2, static_cast<int64_t>(first + kLedgerTileWidth));
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    // Contiguous from the tile's first leaf: a gap ends the row (the verifier names it).
    if (static_cast<uint64_t>(s.Int(0)) != first + tile.hashes.size()) {
      break;
    }
    crypto::Sha256Digest h;
    if (!ColumnHash(s, 1, h)) {
      return DataLossError(where + ": leaf " + std::to_string(first + tile.hashes.size()) +
                           " has a stored leaf hash that is not 32 bytes");
    }
    tile.hashes.push_back(h);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_->Error("read leaf hashes");
  if (tile.hashes.empty()) return NotFoundError(where + " not found");
  return tile;
}

Result<std::optional<StoredCheckpoint>> SqliteLedgerStore::LatestCheckpoint() {
  MutexLock lock(mu_);
  Stmt s(stmt_->latest_checkpoint);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredCheckpoint>();
  if (rc != SQLITE_ROW) return db_->Error("read checkpoint");
  ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s));
  return std::optional<StoredCheckpoint>(std::move(cp));
}

Result<std::optional<StoredCheckpoint>> SqliteLedgerStore::GetCheckpoint(uint64_t size) {
  MutexLock lock(mu_);
  Stmt s(stmt_->get_checkpoint);
  s.Bind(1, static_cast<int64_t>(size));
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredCheckpoint>();
  if (rc != SQLITE_ROW) return db_->Error("read checkpoint");
  ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s));
  return std::optional<StoredCheckpoint>(std::move(cp));
}

Status SqliteLedgerStore::ScanCheckpoints(const std::function<bool(const StoredCheckpoint&)>& fn) {
  constexpr int kChunk = 1024;
  uint64_t from = 0;
  std::vector<StoredCheckpoint> chunk;
  while (true) {
    chunk.clear();
    {
      MutexLock lock(mu_);
      Stmt s(stmt_->scan_checkpoints);
      s.Bind(1, static_cast<int64_t>(from));
      s.Bind(2, int64_t{kChunk});
      while (true) {
        int rc = s.Step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return db_->Error("scan checkpoints");
        ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s));
        chunk.push_back(std::move(cp));
      }
    }
    for (const StoredCheckpoint& cp : chunk) {
      if (!fn(cp)) return OkStatus();
    }
    if (chunk.size() < static_cast<size_t>(kChunk)) return OkStatus();
    from = chunk.back().size + 1;
  }
}

}  // namespace custody::store
