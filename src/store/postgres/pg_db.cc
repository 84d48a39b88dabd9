#include "store/postgres/pg_db.h"

#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/encoding.h"

namespace custody::store {
namespace {

// SQLSTATEs the callers distinguish (PostgreSQL, Appendix A).
constexpr std::string_view kUniqueViolation = "23505";

// PostgreSQL's primary message, one line; never the statement or its parameters.
// libpq's messages span lines (and indent the second with a tab): one line, single spaces.
std::string OneLine(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && (s.empty() || s.back() == ' ')) continue;
    s += c;
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string Primary(const PGresult* r, PGconn* conn) {
  const char* m = r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  return OneLine(m != nullptr ? m : (conn != nullptr ? PQerrorMessage(conn) : "no result"));
}

Status ResultError(std::string_view what, std::string_view op, const PGresult* r, PGconn* conn) {
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = std::string(what) + ": " + std::string(op) + ": " + Primary(r, conn);
  std::string_view sqlstate = state != nullptr ? state : "";
  if (sqlstate == kUniqueViolation) return AlreadyExistsError(msg);
  return UnavailableError(msg);
}

}  // namespace

// --- PgRows

PgRows::PgRows(PGresult* result) : result_(result) {}
PgRows::PgRows(PgRows&& o) noexcept : result_(o.result_) { o.result_ = nullptr; }
PgRows& PgRows::operator=(PgRows&& o) noexcept {
  if (this != &o) {
    if (result_ != nullptr) PQclear(result_);
    result_ = o.result_;
    o.result_ = nullptr;
  }
  return *this;
}
PgRows::~PgRows() {
  if (result_ != nullptr) PQclear(result_);
}

int PgRows::size() const { return result_ != nullptr ? PQntuples(result_) : 0; }

bool PgRows::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string_view PgRows::Text(int row, int col) const {
  return std::string_view(PQgetvalue(result_, row, col),
                          static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t PgRows::Int(int row, int col) const {
  std::string_view t = Text(row, col);
  int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::vector<uint8_t> PgRows::Bytes(int row, int col) const {
  std::string_view t = Text(row, col);
  if (t.size() < 2 || t.substr(0, 2) != "\\x") return {};  // bytea_output is hex (the default)
  auto bytes = HexDecode(t.substr(2));
  return bytes.ok() ? std::move(*bytes) : std::vector<uint8_t>{};
}

int64_t PgRows::affected() const {
  const char* n = result_ != nullptr ? PQcmdTuples(result_) : "";
  int64_t v = 0;
  std::from_chars(n, n + std::strlen(n), v);
  return v;
}

// --- PgConn

PgConn::PgConn(PGconn* conn, std::string what, bool prepare_statements)
    : conn_(conn), what_(std::move(what)), prepare_(prepare_statements) {}
PgConn::~PgConn() { PQfinish(conn_); }

bool PgConn::broken() const { return unusable_ || PQstatus(conn_) != CONNECTION_OK; }

// The statement's parameters as libpq takes them (pointers into `params`).
struct PgConn::Args {
  explicit Args(std::span<const PgParam> params)
      : values(params.size()), lengths(params.size()), formats(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].null ? nullptr : params[i].value.data();
      lengths[i] = static_cast<int>(params[i].value.size());
      formats[i] = params[i].binary ? 1 : 0;
    }
  }
  int n() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

Result<const std::string*> PgConn::Prepared(std::string_view what, const std::string& text, int n) {
  // Prepared once per connection: the server parses and plans the statement once. Statements
  // with many parameters (multi-row INSERTs, whose text varies with the row count) are not.
  constexpr size_t kMaxPreparedParams = 64, kMaxPrepared = 256;
  if (!prepare_ || static_cast<size_t>(n) > kMaxPreparedParams) return nullptr;
  auto it = prepared_.find(text);
  if (it == prepared_.end()) {
    if (prepared_.size() >= kMaxPrepared) return nullptr;
    std::string fresh = "custody_" + std::to_string(prepared_.size());
    PGresult* p = PQprepare(conn_, fresh.c_str(), text.c_str(), n, nullptr);
    PgRows prepared(p);  // owns p
    if (p == nullptr || PQresultStatus(p) != PGRES_COMMAND_OK) {
      return ResultError(what_, what, p, conn_);
    }
    it = prepared_.emplace(text, std::move(fresh)).first;
  }
  return &it->second;
}

Result<PgRows> PgConn::Exec(std::string_view what, std::string_view sql,
                            std::span<const PgParam> params) {
  const Args a(params);
  std::string text(sql);
  ASSIGN_OR_RETURN(const std::string* name, Prepared(what, text, a.n()));
  PGresult* r = name != nullptr ? PQexecPrepared(conn_, name->c_str(), a.n(), a.values.data(),
                                                 a.lengths.data(), a.formats.data(), 0)
                                : PQexecParams(conn_, text.c_str(), a.n(), nullptr, a.values.data(),
                                               a.lengths.data(), a.formats.data(), 0);
  PgRows rows(r);  // owns r from here
  ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ResultError(what_, what, r, conn_);
  }
  return rows;
}

Status PgConn::ExecThenCommit(std::string_view what, std::string_view sql,
                              std::span<const PgParam> params) {
  const Args a(params);
  std::string text(sql);
  ASSIGN_OR_RETURN(const std::string* name, Prepared(what, text, a.n()));
  if (PQenterPipelineMode(conn_) != 1) return ResultError(what_, what, nullptr, conn_);
  bool sent =
      (name != nullptr ? PQsendQueryPrepared(conn_, name->c_str(), a.n(), a.values.data(),
                                             a.lengths.data(), a.formats.data(), 0)
                       : PQsendQueryParams(conn_, text.c_str(), a.n(), nullptr, a.values.data(),
                                           a.lengths.data(), a.formats.data(), 0)) == 1;
  sent = sent && PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  sent = sent && PQpipelineSync(conn_) == 1;
  Status st = sent ? OkStatus() : ResultError(what_, what, nullptr, conn_);
  auto keep_first = [&st](Status next) {
    if (st.ok()) st = std::move(next);
  };
  // Each query's results end with a null; the sync's result comes last. The first error is the
  // one to report: after a failed statement COMMIT is skipped (PGRES_PIPELINE_ABORTED) and the
  // transaction stays open, aborted, for the caller to roll back.
  for (int q = 0; sent && q < 2; ++q) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {  // the connection is gone
      keep_first(ResultError(what_, q == 0 ? what : std::string_view("COMMIT"), nullptr, conn_));
      sent = false;
      break;
    }
    {
      PgRows owned(r);
      ExecStatusType rs = PQresultStatus(r);
      if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && rs != PGRES_PIPELINE_ABORTED) {
        keep_first(ResultError(what_, q == 0 ? what : std::string_view("COMMIT"), r, conn_));
      }
    }
    while ((r = PQgetResult(conn_)) != nullptr) PQclear(r);
  }
  if (sent) {
    PgRows sync(PQgetResult(conn_));  // PGRES_PIPELINE_SYNC
  }
  if (PQexitPipelineMode(conn_) != 1) {
    // Results left uncollected (the server cut the connection mid-pipeline, say): the
    // connection is unusable for anything else and must not go back to the pool.
    keep_first(ResultError(what_, what, nullptr, conn_));
    unusable_ = true;
  }
  if (st.ok()) committed_ = true;
  return st;
}

bool PgConn::TakeCommitted() { return std::exchange(committed_, false); }

Status PgConn::ExecScript(std::string_view what, std::string_view sql) {
  return QueryScript(what, sql).status();
}

Result<PgRows> PgConn::QueryScript(std::string_view what, std::string_view sql) {
  std::string text(sql);
  PGresult* r = PQexec(conn_, text.c_str());  // the result of the last statement, or the error
  PgRows rows(r);                             // owns r from here
  ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ResultError(what_, what, r, conn_);
  return rows;
}

// --- PgDb

std::string PgDb::Redact(std::string_view url) {
  // postgresql://user:password@host:port/db?params: drop the password and every parameter
  // (a parameter may carry a password or a key file's path too).
  std::string u(url.substr(0, url.find('?')));
  size_t scheme = u.find("://");
  if (scheme == std::string::npos) return "(a PostgreSQL connection string)";
  size_t at = u.find('@', scheme + 3);
  if (at != std::string::npos) {
    size_t colon = u.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) u.erase(colon, at - colon);
  }
  return u;
}

PgDb::PgDb(std::string url, std::string where, PgOptions options)
    : url_(std::move(url)), where_(std::move(where)), options_(std::move(options)) {}

PgDb::~PgDb() = default;

Result<std::unique_ptr<PgDb>> PgDb::Open(const std::string& url, PgOptions options) {
  if (url.rfind("postgresql://", 0) != 0 && url.rfind("postgres://", 0) != 0) {
    return InvalidArgumentError(options.what + ": the URL must start with postgresql:// (got " +
                                Redact(url) + ")");
  }
  if (options.pool_size == 0) options.pool_size = 1;
  std::unique_ptr<PgDb> db(new PgDb(url, Redact(url), std::move(options)));
  ASSIGN_OR_RETURN(std::unique_ptr<PgConn> first, db->Connect());
  MutexLock lock(db->mu_);
  db->idle_.push_back(std::move(first));
  db->open_ = 1;
  return db;
}

std::string PgValueRows(size_t rows, size_t columns) {
  std::string out;
  for (size_t r = 0; r < rows; ++r) {
    out += r == 0 ? "(" : ", (";
    for (size_t c = 1; c <= columns; ++c) {
      out += "$" + std::to_string(r * columns + c) + (c == columns ? ")" : ", ");
    }
  }
  return out;
}

Result<PGconn*> PgConnect(const std::string& url, const std::string& where, const std::string& what,
                          std::chrono::milliseconds connect_timeout) {
  std::string timeout = std::to_string(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(connect_timeout).count()));
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), "custody", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return UnavailableError(what + ": out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    // libpq's message names host and port, never the password.
    std::string m = OneLine(PQerrorMessage(c));
    PQfinish(c);
    return UnavailableError(what + ": cannot connect to " + where + ": " + m);
  }
  // PostgreSQL's notices (e.g. "relation ... already exists, skipping") would go to stderr by
  // default, unformatted, into the server's log; none of them is an error, so they are dropped.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return c;
}

Result<std::unique_ptr<PgConn>> PgDb::Connect() {
  ASSIGN_OR_RETURN(PGconn * c, PgConnect(url_, where_, options_.what, options_.connect_timeout));
  return std::make_unique<PgConn>(c, options_.what, options_.prepare_statements);
}

Result<std::unique_ptr<PgConn>> PgDb::Acquire() {
  {
    MutexLock lock(mu_);
    bool ready = released_.WaitFor(mu_, options_.acquire_timeout, [&]() REQUIRES(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    });
    if (!ready) {
      return UnavailableError(options_.what + ": every connection to " + where_ + " is busy");
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConn> c = std::move(idle_.back());
      idle_.pop_back();
      if (!c->broken()) return c;
      --open_;  // dropped; a new one below
    }
    ++open_;
  }
  auto c = Connect();
  if (!c.ok()) {
    MutexLock lock(mu_);
    --open_;
    released_.NotifyOne();
  }
  return c;
}

void PgDb::Release(std::unique_ptr<PgConn> conn) {
  MutexLock lock(mu_);
  if (conn->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  released_.NotifyOne();
}

Result<PgRows> PgDb::Exec(std::string_view what, std::string_view sql,
                          std::span<const PgParam> params) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConn> c, Acquire());
  Result<PgRows> rows = c->Exec(what, sql, params);
  Release(std::move(c));
  return rows;
}

Result<int64_t> PgDb::ClockSkewMillis(const Clock& clock) {
  const int64_t before = UnixMillis(clock.Now());
  ASSIGN_OR_RETURN(PgRows rows,
                   Exec("read the server's clock",
                        "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint"));
  const int64_t after = UnixMillis(clock.Now());
  return before + (after - before) / 2 - rows.Int(0, 0);
}

Status PgDb::CheckClockSkew(const Clock& clock, std::chrono::milliseconds max) {
  ASSIGN_OR_RETURN(int64_t skew, ClockSkewMillis(clock));
  if (std::abs(skew) <= max.count()) return OkStatus();
  return FailedPreconditionError(
      "this node's clock is " + std::to_string(std::abs(skew)) + " ms " +
      (skew > 0 ? "ahead of" : "behind") + " the database server's at " + where_ +
      " (storage.max_clock_skew_ms is " + std::to_string(max.count()) +
      "): fix its time (NTP) before it issues tokens or records events the other nodes would "
      "date differently");
}

Status PgDb::Transact(std::string_view what, const std::function<Status(PgConn&)>& body) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConn> c, Acquire());
  Status st = c->Exec(what, "BEGIN").status();
  if (st.ok()) {
    st = body(*c);
    if (st.ok()) {
      if (!c->TakeCommitted()) st = c->Exec(what, "COMMIT").status();
    } else {
      (void)c->Exec(what, "ROLLBACK");  // the body's error is the one to report
    }
  }
  Release(std::move(c));
  return st;
}

Status PgDb::TransactAfter(std::string_view what, std::string_view first,
                           const std::function<Status(PgConn&, const PgRows&)>& body) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConn> c, Acquire());
  Result<PgRows> begun = c->QueryScript(what, std::string("BEGIN; ") + std::string(first));
  Status st = begun.status();
  if (st.ok()) {
    st = body(*c, *begun);
    if (st.ok() && !c->TakeCommitted()) st = c->Exec(what, "COMMIT").status();
  }
  // After a failed BEGIN script the transaction may be open and aborted (a failed lock).
  if (!st.ok()) (void)c->Exec(what, "ROLLBACK");  // the first error is the one to report
  Release(std::move(c));
  return st;
}

}  // namespace custody::store
