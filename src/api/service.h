// Service: `custody serve` as a library. It opens the data directory (ledger, signing key, token
// store), builds the router (ledger, tlog tiles, ops), wires metrics and access logs, and runs
// the HTTP server. Tests can run it in-process; the CLI runs it until SIGTERM/SIGINT.
//
// Shutdown order: stop accepting and drain in-flight requests, then Ledger::Close() (commits
// anything queued), so every acknowledged append is durable and nothing is half-written.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/auth.h"
#include "api/config.h"
#include "common/clock.h"
#include "common/logger.h"
#include "common/random.h"
#include "common/status.h"

namespace custody::api {

struct ServiceOptions {
  // Create the data directory (0700) if missing and, if the token store has no usable admin
  // token, issue one (returned once by bootstrap_token()).
  bool quickstart = false;
  // PostgreSQL: bring an older schema to this binary's version (`custody serve --migrate`);
  // false refuses it, naming `custody migrate`. SQLite files always migrate.
  bool migrate = false;
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> Open(const Config& config, const ServiceOptions& options,
                                               const Clock& clock, Random& random, Logger& log);
  ~Service();

  Status Start();
  // Graceful stop (see above). Idempotent.
  void Shutdown();

  uint16_t port() const;
  bool tls() const;
  // identity.issuer as every part of the service uses it: the configured one, else the URL it
  // listens on (decided in Open, before anything can mint a token; port 0 resolved).
  const std::string& issuer() const;
  int threads() const;
  std::string VerifierKey() const;
  // The token issued by quickstart, if any (print it once, then forget it).
  const std::optional<IssuedToken>& bootstrap_token() const;

 private:
  struct Impl;
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates `dir` with mode 0700 if it does not exist; refuses one readable by group or others.
Status EnsurePrivateDir(const std::string& dir, bool create);

}  // namespace custody::api
