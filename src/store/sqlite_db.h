// SqliteDb and Stmt: the small SQLite layer shared by the stores (attribution, MCP tool pins;
// the ledger, identity and admin-token stores still carry their own statement helpers, see
// docs/ARCHITECTURE.md). Schema versions: store/sqlite_schema.h.
//
// SqliteDb opens (creating it 0600 when asked) a WAL database and runs statements; it is not
// internally locked: callers serialize access (each store holds one mutex per connection).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace custody::store {

enum class Durability {
  kFull,    // synchronous=FULL: every commit is fsynced
  kNormal,  // synchronous=NORMAL in WAL mode: survives a process crash, not a power loss
};

// FailedPrecondition: `what` at `path` is held (exclusively locked) by another process.
Status InUseError(const std::string& what, const std::string& path);

// Puts a freshly opened connection into exclusive WAL mode with the given durability: this
// process becomes the file's only user. A file another process holds gives InUseError after
// one second; a file that is not a database gives DataLoss. Leaves a 5 s busy timeout set.
Status LockExclusiveWal(sqlite3* db, const std::string& what, const std::string& path,
                        Durability durability);

class SqliteDb {
 public:
  // `what` names the database in errors ("attribution store").
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, const std::string& what,
                                                Durability durability);
  // Open, then bring the file to the schema of `steps` (store/sqlite_schema.h).
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, const std::string& what,
                                                Durability durability,
                                                std::span<const char* const> schema_steps);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  Status Exec(const std::string& sql);
  // An Unavailable (or DataLoss for a corrupt file) error naming the database and `doing`.
  Status Error(const std::string& doing) const;
  int64_t changes() const;
  sqlite3* raw() const { return db_; }
  // The prepared statement for `sql`, prepared on first use and kept (nullptr on a bad
  // statement). Stmt uses it; the caller's lock guards it like the connection.
  sqlite3_stmt* Prepared(const char* sql);

 private:
  SqliteDb(sqlite3* db, std::string what) : db_(db), what_(std::move(what)) {}
  sqlite3* db_;
  std::string what_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

// A cached prepared statement, reset for reuse when it goes out of scope (so one SQL text may
// not be in use twice at once). Bind indexes start at 1, columns at 0.
class Stmt {
 public:
  Stmt(SqliteDb& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v);
  Stmt& Bind(int i, int64_t v);
  Stmt& BindNull(int i);
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step();
  void Reset();
  std::string Text(int i) const;
  int64_t Int(int i) const;
  bool IsNull(int i) const;

 private:
  sqlite3_stmt* s_ = nullptr;
};

inline constexpr int kSqliteRow = 100;   // SQLITE_ROW
inline constexpr int kSqliteDone = 101;  // SQLITE_DONE

}  // namespace custody::store
