#include "store/sqlite/sqlite_admin_token_store.h"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>

#include "store/internal/columns.h"
#include "store/sqlite/sqlite_schema.h"

namespace custody::store {

using internal::kAdminTokenColumns;
namespace {

AdminTokenRecord ReadRow(const Stmt& s) {
  AdminTokenRecord r;
  r.id = s.Text(0);
  std::span<const uint8_t> hash = s.BlobView(1);
  if (hash.size() == 32) std::memcpy(r.hash.data(), hash.data(), 32);
  r.role = s.Text(2);
  r.label = s.Text(3);  // empty when NULL
  r.created_unix_ms = s.Int(4);
  if (!s.IsNull(5)) r.revoked_unix_ms = s.Int(5);
  return r;
}

// Schema steps (store/sqlite/sqlite_schema.h): kSchemaSteps[i] takes custody.db from version i to
// i+1. Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS admin_tokens(id TEXT PRIMARY KEY, hash BLOB NOT NULL, "
    "role TEXT NOT NULL, label TEXT, created_ms INTEGER NOT NULL, revoked_ms INTEGER)";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

}  // namespace

Result<std::unique_ptr<SqliteAdminTokenStore>> SqliteAdminTokenStore::Open(const std::string& path,
                                                                           bool create_if_missing) {
  if (!create_if_missing && !std::filesystem::exists(path)) {
    return NotFoundError("no token database at " + path);
  }
  SqliteDb::Options o;
  o.durability = Durability::kFull;
  o.exclusive = false;  // `custody admin token revoke` writes while the server reads
  o.create_if_missing = create_if_missing;
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, "token database", o));
  RETURN_IF_ERROR(ApplySchema(db->raw(), "token database", path, kSchemaSteps));
  return std::unique_ptr<SqliteAdminTokenStore>(new SqliteAdminTokenStore(std::move(db)));
}

SqliteAdminTokenStore::~SqliteAdminTokenStore() = default;

Status SqliteAdminTokenStore::Insert(const AdminTokenRecord& r) {
  MutexLock lock(mu_);
  std::string sql =
      std::string("INSERT INTO admin_tokens(") + kAdminTokenColumns + ") VALUES(?,?,?,?,?,?)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare insert");
  s.Bind(1, r.id).BindBlobRef(2, r.hash.data(), 32).Bind(3, r.role).Bind(4, r.label);
  s.Bind(5, r.created_unix_ms);
  if (r.revoked_unix_ms) {
    s.Bind(6, *r.revoked_unix_ms);
  } else {
    s.BindNull(6);
  }
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("token id already exists: " + r.id);
  if (rc != SQLITE_DONE) return db_->Error("insert token");
  return OkStatus();
}

Result<std::optional<AdminTokenRecord>> SqliteAdminTokenStore::Get(std::string_view id) {
  MutexLock lock(mu_);
  std::string sql = std::string("SELECT ") + kAdminTokenColumns + " FROM admin_tokens WHERE id = ?";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare get");
  s.BindTextRef(1, id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<AdminTokenRecord>();
  if (rc != SQLITE_ROW) return db_->Error("get token");
  return std::optional<AdminTokenRecord>(ReadRow(s));
}

Result<std::vector<AdminTokenRecord>> SqliteAdminTokenStore::List() {
  MutexLock lock(mu_);
  std::string sql =
      std::string("SELECT ") + kAdminTokenColumns + " FROM admin_tokens ORDER BY created_ms, id";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare list");
  std::vector<AdminTokenRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadRow(s));
  if (rc != SQLITE_DONE) return db_->Error("list tokens");
  return out;
}

Status SqliteAdminTokenStore::Revoke(std::string_view id, int64_t at_unix_ms) {
  MutexLock lock(mu_);
  Stmt s(*db_, "UPDATE admin_tokens SET revoked_ms = COALESCE(revoked_ms, ?) WHERE id = ?");
  if (!s.ok()) return db_->Error("prepare revoke");
  s.Bind(1, at_unix_ms).BindTextRef(2, id);
  if (s.Step() != SQLITE_DONE) return db_->Error("revoke token");
  if (db_->changes() == 0) return NotFoundError("no token with id " + std::string(id));
  return OkStatus();
}

Status SqliteAdminTokenStore::CheckWritable() {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  return db_->Exec("ROLLBACK");
}

}  // namespace custody::store
