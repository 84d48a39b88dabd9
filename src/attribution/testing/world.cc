#include "attribution/testing/world.h"

#include "crypto/ed25519.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "store/stores.h"

namespace custody::attribution::testkit {

Result<std::unique_ptr<World>> World::Create(const std::filesystem::path& dir,
                                             AttributionOptions options, store::Backend backend,
                                             const std::string& postgres_url) {
  std::unique_ptr<World> w(new World());
  w->dir = dir;
  w->backend_ = backend;
  w->postgres_url_ = postgres_url;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create " + dir.string() + ": " + ec.message());
  store::StorageOptions files = store::StorageOptions::InDirectory(dir.string());
  files.backend = backend;
  files.postgres_url = postgres_url;
  ASSIGN_OR_RETURN(store::Stores stores, store::OpenStores(files));
  ASSIGN_OR_RETURN(auto key, crypto::Ed25519PrivateKey::Generate());
  w->verifier_key =
      ledger::NoteVerifier::FromPublicKey(kTestOrigin, key.public_key()).VerifierKey();
  ledger::LedgerOptions lo;
  lo.origin = kTestOrigin;
  ASSIGN_OR_RETURN(w->ledger, ledger::Ledger::Open(std::move(stores.ledger), std::move(key), lo));
  w->ids = std::move(stores.identity);
  ASSIGN_OR_RETURN(w->tokens, w->NewTokenService(*w->ids));
  w->store = std::move(stores.attribution);
  RETURN_IF_ERROR(w->Reopen(std::move(options)));
  return w;
}

Result<std::unique_ptr<identity::TokenService>> World::NewTokenService(
    store::IdentityStore& store) {
  identity::TokenServiceOptions o;
  o.trust_domain = "custody.test";
  o.issuer = kTestIssuer;
  ledger::Ledger* led = ledger.get();
  return identity::TokenService::Create(
      store, clock, random, errors,
      [led](const std::string& e) { return events::Recorder(*led).RecordText(e).status(); }, o);
}

Result<World::Node*> World::AddNode(AttributionOptions options) {
  if (backend_ != store::Backend::kPostgres) {
    return FailedPreconditionError("a second node needs a shared store (Backend::kPostgres)");
  }
  store::StorageOptions files = store::StorageOptions::InDirectory(dir.string());
  files.backend = backend_;
  files.postgres_url = postgres_url_;
  auto node = std::make_unique<Node>();
  ASSIGN_OR_RETURN(node->ids, store::OpenIdentityStore(files));
  ASSIGN_OR_RETURN(node->tokens, NewTokenService(*node->ids));
  ASSIGN_OR_RETURN(node->store, store::OpenAttributionStore(files));
  ASSIGN_OR_RETURN(node->svc,
                   AttributionService::Create(*node->tokens, *ledger, *node->store, clock, random,
                                              errors, std::move(options)));
  nodes.push_back(std::move(node));
  return nodes.back().get();
}

World::~World() {
  // As `custody serve` stops: the ledger runs what is queued while the services are alive.
  if (ledger) ledger->Close();
  nodes.clear();  // each node's service before its stores (Node's member order)
  svc.reset();
  tokens.reset();
  ledger.reset();
  store.reset();  // every store closed before its directory goes
  ids.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

Status World::Reopen(AttributionOptions options) {
  svc.reset();
  ASSIGN_OR_RETURN(svc, AttributionService::Create(*tokens, *ledger, *store, clock, random, errors,
                                                   std::move(options)));
  return OkStatus();
}

Status World::LoseIndex() {
  svc.reset();
  store.reset();
  store::StorageOptions files = store::StorageOptions::InDirectory(dir.string());
  files.backend = backend_;
  files.postgres_url = postgres_url_;
  if (backend_ == store::Backend::kSqlite) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      std::filesystem::remove(files.attribution_path + suffix, ec);
      if (ec) return UnavailableError("cannot remove the index: " + ec.message());
    }
  }
  ASSIGN_OR_RETURN(store, store::OpenAttributionStore(files));
  return OkStatus();
}

Status World::Register(const std::string& name, identity::ScopeSet grants,
                       std::vector<std::string> permissions, identity::Environment env) {
  identity::Agent a;
  a.name = name;
  a.environment = env;
  a.business_owner = "ops";
  a.technical_owner = "platform";
  a.revocation_contact = "sec@example.com";
  a.grants = std::move(grants);
  a.permissions = std::move(permissions);
  ASSIGN_OR_RETURN(auto r, tokens->RegisterAgent(a, true, "admin"));
  secrets_[name] = r.client_secret;
  return OkStatus();
}

Result<IssuedSession> World::Exchange(const std::string& agent, const std::string& subject,
                                      const std::string& subject_type, const std::string& scope) {
  auto client = tokens->AuthenticateClient(agent, "", "", secrets_[agent]);
  if (!client.ok()) return UnauthenticatedError(agent + ": " + client.error.description);
  auto svid = tokens->IssueSvid(*client.value, kTestIssuer);
  if (!svid.ok()) return UnauthenticatedError(agent + ": " + svid.error.description);
  identity::ExchangeRequest r;
  r.subject_token = subject;
  r.subject_token_type = subject_type;
  r.actor_token = svid.value->access_token;
  r.actor_token_type = std::string(identity::kTokenTypeJwt);
  r.audience = "custody";
  r.scope = scope;
  auto t = tokens->Exchange(*client.value, r);
  if (!t.ok()) return PermissionDeniedError(agent + ": " + t.error.description);
  return IssuedSession{t.value->access_token, t.value->sid};
}

Result<IssuedSession> World::Root(const std::string& agent, const std::string& scope) {
  return Exchange(agent, R"({"sub":"alice@example.com","iss":"https://hr.example.com"})",
                  std::string(identity::kTokenTypeInitiatorAssertion), scope);
}

Result<IssuedSession> World::Child(const std::string& parent_token, const std::string& agent,
                                   const std::string& scope) {
  return Exchange(agent, parent_token, std::string(identity::kTokenTypeAccessToken), scope);
}

AuthorizeRequest World::Call(const std::string& token, const std::string& server,
                             const std::string& tool, const std::string& arguments) {
  AuthorizeRequest r;
  r.token = token;
  r.target.server = server;
  r.target.tool = tool;
  r.arguments_json = arguments;
  return r;
}

}  // namespace custody::attribution::testkit
