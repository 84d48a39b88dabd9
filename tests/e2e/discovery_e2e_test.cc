// End-to-end tests of discovery against the running server (`custody serve --quickstart` on port
// 0): the RFC 8414 authorization server metadata (also served as OIDC's openid-configuration)
// must agree with the gateway's RFC 9728 protected resource metadata and with what the token
// endpoint actually does. A client that follows the documents (token_endpoint, the advertised
// auth methods and grants, jwks_uri) gets tokens whose iss is the advertised issuer; with no
// identity.issuer configured that issuer is the URL the server really listens on.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <ctime>
#include <filesystem>

#include "common/encoding.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using crypto::EcdsaP256PrivateKey;
using http::ClientResponse;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::ServeProcess;
using testing::TempDir;
using Form = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr const char* kExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr const char* kJwtType = "urn:ietf:params:oauth:token-type:jwt";
constexpr const char* kAssertionType = "urn:custody:params:oauth:token-type:initiator-assertion";
constexpr const char* kWarning = "identity.issuer is not set: using ";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

json::object Body(const ClientResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << r.body;
  return v.is_object() ? v.as_object() : json::object{};
}

std::string S(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

std::vector<std::string> Strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const json::value* v = o.if_contains(key); v != nullptr && v->is_array()) {
    for (const auto& e : v->as_array()) out.push_back(e.is_string() ? e.as_string().c_str() : "?");
  }
  return out;
}

class DiscoveryE2e : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra) {
    dir_ = TempDir(std::string("discovery_") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    extra.insert(extra.begin(), {"--log-level", "warn"});
    server_ = std::make_unique<ServeProcess>(dir_ / "data", extra, /*quickstart=*/true,
                                             /*merge_stderr=*/true);
    ASSERT_TRUE(server_->started());
    client_ = std::make_unique<http::BlockingHttpClient>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }
  // Everything the server wrote (stdout and its logs), once it has stopped.
  std::string StopAndLog() {
    EXPECT_EQ(server_->Stop(), 0);
    std::string all;
    for (const auto& l : server_->DrainOutput()) all += l + "\n";
    return all;
  }

  Result<ClientResponse> Send(http::ClientRequest r) { return client_->Send(std::move(r)); }
  json::object GetJson(const std::string& path) {
    auto r = Send(Get(path));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    EXPECT_EQ(r->headers.Get("content-type").value_or(""), "application/json") << path;
    return Body(*r);
  }
  // The path of an advertised endpoint, which must be on this server, under the issuer.
  std::string PathOf(const std::string& url) {
    EXPECT_TRUE(url.starts_with(issuer_ + "/")) << url << " is not under " << issuer_;
    return url.starts_with(issuer_) ? url.substr(issuer_.size()) : url;
  }

  // Fetches both metadata documents and the gateway's, and checks they agree.
  void Discover() {
    meta_ = GetJson("/.well-known/oauth-authorization-server");
    issuer_ = S(meta_.if_contains("issuer"));
    ASSERT_FALSE(issuer_.empty()) << json::serialize(meta_);
    auto oidc = Send(Get("/.well-known/openid-configuration"));
    ASSERT_TRUE(oidc.ok());
    EXPECT_EQ(oidc->status, 200);
    EXPECT_EQ(Body(*oidc), meta_) << "openid-configuration differs";

    // The gateway names this authorization server, and its resource is issuer + "/mcp".
    for (const char* path :
         {"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}) {
      json::object prm = GetJson(path);
      EXPECT_EQ(Strings(prm, "authorization_servers"), std::vector<std::string>{issuer_}) << path;
      EXPECT_EQ(S(prm.if_contains("resource")), issuer_ + "/mcp") << path;
      resource_ = S(prm.if_contains("resource"));
    }

    // Only what Custody implements today.
    token_path_ = PathOf(S(meta_.if_contains("token_endpoint")));
    EXPECT_EQ(token_path_, "/oauth2/token");
    jwks_path_ = PathOf(S(meta_.if_contains("jwks_uri")));
    introspect_path_ = PathOf(S(meta_.if_contains("introspection_endpoint")));
    EXPECT_EQ(Strings(meta_, "grant_types_supported"),
              (std::vector<std::string>{"client_credentials", kExchange}));
    EXPECT_EQ(Strings(meta_, "token_endpoint_auth_methods_supported"),
              (std::vector<std::string>{"private_key_jwt", "client_secret_post"}));
    EXPECT_EQ(Strings(meta_, "token_endpoint_auth_signing_alg_values_supported"),
              std::vector<std::string>{"ES256"});
    EXPECT_EQ(Strings(meta_, "introspection_endpoint_auth_methods_supported"),
              std::vector<std::string>{"Bearer"});
    for (const char* absent : {"authorization_endpoint", "response_types_supported",
                               "revocation_endpoint", "scopes_supported", "registration_endpoint",
                               "code_challenge_methods_supported", "userinfo_endpoint"}) {
      EXPECT_FALSE(meta_.contains(absent)) << absent << " is advertised but not implemented";
    }
    auto jwks = Send(Get(jwks_path_));
    ASSERT_TRUE(jwks.ok());
    ASSERT_EQ(jwks->status, 200);
    auto keys = crypto::Jwks::Parse(jwks->body);
    ASSERT_TRUE(keys.ok()) << jwks->body;
    ASSERT_GE(keys->size(), 1u);
    jwks_ = std::move(*keys);
  }

  // The verified claims of a token Custody issued, checked against the advertised jwks_uri.
  json::object Verified(const std::string& token) {
    auto v = crypto::VerifyJwsWithJwks(token, jwks_, crypto::kCustodyAlgorithms);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? json::parse(v->payload).as_object() : json::object{};
  }

  // Registers an agent; returns its client secret when `secret`, else uses `key` for its JWK.
  std::string Register(const std::string& name, const EcdsaP256PrivateKey* key) {
    json::object body{{"name", name},
                      {"grants", json::array{"github/*"}},
                      {"permissions", json::array{"assert_initiator"}},
                      {"max_delegation_depth", 2}};
    if (key != nullptr) {
      body["client_jwk"] = json::parse(crypto::EcPublicJwkJson(key->public_key(), name + "-key"));
    } else {
      body["client_secret"] = true;
    }
    auto r = Send(PostJson(json::serialize(body), server_->token(), "/v1/agents"));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 201) << r->body;
    return S(Body(*r).if_contains("client_secret"));
  }
  // private_key_jwt as advertised: an ES256 assertion whose aud is the advertised token_endpoint.
  Form PrivateKeyJwt(const std::string& name, const EcdsaP256PrivateKey& key) {
    json::object header{{"alg", "ES256"}, {"kid", name + "-key"}};
    json::object claims{
        {"iss", name},       {"sub", name},  {"aud", S(meta_.if_contains("token_endpoint"))},
        {"exp", Now() + 60}, {"iat", Now()}, {"jti", "discovery-" + std::to_string(++assertions_)}};
    auto jws = crypto::SignJwsEs256(json::serialize(header), json::serialize(claims), key);
    EXPECT_TRUE(jws.ok());
    return {{"client_id", name},
            {"client_assertion_type", kBearer},
            {"client_assertion", jws.ok() ? *jws : ""}};
  }
  // A token from the advertised token endpoint (200 expected).
  std::string Token(Form f) {
    auto r = Send(PostForm(token_path_, f));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    return S(Body(*r).if_contains("access_token"));
  }

  // Follows the documents end to end: both advertised auth methods, both advertised grants.
  // Every token's iss is the advertised issuer; the session token's aud is the gateway's resource.
  void UseTheAdvertisedEndpoints() {
    auto key = EcdsaP256PrivateKey::Generate();
    ASSERT_TRUE(key.ok());
    Register("planner", &*key);
    Form svid_form = PrivateKeyJwt("planner", *key);
    svid_form.insert(svid_form.end(),
                     {{"grant_type", "client_credentials"}, {"audience", issuer_}});
    std::string svid = Token(svid_form);
    EXPECT_EQ(S(Verified(svid).if_contains("iss")), issuer_);

    Form x = PrivateKeyJwt("planner", *key);
    x.insert(x.end(), {{"grant_type", kExchange},
                       {"subject_token", R"({"sub":"nightly-triage","iss":"ci"})"},
                       {"subject_token_type", kAssertionType},
                       {"actor_token", svid},
                       {"actor_token_type", kJwtType},
                       {"audience", resource_},
                       {"scope", "github/read"},
                       {"objective", "discovery e2e"}});
    std::string session = Token(x);
    json::object claims = Verified(session);
    EXPECT_EQ(S(claims.if_contains("iss")), issuer_);
    EXPECT_NE(json::serialize(claims["aud"]).find("\"" + resource_ + "\""), std::string::npos)
        << json::serialize(claims);

    // The advertised introspection endpoint, with a Bearer (reader/admin) token.
    auto intro = Send(PostForm(introspect_path_, {{"token", session}}, server_->token()));
    ASSERT_TRUE(intro.ok());
    EXPECT_EQ(intro->status, 200) << intro->body;
    EXPECT_EQ(Body(*intro)["active"], json::value(true)) << intro->body;
    EXPECT_EQ(S(Body(*intro).if_contains("iss")), issuer_);

    // client_secret_post: the secret in the form.
    std::string secret = Register("reporter", nullptr);
    ASSERT_FALSE(secret.empty());
    std::string by_secret = Token({{"grant_type", "client_credentials"},
                                   {"client_id", "reporter"},
                                   {"client_secret", secret},
                                   {"audience", issuer_}});
    EXPECT_EQ(S(Verified(by_secret).if_contains("iss")), issuer_);

    // What is not advertised is not accepted: a grant that needs the (absent) authorization
    // endpoint, and client_secret_basic.
    auto code = Send(PostForm(token_path_, {{"grant_type", "authorization_code"},
                                            {"code", "x"},
                                            {"client_id", "reporter"},
                                            {"client_secret", secret}}));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(code->status, 400) << code->body;
    EXPECT_EQ(S(Body(*code).if_contains("error")), "unsupported_grant_type");
    http::ClientRequest basic =
        PostForm(token_path_, {{"grant_type", "client_credentials"}, {"audience", issuer_}});
    basic.headers.Set("authorization", "Basic " + Base64Encode("reporter:" + secret));
    auto b = Send(std::move(basic));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->status, 401) << b->body;
    EXPECT_EQ(S(Body(*b).if_contains("error")), "invalid_client");
  }

  fs::path dir_;
  std::unique_ptr<ServeProcess> server_;
  std::unique_ptr<http::BlockingHttpClient> client_;
  json::object meta_;
  std::string issuer_, resource_, token_path_, jwks_path_, introspect_path_;
  crypto::Jwks jwks_;
  int assertions_ = 0;
};

// No identity.issuer (and --quickstart): the issuer everywhere is the URL actually listened on,
// port 0 resolved, and the server says at start that it should be set.
TEST_F(DiscoveryE2e, UnsetIssuerIsTheUrlListenedOnEverywhere) {
  Start({});
  ASSERT_NO_FATAL_FAILURE(Discover());
  const std::string url = server_->url();
  EXPECT_EQ(url, "http://127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_NE(server_->port(), 0);
  EXPECT_EQ(issuer_, url);
  EXPECT_EQ(json::serialize(meta_).find("custody.local"), std::string::npos)
      << "quickstart must not name a host nobody can reach: " << json::serialize(meta_);
  ASSERT_NO_FATAL_FAILURE(UseTheAdvertisedEndpoints());

  std::string log = StopAndLog();
  EXPECT_NE(log.find(kWarning + url + "; set it in production"), std::string::npos) << log;
  EXPECT_NE(log.find("\"level\":\"warn\""), std::string::npos) << log;
}

// A configured issuer is the one named everywhere and in the tokens, and nothing is warned.
TEST_F(DiscoveryE2e, ConfiguredIssuerIsNamedEverywhere) {
  const std::string configured = "https://custody.example.test";
  Start({"--set", "identity.issuer=" + configured});
  ASSERT_NO_FATAL_FAILURE(Discover());
  EXPECT_EQ(issuer_, configured);
  EXPECT_EQ(S(meta_.if_contains("token_endpoint")), configured + "/oauth2/token");
  ASSERT_NO_FATAL_FAILURE(UseTheAdvertisedEndpoints());

  std::string log = StopAndLog();
  EXPECT_EQ(log.find(kWarning), std::string::npos) << log;
}

}  // namespace
}  // namespace custody
