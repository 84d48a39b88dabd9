#include "api/identity_routes.h"

#include <boost/json.hpp>

#include "common/json_array.h"
#include "common/json_parse.h"
#include "crypto/key_file.h"
#include "identity/authorization_server.h"
#include "identity/session_json.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using http::AuthRequirement;
using http::Request;
using http::Responder;
using http::Response;
using identity::Agent;
using identity::Session;
using identity::TokenService;

constexpr const char* kForm = "application/x-www-form-urlencoded";
constexpr const char* kJson = "application/json";

Response OAuthErrorResponse(const identity::OAuthError& e) {
  json::object o{{"error", e.error}};
  if (!e.description.empty()) o["error_description"] = e.description;
  Response r = Response::Json(e.http_status, json::serialize(o));
  r.headers.Set("cache-control", "no-store");
  if (e.http_status == 401) r.headers.Set("www-authenticate", "Bearer realm=\"custody\"");
  if (e.http_status == 503) r.headers.Set("retry-after", "1");  // the ledger cannot commit yet
  return r;
}

Response TokenResponse(const identity::IssuedToken& t) {
  json::object o{{"access_token", t.access_token},
                 {"token_type", t.token_type},
                 {"issued_token_type", t.issued_token_type},
                 {"expires_in", t.expires_in}};
  if (!t.scope.empty()) o["scope"] = t.scope;
  Response r = Response::Json(200, json::serialize(o));
  r.headers.Set("cache-control", "no-store");
  return r;
}

json::object AgentJson(const Agent& a) {
  return json::object{{"name", a.name},
                      {"description", a.description},
                      {"environment", std::string(identity::EnvironmentName(a.environment))},
                      {"business_owner", a.business_owner},
                      {"technical_owner", a.technical_owner},
                      {"sponsor", a.sponsor},
                      {"revocation_contact", a.revocation_contact},
                      {"grants", StringArray(a.grants)},
                      {"permissions", StringArray(a.permissions)},
                      {"max_delegation_depth", a.max_delegation_depth},
                      {"max_token_lifetime_s", a.max_token_lifetime_s},
                      {"credential", a.client_jwk.empty() ? "client_secret" : "private_key_jwt"},
                      {"disabled", a.disabled},
                      {"created_at", a.created_at},
                      {"updated_at", a.updated_at}};
}

// Reads an agent record from a JSON body; unknown fields are refused.
Result<Agent> AgentFromJson(const std::string& body, const std::string& name_from_path,
                            bool* generate_secret) {
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("body must be a JSON object");
  Agent a;
  a.name = name_from_path;
  for (const auto& kv : v.as_object()) {
    std::string_view k = kv.key();
    const json::value& x = kv.value();
    auto str = [&](std::string& out) -> Status {
      if (!x.is_string()) return InvalidArgumentError(std::string(k) + " must be a string");
      out = std::string(x.as_string());
      return OkStatus();
    };
    auto strings = [&](std::vector<std::string>& out) -> Status {
      if (!x.is_array()) return InvalidArgumentError(std::string(k) + " must be an array");
      out.clear();
      for (const auto& e : x.as_array()) {
        if (!e.is_string()) return InvalidArgumentError(std::string(k) + " must hold strings");
        out.emplace_back(e.as_string());
      }
      return OkStatus();
    };
    if (k == "name") {
      std::string n;
      RETURN_IF_ERROR(str(n));
      if (!name_from_path.empty() && n != name_from_path) {
        return InvalidArgumentError("name in the body differs from the path");
      }
      a.name = n;
    } else if (k == "description") {
      RETURN_IF_ERROR(str(a.description));
    } else if (k == "environment") {
      std::string e;
      RETURN_IF_ERROR(str(e));
      ASSIGN_OR_RETURN(a.environment, identity::ParseEnvironment(e));
    } else if (k == "business_owner") {
      RETURN_IF_ERROR(str(a.business_owner));
    } else if (k == "technical_owner") {
      RETURN_IF_ERROR(str(a.technical_owner));
    } else if (k == "sponsor") {
      RETURN_IF_ERROR(str(a.sponsor));
    } else if (k == "revocation_contact") {
      RETURN_IF_ERROR(str(a.revocation_contact));
    } else if (k == "grants") {
      RETURN_IF_ERROR(strings(a.grants));
    } else if (k == "permissions") {
      RETURN_IF_ERROR(strings(a.permissions));
    } else if (k == "max_delegation_depth") {
      if (!x.is_int64()) return InvalidArgumentError("max_delegation_depth must be an integer");
      a.max_delegation_depth = static_cast<int>(x.as_int64());
    } else if (k == "max_token_lifetime_s") {
      if (!x.is_int64()) return InvalidArgumentError("max_token_lifetime_s must be an integer");
      a.max_token_lifetime_s = x.as_int64();
    } else if (k == "client_jwk") {
      if (!x.is_object()) return InvalidArgumentError("client_jwk must be a JWK object");
      a.client_jwk = json::serialize(x);
    } else if (k == "client_secret") {
      // {"client_secret": true} asks Custody to generate one; a caller never chooses it.
      if (!x.is_bool()) return InvalidArgumentError("client_secret must be true to generate one");
      *generate_secret = x.as_bool();
    } else {
      return InvalidArgumentError("unknown field \"" + std::string(k) + "\"");
    }
  }
  return a;
}

std::string By(const Request& req) { return req.principal ? "admin:" + req.principal->id : ""; }

void Reply(Responder& respond, const Request& req, const Status& s) {
  respond(http::ErrorResponse(s, req.request_id));
}

}  // namespace

Result<std::vector<identity::TrustedIssuer>> LoadTrustedIssuers(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, crypto::ReadFileToString(path));
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  if (ec || !v.is_array()) {
    return InvalidArgumentError(path + ": trusted issuers must be a JSON array");
  }
  std::vector<identity::TrustedIssuer> out;
  for (const json::value& e : v.as_array()) {
    if (!e.is_object()) return InvalidArgumentError(path + ": each issuer must be an object");
    const json::object& o = e.as_object();
    auto iss = o.find("issuer");
    auto aud = o.find("audience");
    auto jwks = o.find("jwks");
    if (iss == o.end() || !iss->value().is_string() || aud == o.end() ||
        !aud->value().is_string() || jwks == o.end() || !jwks->value().is_object()) {
      return InvalidArgumentError(path + ": each issuer needs issuer, audience and jwks");
    }
    identity::TrustedIssuer t;
    t.issuer = std::string(iss->value().as_string());
    t.audience = std::string(aud->value().as_string());
    auto keys = crypto::Jwks::Parse(json::serialize(jwks->value()));
    if (!keys.ok()) return keys.status().WithContext(path + ": issuer " + t.issuer);
    t.jwks = std::move(*keys);
    out.push_back(std::move(t));
  }
  return out;
}

std::string AuthorizationServerMetadataJson(const std::string& issuer, bool authorization_code,
                                            bool client_id_metadata_documents,
                                            bool dynamic_registration) {
  // Without the authorization code flow: no authorization_endpoint and no
  // response_types_supported, since no grant Custody accepts uses an authorization endpoint (RFC
  // 8414 §2, erratum 7793; §3.2 forbids empty arrays). No scopes_supported: scopes are each
  // agent's grants, not a fixed set. No revocation_endpoint: revocation is the admin API's
  // (/v1/sessions/{sid}/revoke), not RFC 7009.
  json::object m{
      {"issuer", issuer},
      {"token_endpoint", issuer + "/oauth2/token"},
      {"jwks_uri", issuer + "/.well-known/jwks.json"},
      {"grant_types_supported",
       json::array{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}},
      // private_key_jwt: an RFC 7523 assertion signed ES256 (crypto/jose.h takes nothing else);
      // client_secret_post: client_secret in the form (no HTTP Basic).
      {"token_endpoint_auth_methods_supported",
       json::array{"private_key_jwt", "client_secret_post"}},
      {"token_endpoint_auth_signing_alg_values_supported", json::array{"ES256"}},
      // RFC 7662, authenticated with a Custody reader or admin token (an access token type).
      {"introspection_endpoint", issuer + "/oauth2/introspect"},
      {"introspection_endpoint_auth_methods_supported", json::array{"Bearer"}}};
  if (authorization_code) {
    // The authorization code flow of MCP clients (identity/authorization_server.h): public
    // clients ("none"), PKCE S256 only, RFC 9207 iss in every authorization response.
    m["authorization_endpoint"] = issuer + "/oauth2/authorize";
    m["response_types_supported"] = json::array{"code"};
    m["response_modes_supported"] = json::array{"query"};
    m["code_challenge_methods_supported"] = json::array{"S256"};
    m["authorization_response_iss_parameter_supported"] = true;
    m["grant_types_supported"].as_array().push_back("authorization_code");
    m["grant_types_supported"].as_array().push_back("refresh_token");
    m["token_endpoint_auth_methods_supported"].as_array().push_back("none");
    // draft-ietf-oauth-client-id-metadata-document: https client_ids are fetched.
    if (client_id_metadata_documents) m["client_id_metadata_document_supported"] = true;
    if (dynamic_registration) m["registration_endpoint"] = issuer + "/oauth2/register";
  }
  return json::serialize(m);
}

Status AddIdentityRoutes(http::Router& router, TokenService& tokens, const std::string& issuer,
                         identity::AuthorizationServer* authorization) {
  TokenService* svc = &tokens;
  identity::AuthorizationServer* as = authorization;
  auto admin = AuthRequirement::AnyOf({"admin"});
  auto reader = AuthRequirement::AnyOf({"admin", "reader"});

  // One document, at RFC 8414's path and at OIDC Discovery's (which clients such as MCP's also
  // try); Custody issues no ID tokens, so it names nothing OpenID-specific.
  for (const char* path :
       {"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}) {
    RETURN_IF_ERROR(router.Add(
        {"GET", path,
         [metadata = AuthorizationServerMetadataJson(
              issuer, as != nullptr, as != nullptr && as->client_id_metadata_documents(),
              as != nullptr && as->dynamic_registration())](Request&, Responder respond) {
           Response r = Response::Json(200, metadata);
           r.headers.Set("cache-control", "max-age=60");
           respond(std::move(r));
         },
         AuthRequirement::None(), ""}));
  }

  RETURN_IF_ERROR(router.Add({"GET", "/.well-known/jwks.json",
                              [svc](Request&, Responder respond) {
                                Response r = Response::Json(200, svc->JwksJson());
                                r.headers.Set("cache-control", "max-age=60");
                                respond(std::move(r));
                              },
                              AuthRequirement::None(), ""}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/oauth2/token",
       [svc, as](Request& req, Responder respond) {
         auto p = [&](std::string_view n) { return http::FormParam(req.body, n).value_or(""); };
         std::string grant = p("grant_type");
         if (as != nullptr && (grant == identity::kAuthorizationCodeGrant ||
                               grant == identity::kRefreshTokenGrant)) {
           identity::CodeTokenRequest c;
           c.grant_type = grant;
           c.client_id = p("client_id");
           c.code = p("code");
           c.redirect_uri = p("redirect_uri");
           c.code_verifier = p("code_verifier");
           c.resource = p("resource");
           c.refresh_token = p("refresh_token");
           c.scope = p("scope");
           c.client_authenticated_otherwise = !p("client_secret").empty() ||
                                              !p("client_assertion").empty() ||
                                              req.headers.Get("authorization").has_value();
           auto issued = as->Token(c);
           if (!issued.ok()) return respond(OAuthErrorResponse(issued.error));
           json::object o{{"access_token", issued.value->token.access_token},
                          {"token_type", "Bearer"},
                          {"expires_in", issued.value->token.expires_in},
                          {"scope", issued.value->token.scope},
                          {"refresh_token", issued.value->refresh_token}};
           Response r = Response::Json(200, json::serialize(o));
           r.headers.Set("cache-control", "no-store");
           return respond(std::move(r));
         }
         identity::TokenRequest t;
         t.grant_type = grant;
         t.client_id = p("client_id");
         t.client_assertion_type = p("client_assertion_type");
         t.client_assertion = p("client_assertion");
         t.client_secret = p("client_secret");
         t.audience = p("audience");
         t.scope = p("scope");
         t.subject_token = p("subject_token");
         t.subject_token_type = p("subject_token_type");
         t.actor_token = p("actor_token");
         t.actor_token_type = p("actor_token_type");
         t.objective = p("objective");
         t.requested_lifetime = p("requested_lifetime");
         // Answered once the issuance's event is durable (from the ledger's commit thread).
         svc->TokenAsync(t, [respond](identity::OAuthResult<identity::IssuedToken> issued) {
           respond(issued.ok() ? TokenResponse(*issued.value) : OAuthErrorResponse(issued.error));
         });
       },
       AuthRequirement::None(), kForm}));

  RETURN_IF_ERROR(router.Add({"POST", "/oauth2/introspect",
                              [svc](Request& req, Responder respond) {
                                auto token = http::FormParam(req.body, "token");
                                if (!token || token->empty()) {
                                  return Reply(respond, req,
                                               InvalidArgumentError("token is required"));
                                }
                                respond(Response::Json(200, svc->Introspect(*token)));
                              },
                              reader, kForm}));

  RETURN_IF_ERROR(router.Add({"POST", "/v1/agents",
                              [svc](Request& req, Responder respond) {
                                bool gen = false;
                                auto a = AgentFromJson(req.body, "", &gen);
                                if (!a.ok()) return Reply(respond, req, a.status());
                                auto r = svc->RegisterAgent(std::move(*a), gen, By(req));
                                if (!r.ok()) return Reply(respond, req, r.status());
                                json::object o = AgentJson(r->agent);
                                if (!r->client_secret.empty())
                                  o["client_secret"] = r->client_secret;  // shown once
                                Response resp = Response::Json(201, json::serialize(o));
                                resp.headers.Set("cache-control", "no-store");
                                respond(std::move(resp));
                              },
                              admin, kJson}));

  RETURN_IF_ERROR(
      router.Add({"GET", "/v1/agents",
                  [svc](Request& req, Responder respond) {
                    auto list = svc->ListAgents();
                    if (!list.ok()) return Reply(respond, req, list.status());
                    json::array a;
                    for (const auto& x : *list) a.push_back(AgentJson(x));
                    respond(Response::Json(200, json::serialize(json::object{{"agents", a}})));
                  },
                  reader, ""}));

  RETURN_IF_ERROR(router.Add({"GET", "/v1/agents/{name}",
                              [svc](Request& req, Responder respond) {
                                auto a = svc->GetAgent(req.params["name"]);
                                if (!a.ok()) return Reply(respond, req, a.status());
                                respond(Response::Json(200, json::serialize(AgentJson(*a))));
                              },
                              reader, ""}));

  RETURN_IF_ERROR(router.Add({"PUT", "/v1/agents/{name}",
                              [svc](Request& req, Responder respond) {
                                bool gen = false;
                                auto a = AgentFromJson(req.body, req.params["name"], &gen);
                                if (!a.ok()) return Reply(respond, req, a.status());
                                if (gen) {
                                  return Reply(respond, req,
                                               InvalidArgumentError(
                                                   "secrets are generated only at registration"));
                                }
                                auto r = svc->UpdateAgent(std::move(*a), By(req));
                                if (!r.ok()) return Reply(respond, req, r.status());
                                respond(Response::Json(200, json::serialize(AgentJson(*r))));
                              },
                              admin, kJson}));

  RETURN_IF_ERROR(
      router.Add({"POST", "/v1/agents/{name}/disable",
                  [svc](Request& req, Responder respond) {
                    auto r = svc->DisableAgent(req.params["name"], By(req));
                    if (!r.ok()) return Reply(respond, req, r.status());
                    respond(Response::Json(
                        200, json::serialize(json::object{{"revoked_sessions", StringArray(*r)}})));
                  },
                  admin, ""}));

  RETURN_IF_ERROR(router.Add({"GET", "/v1/sessions/{sid}",
                              [svc](Request& req, Responder respond) {
                                auto tree = svc->SessionTree(req.params["sid"]);
                                if (!tree.ok()) return Reply(respond, req, tree.status());
                                json::array sessions;
                                for (const auto& s : *tree) sessions.push_back(SessionJson(s));
                                json::object o{{"session", sessions.front()}, {"tree", sessions}};
                                respond(Response::Json(200, json::serialize(o)));
                              },
                              reader, ""}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/sessions/{sid}/revoke",
       [svc](Request& req, Responder respond) {
         std::string reason = "revoked by operator";
         if (!req.body.empty()) {
           boost::system::error_code ec;
           json::value v = ParseJson(req.body, ec);
           if (ec || !v.is_object()) {
             return Reply(respond, req, InvalidArgumentError("body must be a JSON object"));
           }
           if (auto it = v.as_object().find("reason");
               it != v.as_object().end() && it->value().is_string()) {
             reason = std::string(it->value().as_string());
           }
         }
         auto r = svc->RevokeSession(req.params["sid"], reason, By(req));
         if (!r.ok()) return Reply(respond, req, r.status());
         respond(Response::Json(
             200, json::serialize(json::object{{"revoked_sessions", StringArray(*r)}})));
       },
       admin, ""}));

  RETURN_IF_ERROR(router.Add({"POST", "/v1/credentials/{jti}/revoke",
                              [svc](Request& req, Responder respond) {
                                Status s = svc->RevokeCredential(req.params["jti"], By(req));
                                if (!s.ok()) return Reply(respond, req, s);
                                respond(Response::Json(200, R"({"revoked":true})"));
                              },
                              admin, ""}));

  // Starts signing with a new key. The retired key stays in the JWKS until every token it
  // signed has expired, so nothing issued before stops verifying.
  RETURN_IF_ERROR(router.Add({"POST", "/v1/keys/rotate",
                              [svc](Request& req, Responder respond) {
                                auto kid = svc->RotateSigningKey(By(req));
                                if (!kid.ok()) return Reply(respond, req, kid.status());
                                json::object o{{"kid", *kid}, {"jwks", ParseJson(svc->JwksJson())}};
                                respond(Response::Json(200, json::serialize(o)));
                              },
                              admin, ""}));
  return OkStatus();
}

}  // namespace custody::api
