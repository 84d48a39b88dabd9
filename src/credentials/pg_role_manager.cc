#include <libpq-fe.h>

#include <chrono>

#include "common/clock.h"
#include "credentials/grant_template.h"
#include "credentials/role_manager.h"

namespace custody::credentials {
namespace {

// PostgreSQL's primary message of a failed result (no statement text, so no password).
std::string PrimaryMessage(const PGresult* res, PGconn* conn) {
  const char* m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (m != nullptr) return m;
  std::string c = conn ? PQerrorMessage(conn) : "";
  while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
  return c.empty() ? "unknown error" : c;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

}  // namespace

Result<ConnectionInfo> ParseAdminUrl(const std::string& url, const std::string& key) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (opts == nullptr) {
    if (err) PQfreemem(err);
    return InvalidArgumentError(key + " is not a PostgreSQL connection URL");
  }
  ConnectionInfo info;
  bool has_password = false;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string k = o->keyword;
    if (k == "password") has_password = true;
    if (k == "host") info.host = o->val;
    if (k == "hostaddr" && info.host.empty()) info.host = o->val;
    if (k == "dbname") info.dbname = o->val;
    if (k == "port") {
      try {
        info.port = std::stoll(o->val);
      } catch (...) {
        PQconninfoFree(opts);
        return InvalidArgumentError(key + " has a port that is not a number");
      }
    }
  }
  PQconninfoFree(opts);
  if (has_password) {
    return InvalidArgumentError(key +
                                " must not hold a password: use admin_password_env or "
                                "admin_password_file");
  }
  if (info.host.empty()) info.host = "localhost";
  if (info.dbname.empty()) return InvalidArgumentError(key + " must name a database");
  return info;
}

PgRoleManager::PgRoleManager(std::string admin_url, std::string admin_password, std::string name,
                             std::chrono::milliseconds connect_timeout)
    : url_(std::move(admin_url)),
      password_(std::move(admin_password)),
      name_(std::move(name)),
      connect_timeout_(connect_timeout) {}

PgRoleManager::~PgRoleManager() {
  MutexLock lock(mu_);
  if (conn_ != nullptr) PQfinish(conn_);
}

Status PgRoleManager::Connect() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return OkStatus();
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  const std::string timeout =
      std::to_string(std::max<int64_t>(1, (connect_timeout_.count() + 999) / 1000));
  // dbname carries the URL (expand_dbname); the later keywords override what it says.
  const char* keys[] = {"dbname", "password", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url_.c_str(), password_.empty() ? nullptr : password_.c_str(),
                          timeout.c_str(), "custody-credentials", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    std::string why = PrimaryMessage(nullptr, c);
    if (c) PQfinish(c);
    return UnavailableError("credentials.postgres." + name_ +
                            ": cannot reach the database: " + why);
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  conn_ = c;
  return OkStatus();
}

Status PgRoleManager::Run(const std::string& what, const std::string& sql) {
  ResultPtr res(PQexec(conn_, sql.c_str()));
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return OkStatus();
  std::string msg =
      "credentials.postgres." + name_ + ": " + what + ": " + PrimaryMessage(res.get(), conn_);
  // A broken connection is the server's absence (retry); anything else is a refusal.
  if (PQstatus(conn_) != CONNECTION_OK) return UnavailableError(msg);
  return FailedPreconditionError(msg);
}

Result<std::string> PgRoleManager::Identifier(const std::string& name) {
  char* q = PQescapeIdentifier(conn_, name.data(), name.size());
  if (q == nullptr) return InvalidArgumentError("role name cannot be quoted");
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<std::string> PgRoleManager::Literal(const std::string& value) {
  char* q = PQescapeLiteral(conn_, value.data(), value.size());
  if (q == nullptr) return InternalError("a value cannot be quoted");
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<bool> PgRoleManager::RoleExists(const std::string& role) {
  const char* params[] = {role.c_str()};
  ResultPtr res(PQexecParams(conn_, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, nullptr, params,
                             nullptr, nullptr, 0));
  if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    std::string msg = "credentials.postgres." + name_ +
                      ": looking up a role: " + PrimaryMessage(res.get(), conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return UnavailableError(msg);
    return FailedPreconditionError(msg);
  }
  return PQntuples(res.get()) > 0;
}

Status PgRoleManager::CreateRole(const RoleSpec& spec) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(Connect());
  ASSIGN_OR_RETURN(std::string role, Identifier(spec.role));
  // The verifier, not the password, goes to the server (and so to any statement log).
  char* verifier =
      PQencryptPasswordConn(conn_, spec.password.c_str(), spec.role.c_str(), "scram-sha-256");
  if (verifier == nullptr) {
    return UnavailableError("credentials.postgres." + name_ +
                            ": cannot hash the password: " + PrimaryMessage(nullptr, conn_));
  }
  std::string v(verifier);
  PQfreemem(verifier);
  ASSIGN_OR_RETURN(std::string password, Literal(v));
  ASSIGN_OR_RETURN(
      std::string until,
      Literal(FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(spec.valid_until_ms)))));
  const std::string sql = "BEGIN; CREATE ROLE " + role + " LOGIN PASSWORD " + password +
                          " VALID UNTIL " + until + " CONNECTION LIMIT " +
                          std::to_string(spec.connection_limit) + "; " +
                          RenderGrant(spec.grant_template, role) + "; COMMIT";
  Status st = Run("creating role " + spec.role, sql);
  if (!st.ok() && PQstatus(conn_) == CONNECTION_OK) {
    // The simple query protocol stops at the failing statement: end its transaction.
    ResultPtr(PQexec(conn_, "ROLLBACK"));
  }
  return st;
}

Status PgRoleManager::DropRole(const std::string& name) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(Connect());
  ASSIGN_OR_RETURN(bool exists, RoleExists(name));
  if (!exists) return OkStatus();
  ASSIGN_OR_RETURN(std::string role, Identifier(name));
  ASSIGN_OR_RETURN(std::string literal, Literal(name));
  // No new session first, then the open ones cut; only then can nothing it does outlive it.
  RETURN_IF_ERROR(Run("refusing logins of role " + name, "ALTER ROLE " + role + " NOLOGIN"));
  RETURN_IF_ERROR(
      Run("terminating the sessions of role " + name,
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = " + literal));
  Status st = Run("dropping role " + name, "BEGIN; REASSIGN OWNED BY " + role +
                                               " TO CURRENT_USER; DROP OWNED BY " + role +
                                               "; DROP ROLE " + role + "; COMMIT");
  if (!st.ok() && PQstatus(conn_) == CONNECTION_OK) ResultPtr(PQexec(conn_, "ROLLBACK"));
  return st;
}

Status PgRoleManager::SetValidUntil(const std::string& name, int64_t valid_until_ms) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(Connect());
  ASSIGN_OR_RETURN(std::string role, Identifier(name));
  ASSIGN_OR_RETURN(
      std::string until,
      Literal(FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(valid_until_ms)))));
  return Run("renewing role " + name, "ALTER ROLE " + role + " VALID UNTIL " + until);
}

}  // namespace custody::credentials
