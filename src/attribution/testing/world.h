// A whole attribution stack on fresh stores, for tests and benchmarks: a ledger (fsync per
// batch), an identity store and TokenService whose events go to that ledger, the attribution
// store and service. The stores are opened through store/stores.h: SQLite files in `dir` by
// default, or in memory. Helpers register agents and mint session tokens the way agents get them
// (client secret, JWT-SVID, RFC 8693 exchange). Not thread-safe except where the services are.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attribution/attribution_service.h"
#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/logger.h"
#include "common/random.h"
#include "common/status.h"
#include "identity/agent.h"
#include "store/attribution_store.h"
#include "store/identity_store.h"
#include "store/stores.h"

namespace custody::ledger {
class Ledger;
}
namespace custody::identity {
class TokenService;
}  // namespace custody::identity

namespace custody::attribution::testkit {

inline constexpr const char* kTestIssuer = "https://custody.test";
inline constexpr const char* kTestOrigin = "custody.test/ledger";

struct IssuedSession {
  std::string token;
  std::string sid;
};

class World {
 public:
  // Creates `dir` afresh (removing what was there); the destructor removes it. With
  // Backend::kMemory the stores are in memory and `dir` stays empty.
  static Result<std::unique_ptr<World>> Create(const std::filesystem::path& dir,
                                               AttributionOptions options = {},
                                               store::Backend backend = store::Backend::kSqlite,
                                               const std::string& postgres_url = "");
  ~World();

  // A new AttributionService over the same stores (a restart).
  Status Reopen(AttributionOptions options = {});

  // Another node of the same deployment (PostgreSQL only): its own identity and attribution
  // stores on the same database (its own connections), its own TokenService and
  // AttributionService (its own caches and in-memory state), over this World's ledger, since a
  // deployment has one ledger. The World is the first node; it owns the others and closes them
  // before its ledger.
  struct Node {
    std::unique_ptr<store::IdentityStore> ids;
    std::unique_ptr<identity::TokenService> tokens;
    std::unique_ptr<store::AttributionStore> store;
    std::unique_ptr<AttributionService> svc;
  };
  Result<Node*> AddNode(AttributionOptions options = {});
  // Closes the service and the attribution store, removes the store's file and opens an empty
  // one: an index that lost every row (the service is not reopened: Reopen()).
  Status LoseIndex();
  // Registers an agent with a generated client secret (owners and contact filled in).
  Status Register(const std::string& name, identity::ScopeSet grants,
                  std::vector<std::string> permissions, identity::Environment env);
  // A root session of `agent` (which needs assert_initiator) for alice@example.com, asserted.
  Result<IssuedSession> Root(const std::string& agent = "planner", const std::string& scope = "");
  // A child session of the session `parent_token`, for `agent`.
  Result<IssuedSession> Child(const std::string& parent_token, const std::string& agent,
                              const std::string& scope = "");
  // An authorize request for a tool call.
  static AuthorizeRequest Call(const std::string& token, const std::string& server,
                               const std::string& tool, const std::string& arguments = "{}");

  std::filesystem::path dir;
  SystemClock clock;
  SystemRandom random;
  NullLogger log;
  ErrorReporter errors{log};  // a test reads errors.Count(site) to see what was reported
  std::string verifier_key;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<store::IdentityStore> ids;
  std::unique_ptr<identity::TokenService> tokens;
  std::unique_ptr<store::AttributionStore> store;
  std::unique_ptr<AttributionService> svc;
  std::vector<std::unique_ptr<Node>> nodes;  // AddNode()

 private:
  Result<std::unique_ptr<identity::TokenService>> NewTokenService(store::IdentityStore& store);
  World() = default;
  Result<IssuedSession> Exchange(const std::string& agent, const std::string& subject,
                                 const std::string& subject_type, const std::string& scope);
  std::map<std::string, std::string> secrets_;
  store::Backend backend_ = store::Backend::kSqlite;
  std::string postgres_url_;
};

}  // namespace custody::attribution::testkit
