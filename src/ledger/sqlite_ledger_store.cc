#include "ledger/sqlite_ledger_store.h"

#include <sqlite3.h>

#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "crypto/key_file.h"
#include "ledger/tiles.h"
#include "store/sqlite_schema.h"

namespace custody::ledger {
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
  ASSIGN_OR_RETURN(int64_t version, store::SchemaVersion(db, kWhat));
  if (version > kSchemaVersion) return store::ApplySchema(db, kWhat, path, kSchemaSteps);
  if (version < kOldestReadableVersion) {
    return FailedPreconditionError(
        std::string(kWhat) + " " + path + " has schema version " + std::to_string(version) +
        ", older than version " + std::to_string(kSchemaVersion) +
        " and not readable as it is; open it once with `custody serve` (or another command "
        "that writes to the ledger) to migrate it");
  }
  return OkStatus();
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

std::string ColumnBlob(sqlite3_stmt* s, int i) {
  const void* b = sqlite3_column_blob(s, i);
  return b ? std::string(static_cast<const char*>(b),
                         static_cast<size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

bool ColumnHash(sqlite3_stmt* s, int i, crypto::Sha256Digest& out) {
  if (sqlite3_column_bytes(s, i) != 32) return false;
  std::memcpy(out.data(), sqlite3_column_blob(s, i), 32);
  return true;
}

// Resets a cached statement when the scope ends, whatever path returns.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* s) : s_(s) {}
  ~StmtScope() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

}  // namespace

struct SqliteLedgerStore::Statements {
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

  ~Statements() {
    for (sqlite3_stmt* s :
         {get_meta, put_meta, insert_leaf, put_tile, insert_checkpoint, leaf_count, get_leaf,
          scan_leaves, get_tile, leaf_hashes, latest_checkpoint, get_checkpoint, scan_checkpoints,
          begin, commit, rollback}) {
      sqlite3_finalize(s);
    }
  }
};

SqliteLedgerStore::SqliteLedgerStore(sqlite3* db, std::string path)
    : db_(db), stmt_(std::make_unique<Statements>()), path_(std::move(path)) {}

SqliteLedgerStore::~SqliteLedgerStore() {
  stmt_.reset();
  sqlite3_close_v2(db_);
}

Status SqliteLedgerStore::Error(const char* what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = std::string(what) + " (" + path_ + "): " + sqlite3_errmsg(db_);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return DataLossError(msg);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR || code == SQLITE_FULL ||
      code == SQLITE_CANTOPEN || code == SQLITE_READONLY) {
    return UnavailableError(msg);
  }
  return InternalError(msg);
}

Status SqliteLedgerStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    int code = sqlite3_errcode(db_);
    std::string msg = "sqlite (" + path_ + "): " + m;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return DataLossError(msg);
    return UnavailableError(msg);
  }
  return OkStatus();
}

Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::Open(const std::string& path,
                                                                   const Options& options) {
  if (!options.read_only && options.create_if_missing) {
    RETURN_IF_ERROR(crypto::CreatePrivateFileIfMissing(path));
  }
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    if (rc == SQLITE_CANTOPEN)
      return NotFoundError("cannot open ledger database " + path + ": " + msg);
    return UnavailableError("cannot open ledger database " + path + ": " + msg);
  }
  std::unique_ptr<SqliteLedgerStore> store(new SqliteLedgerStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  {
    // Uncontended (the store is not shared yet); taken for the analysis.
    MutexLock lock(store->mu_);
    if (options.read_only) {
      RETURN_IF_ERROR(CheckReadOnlySchema(db, path));
    } else {
      RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
      RETURN_IF_ERROR(store::ApplySchema(db, kWhat, path, kSchemaSteps));
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
    if (sqlite3_prepare_v3(db_, d.sql, -1, SQLITE_PREPARE_PERSISTENT, d.slot, nullptr) !=
        SQLITE_OK) {
      if (sqlite3_errcode(db_) == SQLITE_ERROR) {
        return DataLossError("ledger database " + path_ +
                             " does not have the Custody ledger schema: " + sqlite3_errmsg(db_));
      }
      return Error("prepare");
    }
  }
  return OkStatus();
}

Result<std::optional<std::string>> SqliteLedgerStore::GetMeta(const std::string& key) {
  MutexLock lock(mu_);
  StmtScope s(stmt_->get_meta);
  BindText(s.get(), 1, key);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return std::optional<std::string>(ColumnBlob(s.get(), 0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return Error("read meta");
}

Status SqliteLedgerStore::PutMeta(const std::string& key, const std::string& value) {
  MutexLock lock(mu_);
  StmtScope s(stmt_->put_meta);
  BindText(s.get(), 1, key);
  sqlite3_bind_blob(s.get(), 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Error("write meta");
  return OkStatus();
}

Status SqliteLedgerStore::CommitBatch(const LedgerBatch& batch) {
  MutexLock lock(mu_);
  {
    StmtScope b(stmt_->begin);
    if (sqlite3_step(b.get()) != SQLITE_DONE) return Error("begin batch");
  }
  auto fail = [&](const char* what) REQUIRES(mu_) {
    Status st = Error(what);
    StmtScope r(stmt_->rollback);
    // `st` is the error to report. Should the rollback fail too, the transaction stays open
    // and the next BEGIN fails, reported there.
    (void)sqlite3_step(r.get());
    return st;
  };
  for (const StoredLeaf& leaf : batch.leaves) {
    StmtScope s(stmt_->insert_leaf);
    sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(leaf.index));
    sqlite3_bind_blob(s.get(), 2, leaf.leaf_hash.data(), 32, SQLITE_STATIC);
    sqlite3_bind_blob(s.get(), 3, leaf.data.data(), static_cast<int>(leaf.data.size()),
                      SQLITE_STATIC);
    BindText(s.get(), 4, leaf.columns.event_id);
    BindText(s.get(), 5, leaf.columns.kind);
    BindText(s.get(), 6, leaf.columns.session);
    BindText(s.get(), 7, leaf.columns.agent);
    BindText(s.get(), 8, leaf.columns.time);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return fail("insert leaf");
  }
  for (const StoredTile& tile : batch.tiles) {
    // A partial tile of level 0 is the leaf hashes of its leaves, which are stored with the
    // leaves: GetTile() reads it from there. Rewriting it (up to 8 KiB, on overflow pages) on
    // every commit was half of the pages each commit wrote.
    if (tile.level == 0 && tile.hashes.size() < kTileWidth) continue;
    StmtScope s(stmt_->put_tile);
    sqlite3_bind_int(s.get(), 1, tile.level);
    sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(tile.index));
    sqlite3_bind_blob(s.get(), 3, tile.hashes.data(), static_cast<int>(tile.hashes.size() * 32),
                      SQLITE_STATIC);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return fail("write tile");
  }
  {
    StmtScope s(stmt_->insert_checkpoint);
    sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(batch.checkpoint.size));
    sqlite3_bind_blob(s.get(), 2, batch.checkpoint.root.data(), 32, SQLITE_STATIC);
    BindText(s.get(), 3, batch.checkpoint.note);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return fail("write checkpoint");
  }
  StmtScope c(stmt_->commit);
  if (sqlite3_step(c.get()) != SQLITE_DONE) return fail("commit batch");
  return OkStatus();
}

Result<uint64_t> SqliteLedgerStore::LeafCount() {
  MutexLock lock(mu_);
  StmtScope s(stmt_->leaf_count);
  if (sqlite3_step(s.get()) != SQLITE_ROW) return Error("count leaves");
  return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
}

namespace {
Result<StoredLeaf> ReadLeafRow(sqlite3_stmt* s) {
  StoredLeaf leaf;
  leaf.index = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  if (!ColumnHash(s, 1, leaf.leaf_hash)) {
    return DataLossError("leaf " + std::to_string(leaf.index) +
                         ": stored leaf hash is not 32 bytes");
  }
  leaf.data = ColumnBlob(s, 2);
  leaf.columns.event_id = ColumnText(s, 3);
  leaf.columns.kind = ColumnText(s, 4);
  leaf.columns.session = ColumnText(s, 5);
  leaf.columns.agent = ColumnText(s, 6);
  leaf.columns.time = ColumnText(s, 7);
  return leaf;
}

Result<StoredCheckpoint> ReadCheckpointRow(sqlite3_stmt* s) {
  StoredCheckpoint cp;
  cp.size = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  if (!ColumnHash(s, 1, cp.root)) {
    return DataLossError("checkpoint at size " + std::to_string(cp.size) +
                         ": stored root is not 32 bytes");
  }
  cp.note = ColumnText(s, 2);
  return cp;
}
}  // namespace

Result<StoredLeaf> SqliteLedgerStore::GetLeaf(uint64_t index) {
  MutexLock lock(mu_);
  StmtScope s(stmt_->get_leaf);
  sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(index));
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return NotFoundError("no ledger entry at index " + std::to_string(index));
  if (rc != SQLITE_ROW) return Error("read leaf");
  return ReadLeafRow(s.get());
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
      StmtScope s(stmt_->scan_leaves);
      sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(from));
      sqlite3_bind_int(s.get(), 2, kChunk);
      while (true) {
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return Error("scan leaves");
        ASSIGN_OR_RETURN(StoredLeaf leaf, ReadLeafRow(s.get()));
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
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) return Error("prepare");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> s(raw, sqlite3_finalize);
  sqlite3_bind_text(raw, 1, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  BindText(raw, 2, kind);  // NULL when empty: any kind
  while (true) {
    int rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return Error("find leaves");
    out.push_back(static_cast<uint64_t>(sqlite3_column_int64(raw, 0)));
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
    StmtScope s(stmt_->get_tile);
    sqlite3_bind_int(s.get(), 1, level);
    sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(index));
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error("read tile");
    if (rc == SQLITE_ROW) {
      int bytes = sqlite3_column_bytes(s.get(), 0);
      if (bytes == 0 || bytes % 32 != 0 || bytes > kTileWidth * 32) {
        return DataLossError(where + ": stored row has " + std::to_string(bytes) + " bytes");
      }
      tile.hashes.resize(static_cast<size_t>(bytes / 32));
      std::memcpy(tile.hashes.data(), sqlite3_column_blob(s.get(), 0), static_cast<size_t>(bytes));
    }
  }
  if (level != 0 || tile.hashes.size() == kTileWidth) {
    if (tile.hashes.empty()) return NotFoundError(where + " not found");
    return tile;
  }
  // Level 0 and not full: the hashes of the leaves stored so far (a partial row stored by an
  // older version is a prefix of them, and is ignored).
  tile.hashes.clear();
  StmtScope s(stmt_->leaf_hashes);
  const uint64_t first = index * kTileWidth;
  sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(first));
  sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(first + kTileWidth));
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    // Contiguous from the tile's first leaf: a gap ends the row (the verifier names it).
    if (static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)) != first + tile.hashes.size()) {
      break;
    }
    Hash h;
    if (!ColumnHash(s.get(), 1, h)) {
      return DataLossError(where + ": leaf " + std::to_string(first + tile.hashes.size()) +
                           " has a stored leaf hash that is not 32 bytes");
    }
    tile.hashes.push_back(h);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("read leaf hashes");
  if (tile.hashes.empty()) return NotFoundError(where + " not found");
  return tile;
}

Result<std::optional<StoredCheckpoint>> SqliteLedgerStore::LatestCheckpoint() {
  MutexLock lock(mu_);
  StmtScope s(stmt_->latest_checkpoint);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<StoredCheckpoint>();
  if (rc != SQLITE_ROW) return Error("read checkpoint");
  ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s.get()));
  return std::optional<StoredCheckpoint>(std::move(cp));
}

Result<std::optional<StoredCheckpoint>> SqliteLedgerStore::GetCheckpoint(uint64_t size) {
  MutexLock lock(mu_);
  StmtScope s(stmt_->get_checkpoint);
  sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(size));
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<StoredCheckpoint>();
  if (rc != SQLITE_ROW) return Error("read checkpoint");
  ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s.get()));
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
      StmtScope s(stmt_->scan_checkpoints);
      sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(from));
      sqlite3_bind_int(s.get(), 2, kChunk);
      while (true) {
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return Error("scan checkpoints");
        ASSIGN_OR_RETURN(StoredCheckpoint cp, ReadCheckpointRow(s.get()));
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

}  // namespace custody::ledger
