// PgDb: the one way the PostgreSQL backend talks to its server (libpq): a bounded pool of
// connections to one database, parameterised statements (never SQL built from values), one error
// map, transactions on one connection, and URLs that never show their password.
//
// Values travel as text, except bytea, which is sent in binary and read back from PostgreSQL's
// hex output. Thread-safe: each call borrows a connection from the pool (waiting up to
// PgOptions::acquire_timeout when all are busy); a connection that broke is reset on its next use.
//
// Errors: a unique violation is AlreadyExists; everything else, the server unreachable included,
// is Unavailable (a caller may try again), with what was being done and PostgreSQL's primary
// message (no parameters, no password, no URL beyond host, port and database).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace custody::store {

// One statement parameter.
struct PgParam {
  std::string value;
  bool null = false;
  bool binary = false;  // bytea
};
inline PgParam PgText(std::string_view v) { return PgParam{std::string(v)}; }
inline PgParam PgInt(int64_t v) { return PgParam{std::to_string(v)}; }
inline PgParam PgBytes(std::span<const uint8_t> v) {
  return PgParam{std::string(reinterpret_cast<const char*>(v.data()), v.size()), false, true};
}
inline PgParam PgNull() { return PgParam{"", true}; }
inline PgParam PgOptionalInt(const std::optional<int64_t>& v) { return v ? PgInt(*v) : PgNull(); }

// The rows of a statement's result (text format).
class PgRows {
 public:
  PgRows() = default;
  explicit PgRows(PGresult* result);
  PgRows(PgRows&&) noexcept;
  PgRows& operator=(PgRows&&) noexcept;
  ~PgRows();

  int size() const;
  bool IsNull(int row, int col) const;
  std::string_view Text(int row, int col) const;
  int64_t Int(int row, int col) const;                 // 0 for NULL or not a number
  std::vector<uint8_t> Bytes(int row, int col) const;  // a bytea column
  int64_t affected() const;                            // rows an INSERT/UPDATE/DELETE touched

 private:
  PGresult* result_ = nullptr;
};

struct PgOptions {
  size_t pool_size = 4;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds acquire_timeout{10000};
  std::string what = "PostgreSQL";  // names the store in errors, e.g. "token database"
  // Each connection prepares the statements it runs (once per distinct SQL text with at most
  // 64 parameters, up to 256 of them), so the server parses and plans each once per connection.
  // Off for a pooler that does not keep a server session per client (PgBouncer in transaction
  // mode before 1.21).
  bool prepare_statements = true;
  // false: ApplyPgSchema refuses an older schema instead of migrating it (custody serve without
  // --migrate; store/postgres/pg_schema.h).
  bool apply_schema_steps = true;
};

class PgConn;

// The VALUES list of a multi-row INSERT: `rows` groups of `columns` placeholders, numbered on
// ("($1, $2), ($3, $4)" for 2 and 2).
std::string PgValueRows(size_t rows, size_t columns);

// Opens one connection to `url` (the pool's way: a connect timeout, application_name "custody",
// notices dropped); errors name `what` and `where`, never the password. For a connection that is
// not pooled (PgChangeFeed's LISTEN). The caller PQfinish-es it.
Result<PGconn*> PgConnect(const std::string& url, const std::string& where, const std::string& what,
                          std::chrono::milliseconds connect_timeout);

class PgDb {
 public:
  // Connects once (so a wrong URL fails here, clearly) and keeps that connection in the pool.
  static Result<std::unique_ptr<PgDb>> Open(const std::string& url, PgOptions options = {});
  ~PgDb();
  PgDb(const PgDb&) = delete;
  PgDb& operator=(const PgDb&) = delete;

  // One statement on a pooled connection, in its own implicit transaction.
  Result<PgRows> Exec(std::string_view what, std::string_view sql,
                      std::span<const PgParam> params = {});
  Result<PgRows> Exec(std::string_view what, std::string_view sql,
                      std::initializer_list<PgParam> params) {
    return Exec(what, sql, std::span<const PgParam>(params.begin(), params.size()));
  }
  // BEGIN; body(conn); COMMIT on one connection (ROLLBACK when body fails or COMMIT fails).
  Status Transact(std::string_view what, const std::function<Status(PgConn&)>& body);
  // As Transact, with `first` (constant SQL without parameters, e.g. a lock and a read) sent in
  // the same round trip as BEGIN; body gets the rows of first's last statement. One round trip
  // fewer per statement in `first`. Each statement still takes its own snapshot (READ COMMITTED),
  // so a read after a lock sees what the lock's previous holder committed.
  Status TransactAfter(std::string_view what, std::string_view first,
                       const std::function<Status(PgConn&, const PgRows&)>& body);

  // How far `clock` is from the database server's clock, in ms: positive when `clock` is ahead.
  // Read around one query; half its round trip is taken out.
  Result<int64_t> ClockSkewMillis(const Clock& clock);
  // FailedPrecondition, naming both clocks' difference, when it is over `max` (a node that
  // would stamp its tokens and events with times the other nodes disagree with).
  Status CheckClockSkew(const Clock& clock, std::chrono::milliseconds max);

  // The URL without its password (or any other secret parameter): for logs and errors.
  static std::string Redact(std::string_view url);
  const std::string& where() const { return where_; }
  const PgOptions& options() const { return options_; }

 private:
  PgDb(std::string url, std::string where, PgOptions options);
  Result<std::unique_ptr<PgConn>> Acquire() EXCLUDES(mu_);
  void Release(std::unique_ptr<PgConn> conn) EXCLUDES(mu_);
  Result<std::unique_ptr<PgConn>> Connect();

  const std::string url_;
  const std::string where_;  // host:port/database
  const PgOptions options_;
  Mutex mu_;
  CondVar released_;
  std::vector<std::unique_ptr<PgConn>> idle_ GUARDED_BY(mu_);
  size_t open_ GUARDED_BY(mu_) = 0;  // idle + borrowed
};

// A connection borrowed for one transaction (PgDb::Transact).
class PgConn {
 public:
  explicit PgConn(PGconn* conn, std::string what, bool prepare_statements = false);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  Result<PgRows> Exec(std::string_view what, std::string_view sql,
                      std::span<const PgParam> params = {});
  Result<PgRows> Exec(std::string_view what, std::string_view sql,
                      std::initializer_list<PgParam> params) {
    return Exec(what, sql, std::span<const PgParam>(params.begin(), params.size()));
  }
  // Exec, then COMMIT, sent together (libpq's pipeline mode): the transaction's last statement
  // and its end in one round trip where they took two. Inside PgDb::Transact or TransactAfter,
  // which then do not commit again. The first error is returned: after a failed statement COMMIT
  // is skipped and the transaction is left aborted, for the caller to roll back.
  Status ExecThenCommit(std::string_view what, std::string_view sql,
                        std::span<const PgParam> params);
  // True once after ExecThenCommit committed (PgDb's transactions ask, then forget).
  bool TakeCommitted();
  // Several statements without parameters (schema steps), through the simple query protocol.
  Status ExecScript(std::string_view what, std::string_view sql);
  // As ExecScript, returning the rows of the last statement.
  Result<PgRows> QueryScript(std::string_view what, std::string_view sql);
  bool broken() const;

 private:
  struct Args;
  // The name `text` is prepared under on this connection (preparing it on first use), or null
  // when it is run unprepared.
  Result<const std::string*> Prepared(std::string_view what, const std::string& text, int n);

  PGconn* conn_;
  std::string what_;
  const bool prepare_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  bool committed_ = false;                                 // ExecThenCommit ended the transaction
  bool unusable_ = false;  // left in pipeline mode: dropped, never pooled again
};

}  // namespace custody::store
