// RoleManager: creates and removes the short-lived login roles of just-in-time credentials in
// one database, over its administrative connection. PgRoleManager is the PostgreSQL one (libpq);
// tests may put another behind CredentialService.
//
// Creation is one transaction: CREATE ROLE … LOGIN PASSWORD … VALID UNTIL … CONNECTION LIMIT,
// then the access level's grant; either both hold or neither. The password is sent as a
// SCRAM-SHA-256 verifier computed here (PQencryptPasswordConn), so the clear password never
// reaches the server, its statement log included. Removal: NOLOGIN first (no new session), then
// every backend of the role is terminated, what it owns is reassigned to the administrative user
// and its privileges dropped, and the role is dropped. Removing a role that does not exist
// succeeds (a retry after a success that was not heard). Errors never carry the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/mutex.h"
#include "common/status.h"

typedef struct pg_conn PGconn;

namespace custody::credentials {

struct RoleSpec {
  std::string role;
  std::string password;
  int64_t valid_until_ms = 0;  // Unix ms
  int64_t connection_limit = 1;
  std::string grant_template;  // credentials/grant_template.h
};

class RoleManager {
 public:
  virtual ~RoleManager() = default;
  virtual Status CreateRole(const RoleSpec& spec) = 0;
  virtual Status DropRole(const std::string& role) = 0;
  // Moves the role's VALID UNTIL (renewal).
  virtual Status SetValidUntil(const std::string& role, int64_t valid_until_ms) = 0;
};

// What a client connects to: taken from the administrative URL.
struct ConnectionInfo {
  std::string host;
  int64_t port = 5432;
  std::string dbname;
};

// Parses a postgresql:// URL (libpq's PQconninfoParse). InvalidArgument, naming `key`, for a
// URL libpq refuses or one that holds a password (it belongs in the environment or a file).
Result<ConnectionInfo> ParseAdminUrl(const std::string& url, const std::string& key);

// Thread-safe: one administrative connection, used by one call at a time, reopened when broken.
class PgRoleManager final : public RoleManager {
 public:
  PgRoleManager(std::string admin_url, std::string admin_password, std::string name,
                std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(5000));
  ~PgRoleManager() override;
  Status CreateRole(const RoleSpec& spec) override EXCLUDES(mu_);
  Status DropRole(const std::string& role) override EXCLUDES(mu_);
  Status SetValidUntil(const std::string& role, int64_t valid_until_ms) override EXCLUDES(mu_);

 private:
  Status Connect() REQUIRES(mu_);
  // One statement (or several, through the simple query protocol), its error naming `what`.
  Status Run(const std::string& what, const std::string& sql) REQUIRES(mu_);
  Result<bool> RoleExists(const std::string& role) REQUIRES(mu_);
  Result<std::string> Identifier(const std::string& name) REQUIRES(mu_);
  Result<std::string> Literal(const std::string& value) REQUIRES(mu_);

  const std::string url_;
  const std::string password_;  // the administrative password; never logged
  const std::string name_;      // [credentials.postgres.NAME], for errors
  const std::chrono::milliseconds connect_timeout_;
  Mutex mu_;
  PGconn* conn_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace custody::credentials
