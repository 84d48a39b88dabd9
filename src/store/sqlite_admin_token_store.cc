#include "store/sqlite_admin_token_store.h"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>

#include "crypto/key_file.h"
#include "store/sqlite_schema.h"

namespace custody::store {
namespace {

// Finalizes a statement on every path out of a function.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

AdminTokenRecord ReadRow(sqlite3_stmt* s) {
  AdminTokenRecord r;
  r.id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  const void* blob = sqlite3_column_blob(s, 1);
  if (blob && sqlite3_column_bytes(s, 1) == 32) std::memcpy(r.hash.data(), blob, 32);
  r.role = reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
  const unsigned char* label = sqlite3_column_text(s, 3);
  r.label = label ? reinterpret_cast<const char*>(label) : "";
  r.created_unix_ms = sqlite3_column_int64(s, 4);
  if (sqlite3_column_type(s, 5) != SQLITE_NULL) r.revoked_unix_ms = sqlite3_column_int64(s, 5);
  return r;
}

constexpr const char* kColumns = "id, hash, role, label, created_ms, revoked_ms";

// Schema steps (store/sqlite_schema.h): kSchemaSteps[i] takes custody.db from version i to i+1.
// Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS admin_tokens(id TEXT PRIMARY KEY, hash BLOB NOT NULL, "
    "role TEXT NOT NULL, label TEXT, created_ms INTEGER NOT NULL, revoked_ms INTEGER)";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

}  // namespace

Result<std::unique_ptr<SqliteAdminTokenStore>> SqliteAdminTokenStore::Open(const std::string& path,
                                                                           bool create_if_missing) {
  if (!std::filesystem::exists(path)) {
    if (!create_if_missing) return NotFoundError("no token database at " + path);
    RETURN_IF_ERROR(crypto::CreatePrivateFileIfMissing(path));
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return UnavailableError("cannot open token database " + path + ": " + msg);
  }
  std::unique_ptr<SqliteAdminTokenStore> store(new SqliteAdminTokenStore(db));
  sqlite3_busy_timeout(db, 5000);
  {
    MutexLock lock(store->mu_);  // uncontended (the store is not shared yet); for the analysis
    RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  }
  RETURN_IF_ERROR(ApplySchema(db, "token database", path, kSchemaSteps));
  return store;
}

SqliteAdminTokenStore::~SqliteAdminTokenStore() { sqlite3_close(db_); }

Status SqliteAdminTokenStore::Error(const char* what) {
  return UnavailableError(std::string(what) + ": " + sqlite3_errmsg(db_));
}

Status SqliteAdminTokenStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return UnavailableError("token database: " + msg);
  }
  return OkStatus();
}

Status SqliteAdminTokenStore::Insert(const AdminTokenRecord& r) {
  MutexLock lock(mu_);
  Stmt st;
  std::string sql = std::string("INSERT INTO admin_tokens(") + kColumns + ") VALUES(?,?,?,?,?,?)";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare insert");
  }
  sqlite3_bind_text(st.s, 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st.s, 2, r.hash.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, r.role.data(), static_cast<int>(r.role.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 4, r.label.data(), static_cast<int>(r.label.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 5, r.created_unix_ms);
  if (r.revoked_unix_ms) {
    sqlite3_bind_int64(st.s, 6, *r.revoked_unix_ms);
  } else {
    sqlite3_bind_null(st.s, 6);
  }
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("token id already exists: " + r.id);
  if (rc != SQLITE_DONE) return Error("insert token");
  return OkStatus();
}

Result<std::optional<AdminTokenRecord>> SqliteAdminTokenStore::Get(std::string_view id) {
  MutexLock lock(mu_);
  Stmt st;
  std::string sql = std::string("SELECT ") + kColumns + " FROM admin_tokens WHERE id = ?";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare get");
  }
  sqlite3_bind_text(st.s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::optional<AdminTokenRecord>();
  if (rc != SQLITE_ROW) return Error("get token");
  return std::optional<AdminTokenRecord>(ReadRow(st.s));
}

Result<std::vector<AdminTokenRecord>> SqliteAdminTokenStore::List() {
  MutexLock lock(mu_);
  Stmt st;
  std::string sql =
      std::string("SELECT ") + kColumns + " FROM admin_tokens ORDER BY created_ms, id";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare list");
  }
  std::vector<AdminTokenRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(ReadRow(st.s));
  if (rc != SQLITE_DONE) return Error("list tokens");
  return out;
}

Status SqliteAdminTokenStore::Revoke(std::string_view id, int64_t at_unix_ms) {
  MutexLock lock(mu_);
  Stmt st;
  const char* sql = "UPDATE admin_tokens SET revoked_ms = COALESCE(revoked_ms, ?) WHERE id = ?";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr) != SQLITE_OK) return Error("prepare revoke");
  sqlite3_bind_int64(st.s, 1, at_unix_ms);
  sqlite3_bind_text(st.s, 2, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error("revoke token");
  if (sqlite3_changes(db_) == 0) return NotFoundError("no token with id " + std::string(id));
  return OkStatus();
}

Status SqliteAdminTokenStore::CheckWritable() {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  return Exec("ROLLBACK");
}

}  // namespace custody::store
