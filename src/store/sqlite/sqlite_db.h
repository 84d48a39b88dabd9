// SqliteDb and Stmt: the one SQLite layer every SQLite store uses (ledger, identity, attribution,
// admin tokens, MCP tool pins): one way to open a file, one statement type, one error map
// (a corrupt file or one that is not a database is DataLoss, anything else Unavailable).
// Schema versions: store/sqlite/sqlite_schema.h.
//
// SqliteDb opens (creating it 0600 when asked) a WAL database and runs statements; it is not
// internally locked: callers serialize access (each store holds one mutex per connection).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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

// The error map: SQLite result `code` (primary or extended) and a message to a Status.
Status SqliteError(int code, const std::string& message);

class SqliteDb {
 public:
  struct Options {
    Durability durability = Durability::kFull;
    // true: this process is the file's only user (LockExclusiveWal). false: normal locking,
    // for files other processes open too (the ledger's readers, the admin-token CLI).
    bool exclusive = true;
    // Opened read-only: nothing is written, not even the journal mode.
    bool read_only = false;
    // A missing file is created (mode 0600); else opening it is NotFound.
    bool create_if_missing = true;
    // Set (with exclusive=false): this connection's process is the database's only writer. It
    // holds a BSD lock (flock) on this file, created 0600, for as long as the SqliteDb lives;
    // another Open naming the same file, in this process or another, fails at once with
    // InUseError, while connections without one (a store's own reader) share the database.
    std::string owner_lock_file;
  };
  // `what` names the database in errors ("attribution store").
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, const std::string& what,
                                                const Options& options);
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, const std::string& what,
                                                Durability durability) {
    Options o;
    o.durability = durability;
    return Open(path, what, o);
  }
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
  // The primary result code of the last call on the connection (SQLITE_ERROR, ...).
  int last_error() const;
  sqlite3* raw() const { return db_; }
  // The prepared statement for `sql`, prepared on first use and kept (nullptr on a bad
  // statement). Stmt uses it; the caller's lock guards it like the connection.
  sqlite3_stmt* Prepared(const char* sql);
  // The same, for a store that prepares its statements once when it opens and keeps the
  // handles (no lookup per call: the ledger's commit path); an error names `sql`'s failure.
  // The handle lives as long as this SqliteDb.
  Result<sqlite3_stmt*> Prepare(const char* sql);

 private:
  SqliteDb(sqlite3* db, std::string what, int lock_fd)
      : db_(db), what_(std::move(what)), lock_fd_(lock_fd) {}
  sqlite3* db_;
  std::string what_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
  int lock_fd_;  // Options::owner_lock_file, or -1; closed after the connection
};

// A cached prepared statement, reset for reuse when it goes out of scope (so one SQL text may
// not be in use twice at once). Bind indexes start at 1, columns at 0.
class Stmt {
 public:
  Stmt(SqliteDb& db, const char* sql);
  // Over a handle from SqliteDb::Prepare.
  explicit Stmt(sqlite3_stmt* prepared) : s_(prepared) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v);
  Stmt& Bind(int i, int64_t v);
  Stmt& BindNull(int i);
  // NULL for an empty string.
  Stmt& BindNullIfEmpty(int i, const std::string& v);
  // Bound without a copy: the bytes must stay valid until the statement is reset (the end of
  // the Stmt's scope). For large values on hot paths (ledger leaves).
  Stmt& BindTextRef(int i, std::string_view v);
  Stmt& BindBlobRef(int i, const void* data, size_t size);
  Stmt& BindBlobRef(int i, std::string_view v) { return BindBlobRef(i, v.data(), v.size()); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step();
  void Reset();
  std::string Text(int i) const;
  std::string Blob(int i) const;
  // The column's bytes, valid until the next Step or Reset.
  std::span<const uint8_t> BlobView(int i) const;
  int64_t Int(int i) const;
  bool IsNull(int i) const;

 private:
  sqlite3_stmt* s_ = nullptr;
};

inline constexpr int kSqliteRow = 100;   // SQLITE_ROW
inline constexpr int kSqliteDone = 101;  // SQLITE_DONE

}  // namespace custody::store
