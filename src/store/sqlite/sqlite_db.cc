#include "store/sqlite/sqlite_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/key_file.h"
#include "store/sqlite/sqlite_schema.h"

namespace custody::store {

static_assert(kSqliteRow == SQLITE_ROW && kSqliteDone == SQLITE_DONE);

// A corrupt file or one that is not a database is DataLoss; anything else is Unavailable.
Status SqliteError(int code, const std::string& message) {
  code &= 0xff;  // the primary code of an extended one
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return DataLossError(message);
  return UnavailableError(message);
}

namespace {
Status Classified(int code, const std::string& msg) { return SqliteError(code, msg); }

// Runs `sql`; an error is classified and prefixed with `prefix`.
Status ExecOn(sqlite3* db, const char* sql, const std::string& prefix) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return OkStatus();
  std::string m = err ? err : "unknown error";
  sqlite3_free(err);
  return Classified(sqlite3_errcode(db), prefix + ": " + m);
}

// Options::owner_lock_file: the descriptor holding the lock. A separate file, because closing
// any descriptor of the database itself would drop the POSIX locks SQLite holds on it.
Result<int> LockOwnerFile(const std::string& lock_path, const std::string& what,
                          const std::string& path) {
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return UnavailableError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int err = errno;
  ::close(fd);
  if (err == EWOULDBLOCK) return InUseError(what, path);
  return UnavailableError("cannot lock " + lock_path + ": " + std::strerror(err));
}
}  // namespace

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, const std::string& what,
                                                 const Options& options) {
  if (!options.read_only && options.create_if_missing) {
    RETURN_IF_ERROR(crypto::CreatePrivateFileIfMissing(path));
  }
  int lock_fd = -1;
  if (!options.owner_lock_file.empty()) {
    ASSIGN_OR_RETURN(lock_fd, LockOwnerFile(options.owner_lock_file, what, path));
  }
  // SQLITE_OPEN_CREATE is never needed: a file to create was created above, mode 0600.
  const int flags =
      SQLITE_OPEN_NOMUTEX | (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
  sqlite3* db = nullptr;
  if (int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr); rc != SQLITE_OK) {
    std::string msg =
        "cannot open " + what + " " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close_v2(db);
    if (lock_fd >= 0) ::close(lock_fd);
    if (rc == SQLITE_CANTOPEN) return NotFoundError(msg);
    return UnavailableError(msg);
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, what, lock_fd));
  if (options.exclusive && !options.read_only) {
    RETURN_IF_ERROR(LockExclusiveWal(db, what, path, options.durability));
    return out;
  }
  sqlite3_busy_timeout(db, 5000);
  if (!options.read_only) {
    RETURN_IF_ERROR(ExecOn(db,
                           options.durability == Durability::kFull
                               ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                               : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                           what + " " + path));
  }
  return out;
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, const std::string& what,
                                                 Durability durability,
                                                 std::span<const char* const> schema_steps) {
  ASSIGN_OR_RETURN(auto db, Open(path, what, durability));
  RETURN_IF_ERROR(ApplySchema(db->raw(), what, path, schema_steps));
  return db;
}

Status LockExclusiveWal(sqlite3* db, const std::string& what, const std::string& path,
                        Durability durability) {
  sqlite3_busy_timeout(db, 1000);  // a held lock is reported after 1 s, not 5
  // One connection per file, owned by this process: an exclusive lock spares two fcntl calls
  // per transaction and the shared-memory WAL index (set before the first WAL access), and it
  // keeps a second `custody serve` from opening the same data directory.
  const std::string sql =
      std::string("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
      (durability == Durability::kFull ? "FULL" : "NORMAL");
  if (Status st = ExecOn(db, sql.c_str(), what + " " + path); !st.ok()) {
    if (sqlite3_errcode(db) == SQLITE_BUSY) return InUseError(what, path);
    return st;
  }
  sqlite3_busy_timeout(db, 5000);
  return OkStatus();
}

Status InUseError(const std::string& what, const std::string& path) {
  return FailedPreconditionError(what + " " + path +
                                 " is locked by another process (is another custody serve "
                                 "running on this data directory?)");
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

sqlite3_stmt* SqliteDb::Prepared(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    return nullptr;
  }
  stmts_.emplace(sql, s);
  return s;
}

Result<sqlite3_stmt*> SqliteDb::Prepare(const char* sql) {
  sqlite3_stmt* s = Prepared(sql);
  if (s == nullptr) return Error("preparing a statement");
  return s;
}

int SqliteDb::last_error() const { return sqlite3_errcode(db_) & 0xff; }

Status SqliteDb::Exec(const std::string& sql) { return ExecOn(db_, sql.c_str(), what_); }

Status SqliteDb::Error(const std::string& doing) const {
  return Classified(sqlite3_errcode(db_), what_ + ": " + doing + ": " + sqlite3_errmsg(db_));
}

int64_t SqliteDb::changes() const { return sqlite3_changes(db_); }

Stmt::Stmt(SqliteDb& db, const char* sql) : s_(db.Prepared(sql)) {}
Stmt::~Stmt() {
  if (s_ == nullptr) return;
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}
Stmt& Stmt::Bind(int i, const std::string& v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}
Stmt& Stmt::BindNullIfEmpty(int i, const std::string& v) {
  return v.empty() ? BindNull(i) : Bind(i, v);
}
Stmt& Stmt::BindTextRef(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}
Stmt& Stmt::BindBlobRef(int i, const void* data, size_t size) {
  sqlite3_bind_blob(s_, i, data, static_cast<int>(size), SQLITE_STATIC);
  return *this;
}
int Stmt::Step() { return sqlite3_step(s_); }
void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}
std::string Stmt::Text(int i) const {
  const unsigned char* t = sqlite3_column_text(s_, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<size_t>(sqlite3_column_bytes(s_, i)))
           : std::string();
}
std::string Stmt::Blob(int i) const {
  const void* b = sqlite3_column_blob(s_, i);
  return b ? std::string(static_cast<const char*>(b),
                         static_cast<size_t>(sqlite3_column_bytes(s_, i)))
           : std::string();
}
std::span<const uint8_t> Stmt::BlobView(int i) const {
  const void* b = sqlite3_column_blob(s_, i);
  return b ? std::span<const uint8_t>(static_cast<const uint8_t*>(b),
                                      static_cast<size_t>(sqlite3_column_bytes(s_, i)))
           : std::span<const uint8_t>();
}
int64_t Stmt::Int(int i) const { return sqlite3_column_int64(s_, i); }
bool Stmt::IsNull(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

}  // namespace custody::store
