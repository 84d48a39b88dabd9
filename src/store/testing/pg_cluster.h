// A private, throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, a
// `postgres` listening on 127.0.0.1 at a free port (and a Unix socket in that directory only),
// stopped and removed when the test process exits. Nothing touches a system cluster. As root
// (CI), initdb and postgres run as the unprivileged user `nobody` (PostgreSQL refuses root),
// through setpriv(1). The server binaries are Debian's (/usr/lib/postgresql/<version>/bin, from
// the `postgresql` package; scripts/install-deps.sh installs it); without them the tests fail,
// they are not skipped.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

struct pg_conn;  // libpq's PGconn

namespace custody::store::testing {

// A libpq connection a test makes as a database user would (a credential's role, say), closed
// with the object. ok() is false when the login was refused; Error() says why.
class PgTestConnection {
 public:
  static std::unique_ptr<PgTestConnection> Connect(const std::string& host, int port,
                                                   const std::string& dbname,
                                                   const std::string& user,
                                                   const std::string& password);
  ~PgTestConnection();
  PgTestConnection(const PgTestConnection&) = delete;
  PgTestConnection& operator=(const PgTestConnection&) = delete;

  bool ok() const;
  // true if the statement ran (a command, or a query with or without rows)
  bool Run(const std::string& sql);
  std::string Error() const;
  // Milliseconds from `since` until a statement on this connection fails (the server cut it),
  // polling every 5 ms for at most `limit`; -1 if it never did.
  int64_t MillisUntilCut(std::chrono::steady_clock::time_point since,
                         std::chrono::milliseconds limit);

 private:
  PgTestConnection() = default;
  pg_conn* conn_ = nullptr;
};

// Under CTest one cluster serves every test process: the fixture test `PgCluster.Start` runs
// `custody_pg_cluster start DIR` and `PgCluster.Stop` runs `custody_pg_cluster stop DIR`, and
// the tests find it through CUSTODY_TEST_PG_DIR=DIR. A test binary run by hand starts its own.
class PgCluster {
 public:
  // The shared cluster (CUSTODY_TEST_PG_DIR), or one of this process's, started on first use.
  static Result<PgCluster*> Shared();
  // custody_pg_cluster: start a cluster in `dir` (created; must not exist) that outlives this
  // process, and stop it again.
  static Status StartDetached(const std::string& dir);
  static Status StopDetached(const std::string& dir);

  // A cluster of the caller's own, stopped and removed with the object: for a test that stops
  // and restarts the server under load (the shared cluster serves other tests meanwhile).
  static Result<std::unique_ptr<PgCluster>> StartPrivate();
  ~PgCluster();
  // Fast shutdown of the server (open connections are cut); and a start again on the same port
  // with the same data.
  Status StopServer();
  Status StartServer();

  // A fresh, empty database on the cluster: its postgresql:// URL.
  Result<std::string> NewDatabase();

  int port() const { return port_; }

 private:
  PgCluster() = default;
  Status Start(const std::string& dir, bool detached);
  // Starts postgres on port_; false if it exited at once (its port taken).
  Result<bool> Serve(bool detached);
  void Stop();

  std::string dir_;
  std::string bin_;
  int port_ = 0;
  int pid_ = 0;
  int next_db_ = 0;
};

}  // namespace custody::store::testing
