// `custody token keygen|svid|exchange`: a session token for a script or a CI job without the
// JWT dance. `svid` authenticates as a registered agent (an RFC 7523 client assertion signed
// with its private key, or its client secret) and prints the JWT-SVID the server issues;
// `exchange` runs the RFC 8693 exchange at the running server's /oauth2/token and prints the
// session token. Each prints the token alone on stdout, so `$(custody token …)` is the token.
// Refusals go to stderr as "custody: token …: <RFC 6749 error>: <description> (HTTP n)" with
// exit code 1 (usage errors: 2); no message ever holds a token, secret or key.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/server_client.h"
#include "cli/token_client.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/uuid.h"
#include "crypto/jose.h"
#include "crypto/key_file.h"
#include "identity/token_service.h"

namespace custody::cli {
namespace {

namespace json = boost::json;
using Form = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kAssertionLifetimeS = 60;

struct TokenFlags {
  ServerFlags server;  // --server, --ca-file (no admin token: these calls authenticate the agent)
  std::string issuer;  // --issuer; empty: the server's metadata says
  std::string agent;
  std::string key_file;
  std::string secret_file;
  std::string audience;
  std::string subject_token, subject_token_type, actor_token, scope, objective;
  int64_t lifetime = 0;
  std::string svid_lifetime;  // svid --lifetime: 90, 90s, 5m, 1h
  std::string out;            // keygen
};

// A --lifetime of `token svid`: whole seconds, minutes or hours (90, 90s, 5m, 1h), positive;
// nullopt when malformed. The server bounds it (identity.svid_lifetime_s) and says so.
std::optional<int64_t> ParseLifetimeSeconds(std::string_view text) {
  int64_t unit = 1;
  if (!text.empty() && (text.back() == 's' || text.back() == 'm' || text.back() == 'h')) {
    unit = text.back() == 'h' ? 3600 : text.back() == 'm' ? 60 : 1;
    text.remove_suffix(1);
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n <= 0 ||
      n > 366 * 24 * 3600 / unit) {
    return std::nullopt;
  }
  return n * unit;
}

void AddConnectionOptions(CLI::App* cmd, TokenFlags& f) {
  cmd->add_option(
      "--server", f.server.url,
      "Custody server URL (or CUSTODY_SERVER; default " + std::string(kDefaultServerUrl) + ")");
  cmd->add_option("--ca-file", f.server.ca_file, "PEM trust anchors for an https:// server");
  cmd->add_option("--issuer", f.issuer,
                  "The server's identity.issuer, the aud of client assertions (<issuer>/oauth2/"
                  "token) and of SVIDs (default: the server's /.well-known/"
                  "oauth-authorization-server, else " +
                      std::string(kDefaultIssuer) + ")")
      ->envname("CUSTODY_IDENTITY_ISSUER");
}

void AddClientOptions(CLI::App* cmd, TokenFlags& f, bool agent_required) {
  auto* agent = cmd->add_option("--agent", f.agent, "The registered agent (the OAuth client_id)");
  if (agent_required) agent->required();
  cmd->add_option("--key", f.key_file,
                  "The agent's private key: PKCS#8 PEM (custody token keygen) or a private "
                  "EC P-256 JWK (private_key_jwt)");
  cmd->add_option("--client-secret-file", f.secret_file,
                  "A file holding the agent's client secret (agents registered with "
                  "--client-secret)");
}

std::string Read(const std::string& path, std::string_view flag) {
  auto text = crypto::ReadFileToString(path);
  if (!text.ok()) FailWith(std::string(flag) + ": " + text.status().message(), 2);
  return *text;
}

// --issuer if given, else the server's RFC 8414 metadata, else the default of servers without it.
TokenEndpoint ResolveTokenEndpoint(const TokenFlags& f, const std::string& what) {
  if (!f.issuer.empty()) return TokenEndpoint{f.issuer, f.issuer + "/oauth2/token"};
  auto metadata = GetOptionalDocument(f.server, "/.well-known/oauth-authorization-server", what);
  if (metadata) {
    if (auto e = TokenEndpointFromMetadata(*metadata)) return *e;
  }
  std::string issuer(kDefaultIssuer);
  return TokenEndpoint{issuer, issuer + "/oauth2/token"};
}

// The agent's credential, read and checked before anything is sent.
struct Credential {
  std::optional<ClientKey> key;
  std::string secret;
};

Credential LoadCredential(const TokenFlags& f, const std::string& what) {
  if (f.key_file.empty() == f.secret_file.empty()) {
    FailWith(what + ": give --key FILE (the agent's private key) or --client-secret-file FILE", 2);
  }
  Credential c;
  if (!f.secret_file.empty()) {
    std::istringstream none;
    auto secret = ReadTokenArgument("@" + f.secret_file, none);
    if (!secret.ok()) FailWith("--client-secret-file: " + secret.status().message(), 2);
    c.secret = std::move(*secret);
    return c;
  }
  auto key = ParseClientKey(Read(f.key_file, "--key"));
  if (!key.ok()) FailWith("--key: " + f.key_file + ": " + key.status().message(), 2);
  c.key = std::move(*key);
  return c;
}

// client_id and the client's credential: a fresh client assertion addressed to the server's
// token endpoint (resolved only then), or the secret. `issuer` (if given) receives the issuer.
Form ClientAuth(const TokenFlags& f, const Credential& c, const std::string& what,
                std::string* issuer = nullptr) {
  Form form;
  form.emplace_back("client_id", f.agent);
  if (!c.key) {
    form.emplace_back("client_secret", c.secret);
    if (issuer != nullptr) *issuer = ResolveTokenEndpoint(f, what).issuer;
    return form;
  }
  TokenEndpoint endpoint = ResolveTokenEndpoint(f, what);
  if (issuer != nullptr) *issuer = endpoint.issuer;
  SystemClock clock;
  SystemRandom random;
  UuidV7Generator ids(clock, random);
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
  auto assertion = SignClientAssertion(*c.key, f.agent, endpoint.url, now, kAssertionLifetimeS,
                                       ids.NextString());
  if (!assertion.ok()) FailWith(what + ": cannot sign the client assertion", 1);
  form.emplace_back("client_assertion_type", identity::kClientAssertionTypeJwtBearer);
  form.emplace_back("client_assertion", *assertion);
  return form;
}

// The answer's access_token, alone on stdout.
void PrintAccessToken(const json::value& answer, const std::string& what) {
  const json::object* o = answer.if_object();
  const json::value* token = o != nullptr ? o->if_contains("access_token") : nullptr;
  if (token == nullptr || !token->is_string() || token->as_string().empty()) {
    FailWith(what + ": the server's answer has no access_token");
  }
  std::cout << std::string_view(token->as_string()) << "\n" << std::flush;
}

std::string TokenArgument(const std::string& arg, std::string_view flag) {
  auto token = ReadTokenArgument(arg, std::cin);
  if (!token.ok()) FailWith(std::string(flag) + ": " + token.status().message(), 2);
  return *token;
}

void Keygen(const TokenFlags& f) {
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  if (!key.ok()) FailWith("token keygen: " + key.status().message());
  auto pem = key->ToPkcs8Pem();
  if (!pem.ok()) FailWith("token keygen: " + pem.status().message());
  if (Status s = crypto::WriteSecretFile(f.out, *pem); !s.ok()) {
    FailWith("token keygen: " + s.message());
  }
  // The key's RFC 7638 thumbprint as its kid: a PEM has no kid, and the server then uses the
  // registered key whatever its kid.
  std::cout << crypto::EcPublicJwkJson(key->public_key(), crypto::JwkThumbprint(key->public_key()))
            << "\n"
            << std::flush;
}

void Svid(const TokenFlags& f) {
  const std::string what = "token svid";
  std::optional<int64_t> lifetime;
  if (!f.svid_lifetime.empty()) {
    lifetime = ParseLifetimeSeconds(f.svid_lifetime);
    if (!lifetime) {
      FailWith("--lifetime: expected a positive duration such as 90, 90s, 5m or 1h, not " +
                   f.svid_lifetime,
               2);
    }
  }
  Credential credential = LoadCredential(f, what);
  std::string issuer;
  Form form = ClientAuth(f, credential, what, f.audience.empty() ? &issuer : nullptr);
  form.emplace_back("grant_type", "client_credentials");
  form.emplace_back("audience", f.audience.empty() ? issuer : f.audience);
  if (lifetime) form.emplace_back("requested_lifetime", std::to_string(*lifetime));
  PrintAccessToken(PostServerForm(f.server, "/oauth2/token", form, what), what);
}

void Exchange(TokenFlags f) {
  const std::string what = "token exchange";
  if (f.subject_token == "-" && f.actor_token == "-") {
    FailWith("--subject-token and --actor-token cannot both be read from stdin", 2);
  }
  std::string subject = TokenArgument(f.subject_token, "--subject-token");
  std::string actor = TokenArgument(f.actor_token, "--actor-token");
  auto type = SubjectTokenType(f.subject_token_type, subject);
  if (!type.ok()) FailWith("--subject-token: " + type.status().message(), 2);
  if (f.agent.empty()) {
    auto agent = AgentOfSvid(actor);
    if (!agent.ok()) FailWith("--agent NAME is needed: " + agent.status().message(), 2);
    f.agent = *agent;
  }
  Credential credential = LoadCredential(f, what);
  Form form = ClientAuth(f, credential, what);
  form.insert(form.end(), {{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                           {"subject_token", subject},
                           {"subject_token_type", *type},
                           {"actor_token", actor},
                           {"actor_token_type", std::string(identity::kTokenTypeJwt)},
                           {"audience", f.audience}});
  if (!f.scope.empty()) form.emplace_back("scope", f.scope);
  if (!f.objective.empty()) form.emplace_back("objective", f.objective);
  if (f.lifetime > 0) form.emplace_back("requested_lifetime", std::to_string(f.lifetime));
  PrintAccessToken(PostServerForm(f.server, "/oauth2/token", form, what), what);
}

}  // namespace

void RegisterTokenCommands(CLI::App& app) {
  auto f = std::make_shared<TokenFlags>();
  auto* token = app.add_subcommand(
      "token", "Agent tokens for scripts: a JWT-SVID, a session token (prints the token only)");
  token->require_subcommand(1);

  auto* keygen = token->add_subcommand(
      "keygen",
      "Create an agent key: the private key to --out (mode 0600), the public JWK on "
      "stdout (for `custody agent register --jwk`)");
  keygen
      ->add_option("--out", f->out,
                   "Where to write the private key (PKCS#8 PEM; never "
                   "overwritten)")
      ->required();
  keygen->callback([f] { Keygen(*f); });

  auto* svid = token->add_subcommand(
      "svid", "Get a JWT-SVID for a new instance of a registered agent (prints it only)");
  AddConnectionOptions(svid, *f);
  AddClientOptions(svid, *f, /*agent_required=*/true);
  svid->add_option("--audience", f->audience,
                   "The SVID's aud (default: the issuer, what /oauth2/token expects of an actor "
                   "token)");
  svid->add_option("--lifetime", f->svid_lifetime,
                   "How long the SVID lives: 90, 90s, 5m, 1h (default and maximum: the server's "
                   "identity.svid_lifetime_s; past it the server refuses)");
  svid->callback([f] { Svid(*f); });

  auto* exchange = token->add_subcommand(
      "exchange", "RFC 8693 token exchange for a delegated session token (prints it only)");
  AddConnectionOptions(exchange, *f);
  AddClientOptions(exchange, *f, /*agent_required=*/false);
  exchange
      ->add_option("--subject-token", f->subject_token,
                   "Who the work is for: TOKEN, @FILE or - (stdin). A parent session token, an "
                   "ID token, or an initiator assertion {\"sub\",\"iss\"}")
      ->required();
  exchange->add_option("--subject-token-type", f->subject_token_type,
                       "access_token, id_token, jwt, initiator-assertion or a URN (default: "
                       "inferred from the token)");
  exchange
      ->add_option("--actor-token", f->actor_token,
                   "The acting instance's JWT-SVID (custody token svid): TOKEN, @FILE or -")
      ->required();
  exchange->add_option("--scope", f->scope,
                       "Space-separated scopes (default: all the agent and parent allow)");
  exchange->add_option("--audience", f->audience, "The session token's aud")->required();
  exchange->add_option("--objective", f->objective, "The task (only its SHA-256 is kept)");
  exchange->add_option("--lifetime", f->lifetime,
                       "Requested lifetime in seconds (default: the agent's maximum)");
  exchange->callback([f] { Exchange(*f); });
}

}  // namespace custody::cli
