#include "store/postgres/pg_admin_token_store.h"

#include <cstring>

#include "store/internal/columns.h"
#include "store/postgres/pg_schema.h"

namespace custody::store {

using internal::kAdminTokenColumns;
namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change.
constexpr const char* kSchemaV1 =
    "CREATE TABLE admin_tokens(id TEXT PRIMARY KEY, hash BYTEA NOT NULL, role TEXT NOT NULL, "
    "label TEXT, created_ms BIGINT NOT NULL, revoked_ms BIGINT)";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

AdminTokenRecord ReadRow(const PgRows& rows, int i) {
  AdminTokenRecord r;
  r.id = std::string(rows.Text(i, 0));
  std::vector<uint8_t> hash = rows.Bytes(i, 1);
  if (hash.size() == r.hash.size()) std::memcpy(r.hash.data(), hash.data(), hash.size());
  r.role = std::string(rows.Text(i, 2));
  r.label = std::string(rows.Text(i, 3));  // empty when NULL
  r.created_unix_ms = rows.Int(i, 4);
  if (!rows.IsNull(i, 5)) r.revoked_unix_ms = rows.Int(i, 5);
  return r;
}

}  // namespace

Result<std::unique_ptr<PgAdminTokenStore>> PgAdminTokenStore::Open(const std::string& url,
                                                                   PgOptions options) {
  options.what = "token database";
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  RETURN_IF_ERROR(ApplyPgSchema(*db, "admin_tokens", kSchemaSteps));
  return std::unique_ptr<PgAdminTokenStore>(new PgAdminTokenStore(std::move(db)));
}

PgAdminTokenStore::~PgAdminTokenStore() = default;

Status PgAdminTokenStore::Insert(const AdminTokenRecord& r) {
  Status st = db_->Exec("insert token",
                        std::string("INSERT INTO admin_tokens(") + kAdminTokenColumns +
                            ") VALUES($1, $2, $3, $4, $5, $6)",
                        {PgText(r.id), PgBytes(r.hash), PgText(r.role), PgText(r.label),
                         PgInt(r.created_unix_ms), PgOptionalInt(r.revoked_unix_ms)})
                  .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("token id already exists: " + r.id);
  }
  return st;
}

Result<std::optional<AdminTokenRecord>> PgAdminTokenStore::Get(std::string_view id) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("get token",
                                          std::string("SELECT ") + kAdminTokenColumns +
                                              " FROM admin_tokens WHERE id = $1",
                                          {PgText(id)}));
  if (rows.size() == 0) return std::optional<AdminTokenRecord>();
  return std::optional<AdminTokenRecord>(ReadRow(rows, 0));
}

Result<std::vector<AdminTokenRecord>> PgAdminTokenStore::List() {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("list tokens", std::string("SELECT ") + kAdminTokenColumns +
                                                " FROM admin_tokens ORDER BY "
                                                "created_ms, id COLLATE \"C\""));
  std::vector<AdminTokenRecord> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.push_back(ReadRow(rows, i));
  return out;
}

Status PgAdminTokenStore::Revoke(std::string_view id, int64_t at_unix_ms) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("revoke token",
                             "UPDATE admin_tokens SET revoked_ms = COALESCE(revoked_ms, $1) "
                             "WHERE id = $2",
                             {PgInt(at_unix_ms), PgText(id)}));
  if (rows.affected() == 0) return NotFoundError("no token with id " + std::string(id));
  return OkStatus();
}

Status PgAdminTokenStore::CheckWritable() {
  return db_->Transact("check writable", [](PgConn& c) -> Status {
    return c
        .Exec("check writable",
              "SELECT version FROM custody_schema WHERE component = 'admin_tokens' FOR UPDATE")
        .status();
  });
}

}  // namespace custody::store
