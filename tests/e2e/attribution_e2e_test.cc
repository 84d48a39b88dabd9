// Attribution end to end, against the real `custody serve`: a human starts a planner, which
// delegates to two sub-agents; one works within policy, the other trips a @contain policy and
// is cut off with its child while its sibling carries on. Plus the AuthZEN 1.0 shapes, a forged
// context, and the policy/contain CLI.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/encoding.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::ClientRequest;
using http::ClientResponse;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::RegisterAgent;
using testing::ServeProcess;
using testing::Subprocess;
using testing::TempDir;

constexpr const char* kIdp = "https://login.example";
constexpr const char* kExchange = "urn:ietf:params:oauth:grant-type:token-exchange";

json::object Body(const Result<ClientResponse>& r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  EXPECT_FALSE(ec) << r->body;
  return v.is_object() ? v.get_object() : json::object();
}
std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

class AttributionE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("attr-e2e");
    idp_key_ =
        std::make_unique<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    json::array issuers{json::object{
        {"issuer", kIdp},
        {"audience", "custody"},
        {"jwks", json::parse("{\"keys\":[" +
                             crypto::EcPublicJwkJson(idp_key_->public_key(), "idp-1") + "]}")}}};
    std::ofstream(dir_ / "issuers.json") << json::serialize(issuers);
    server_ = std::make_unique<ServeProcess>(
        dir_ / "data", std::vector<std::string>{
                           "--log-level", "warn", "--set",
                           "identity.trusted_issuers_file=" + (dir_ / "issuers.json").string(),
                           "--set", "identity.issuer=https://custody.local"});
    ASSERT_TRUE(server_->started());
    Register("planner", "prod", {"*"});
    Register("researcher", "dev", {"github/*", "docs/*"});
    Register("coder", "dev", {"github/*", "prod-db/*"});
    Register("helper", "dev", {"github/*"});
  }

  Result<ClientResponse> Send(ClientRequest r) { return server_->Client().Send(r); }

  void Register(const std::string& name, const std::string& env, std::vector<std::string> grants) {
    auto r = Send(RegisterAgent(name, env, grants, server_->token()));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201) << r->body;
    secrets_[name] = S(Body(r)["client_secret"]);
  }

  std::string Svid(const std::string& agent) {
    auto r = Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                             {"client_id", agent},
                                             {"client_secret", secrets_[agent]},
                                             {"audience", "https://custody.local"}}));
    EXPECT_EQ(r->status, 200) << r->body;
    return S(Body(r)["access_token"]);
  }
  std::string Exchange(const std::string& agent, const std::string& subject,
                       const std::string& subject_type) {
    auto r = Send(
        PostForm("/oauth2/token", {{"grant_type", kExchange},
                                   {"client_id", agent},
                                   {"client_secret", secrets_[agent]},
                                   {"subject_token", subject},
                                   {"subject_token_type", subject_type},
                                   {"actor_token", Svid(agent)},
                                   {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                                   {"audience", "custody"}}));
    EXPECT_EQ(r->status, 200) << r->body;
    return S(Body(r)["access_token"]);
  }
  // The human's verified ID token from the trusted IdP.
  std::string IdToken(const std::string& sub) {
    int64_t now = static_cast<int64_t>(::time(nullptr));
    json::object c{
        {"iss", kIdp}, {"sub", sub}, {"aud", "custody"}, {"iat", now}, {"exp", now + 300}};
    return *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"idp-1","typ":"JWT"})", json::serialize(c),
                                 *idp_key_);
  }
  std::string Child(const std::string& parent, const std::string& agent) {
    return Exchange(agent, parent, "urn:ietf:params:oauth:token-type:access_token");
  }

  Result<ClientResponse> Authorize(const std::string& token, const std::string& server,
                                   const std::string& tool, const std::string& extra = "") {
    std::string body = R"({"action":"call_tool","target":{"server":")" + server + R"(","tool":")" +
                       tool + R"("},"arguments":{"q":1})" + extra + "}";
    return Send(PostJson(body, token, "/v1/actions:authorize"));
  }

  int Cli(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), CUSTODY_BINARY);
    args.insert(args.end(), {"--server", server_->url(), "--token", server_->token()});
    std::string output;
    int rc = testing::RunCommand(args, &output);
    if (out) *out = output;
    return rc;
  }

  void PublishScenarioPolicies() {
    std::ofstream(dir_ / "policies.cedar") << R"(
@id("work-on-github")
permit(principal, action == Action::"call_tool", resource in Server::"github");

@id("read-docs")
permit(principal in Group::"readers", action == Action::"call_tool", resource in Server::"docs");

@id("dev-never-touches-prod") @contain("session")
forbid(principal, action, resource in Environment::"prod")
  when { context.session.environment == "dev" };
)";
    std::ofstream(dir_ / "entities.json") << R"([
  {"uid":{"type":"Environment","id":"prod"},"attrs":{},"parents":[]},
  {"uid":{"type":"Server","id":"prod-db"},"attrs":{},"parents":[{"type":"Environment","id":"prod"}]},
  {"uid":{"type":"Group","id":"readers"},"attrs":{},"parents":[]},
  {"uid":{"type":"Agent","id":"researcher"},"attrs":{},"parents":[{"type":"Group","id":"readers"}]}
])";
    std::string out;
    ASSERT_EQ(Cli({"policy", "publish", (dir_ / "policies.cedar").string(), "--entities",
                   (dir_ / "entities.json").string()},
                  &out),
              0)
        << out;
    EXPECT_NE(out.find("dev-never-touches-prod"), std::string::npos) << out;
  }

  fs::path dir_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> idp_key_;
  std::unique_ptr<ServeProcess> server_;
  std::map<std::string, std::string> secrets_;
};

TEST_F(AttributionE2E, ScenarioDelegationTripwireContainmentAndSiblingContinues) {
  PublishScenarioPolicies();
  // 1. A human (verified by the IdP) starts the planner.
  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  // 2. The planner delegates to two sub-agents; the coder has a helper below it.
  std::string researcher = Child(planner, "researcher");
  std::string coder = Child(planner, "coder");
  std::string helper = Child(coder, "helper");
  // 3. The researcher works within policy, and records outcomes.
  for (const char* tool : {"search_issues", "get_issue"}) {
    auto r = Authorize(researcher, "github", tool);
    json::object b = Body(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(S(b["decision"]), "allow");
    EXPECT_EQ(S(b["reasons"].as_array()[0]), "work-on-github");
    EXPECT_FALSE(S(b["receipt"]).empty());
    auto c = Send(PostJson(R"({"status":"ok","latency_ms":3})", researcher,
                           "/v1/actions/" + S(b["action_id"]) + ":complete"));
    ASSERT_EQ(c->status, 200) << c->body;
  }
  auto docs = Authorize(researcher, "docs", "read");  // through its group, from the entities
  EXPECT_EQ(S(Body(docs)["decision"]), "allow") << docs->body;
  auto coder_early = Authorize(coder, "github", "list_issues");
  ASSERT_EQ(S(Body(coder_early)["decision"]), "allow") << coder_early->body;
  // 4. The coder touches prod: denied, and its session tree is contained on the spot.
  auto trip = Authorize(coder, "prod-db", "drop_table");
  json::object tb = Body(trip);
  ASSERT_EQ(trip->status, 200) << trip->body;
  EXPECT_EQ(S(tb["decision"]), "deny");
  EXPECT_EQ(S(tb["reasons"].as_array()[0]), "dev-never-touches-prod");
  EXPECT_EQ(S(tb["contained"]).rfind("session ", 0), 0u) << trip->body;
  // 5. Its next calls and its child's are refused (and recorded); the sibling continues.
  for (const std::string* t : {&coder, &helper}) {
    auto r = Authorize(*t, "github", "list_issues");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << r->body;
    json::object b = Body(r);
    EXPECT_EQ(S(b["decision"]), "deny");
    EXPECT_EQ(S(b["reasons"].as_array()[0]), "custody:session_revoked");
    EXPECT_NE(r->headers.Get("www-authenticate").value_or("").find("invalid_token"),
              std::string::npos);
  }
  // Nor can it write the outcome of what it was allowed before: refused, like its other calls.
  auto late = Send(PostJson(R"({"status":"ok"})", coder,
                            "/v1/actions/" + S(Body(coder_early)["action_id"]) + ":complete"));
  EXPECT_EQ(late->status, 401) << late->body;
  EXPECT_NE(late->body.find("session revoked"), std::string::npos) << late->body;
  auto sibling = Authorize(researcher, "github", "list_issues");
  EXPECT_EQ(sibling->status, 200);
  EXPECT_EQ(S(Body(sibling)["decision"]), "allow");
  // The planner's own session is untouched too.
  auto intro = Send(PostForm("/oauth2/introspect", {{"token", planner}}, server_->token()));
  EXPECT_EQ(Body(intro)["active"], json::value(true));
  auto gone = Send(PostForm("/oauth2/introspect", {{"token", helper}}, server_->token()));
  EXPECT_EQ(Body(gone)["active"], json::value(false));
  std::string refused_id;
  {
    auto r = Authorize(helper, "github", "list_issues");
    refused_id = S(Body(r)["action_id"]);
  }
  // 6. `trace` on a refused call names the human, the chain and the tripwire.
  ClientRequest trace_req = testing::Get("/v1/trace/" + refused_id);
  trace_req.headers.Set("authorization", "Bearer " + server_->token());
  auto tr = Send(trace_req);
  ASSERT_EQ(tr->status, 200) << tr->body;
  EXPECT_NE(tr->body.find("alice@example.com"), std::string::npos);
  EXPECT_NE(tr->body.find("\"verified\""), std::string::npos);
  for (const char* agent : {"planner", "coder", "helper"})
    EXPECT_NE(tr->body.find(std::string("\"") + agent + "\""), std::string::npos) << agent;
  EXPECT_NE(tr->body.find("dev-never-touches-prod"), std::string::npos) << tr->body;
  std::string out;
  ASSERT_EQ(Cli({"trace", refused_id}, &out), 0) << out;
  EXPECT_NE(out.find("alice@example.com"), std::string::npos) << out;
  // 7. The evidence bundle of the whole tree verifies offline, and a tampered one does not.
  std::string planner_sid =
      S(Body(Send(PostForm("/oauth2/introspect", {{"token", planner}}, server_->token())))["sid"]);
  ASSERT_FALSE(planner_sid.empty());
  // The tree with its actions in order, for people.
  ASSERT_EQ(Cli({"session", "show", planner_sid, "--events"}, &out), 0) << out;
  EXPECT_NE(out.find("drop_table"), std::string::npos) << out;
  EXPECT_NE(out.find("search_issues"), std::string::npos) << out;
  EXPECT_LT(out.find("search_issues"), out.find("get_issue")) << out;
  fs::path bundle = dir_ / "evidence.json";
  ASSERT_EQ(Cli({"evidence", planner_sid, "--out", bundle.string()}, &out), 0) << out;
  std::string vout;
  EXPECT_EQ(testing::RunCommand({CUSTODY_BINARY, "ledger", "verify-bundle", bundle.string(),
                                 "--key", server_->vkey()},
                                &vout),
            0)
      << vout;
  std::string text;
  {
    std::ifstream in(bundle);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  // It holds the identity events of the tree too: how the sessions started and were revoked.
  EXPECT_NE(text.find("session.start"), std::string::npos);
  EXPECT_NE(text.find("revocation"), std::string::npos);
  size_t at = text.find("drop_table");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 10, "drop_tabel");
  std::ofstream(dir_ / "tampered.json") << text;
  EXPECT_NE(testing::RunCommand({CUSTODY_BINARY, "ledger", "verify-bundle",
                                 (dir_ / "tampered.json").string(), "--key", server_->vkey()},
                                &vout),
            0)
      << vout;
  // The ledger, with every decision in it, still verifies.
  server_->Stop();
  EXPECT_EQ(testing::RunCommand(
                {CUSTODY_BINARY, "ledger", "verify", "--db", (dir_ / "data" / "ledger.db").string(),
                 "--key", (dir_ / "data" / "ledger.key").string()},
                &vout),
            0)
      << vout;
}

TEST_F(AttributionE2E, ForgedContextDoesNotOverrideTheSession) {
  std::ofstream(dir_ / "p.cedar") << R"(permit(principal, action, resource) when {
      context.session.initiator.verified && context.session.initiator.id == "root" };)";
  ASSERT_EQ(Cli({"policy", "publish", (dir_ / "p.cedar").string()}), 0);
  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  auto r = Authorize(planner, "github", "x",
                     R"(,"context":{"session":{"initiator":{"id":"root","verified":true}}})");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(S(Body(r)["decision"]), "deny");
}

TEST_F(AttributionE2E, BadRequestsGetClearErrors) {
  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  auto none =
      Send(PostJson(R"({"target":{"server":"a","tool":"b"}})", "", "/v1/actions:authorize"));
  EXPECT_EQ(none->status, 401);
  auto junk = Send(PostJson("{nope", planner, "/v1/actions:authorize"));
  EXPECT_EQ(junk->status, 400);
  auto unknown = Send(PostJson(R"({"target":{"server":"a","tool":"b"},"sesion":{}})", planner,
                               "/v1/actions:authorize"));
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("sesion"), std::string::npos);
  auto no_target = Send(PostJson(R"({"action":"call_tool"})", planner, "/v1/actions:authorize"));
  EXPECT_EQ(no_target->status, 400);
  auto bad_complete = Send(PostJson(R"({"status":"ok"})", planner, "/v1/actions/nope:complete"));
  EXPECT_EQ(bad_complete->status, 404);
  auto bad_op = Send(PostJson(R"({"status":"ok"})", planner, "/v1/actions/x:frobnicate"));
  EXPECT_EQ(bad_op->status, 404);
  // Publishing needs the admin role; a bad policy is refused with the parser's message.
  auto anon =
      Send(PostJson(R"({"policies":"permit(principal,action,resource);"})", "", "/v1/policies"));
  EXPECT_EQ(anon->status, 401);
  auto bad =
      Send(PostJson(R"({"policies":"permit(principal,"})", server_->token(), "/v1/policies"));
  EXPECT_EQ(bad->status, 400) << bad->body;
  // Containment needs admin too, and one target.
  auto both = Send(
      PostJson(R"({"session":"a","agent":"b","reason":"x"})", server_->token(), "/v1/contain"));
  EXPECT_EQ(both->status, 400);
}

TEST_F(AttributionE2E, AuthZenEvaluationShapesAndSemantics) {
  std::ofstream(dir_ / "p.cedar") << R"(
@id("read") permit(principal, action == Action::"read", resource is Document);
@id("no-secret") forbid(principal, action, resource == Document::"secret");)";
  ASSERT_EQ(Cli({"policy", "publish", (dir_ / "p.cedar").string()}), 0);
  auto meta = Send(Get("/.well-known/authzen-configuration"));
  json::object m = Body(meta);
  EXPECT_EQ(S(m["access_evaluation_endpoint"]), "https://custody.local/access/v1/evaluation");
  EXPECT_EQ(S(m["access_evaluations_endpoint"]), "https://custody.local/access/v1/evaluations");
  EXPECT_EQ(S(m["policy_decision_point"]), "https://custody.local");

  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  auto eval = [&](const std::string& body, const std::string& path = "/access/v1/evaluation") {
    return Send(PostJson(body, planner, path));
  };
  auto ok = eval(R"({"subject":{"type":"agent","id":"planner"},"action":{"name":"read"},
                    "resource":{"type":"Document","id":"roadmap"},"context":{"time":"now"}})");
  json::object ob = Body(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(ob["decision"], json::value(true));
  EXPECT_TRUE(ob["context"].as_object().contains("id"));
  auto no = eval(R"({"subject":{"type":"agent","id":"planner"},"action":{"name":"read"},
                    "resource":{"type":"Document","id":"secret"}})");
  EXPECT_EQ(Body(no)["decision"], json::value(false));
  // The subject must be the token's agent.
  auto other = eval(R"({"subject":{"type":"agent","id":"coder"},"action":{"name":"read"},
                       "resource":{"type":"Document","id":"roadmap"}})");
  EXPECT_EQ(other->status, 403) << other->body;
  auto missing = eval(R"({"subject":{"type":"agent","id":"planner"},"action":{"name":"read"}})");
  EXPECT_EQ(missing->status, 400);
  auto anon = Send(PostJson(R"({"subject":{"type":"agent","id":"planner"},"action":{"name":"read"},
                              "resource":{"type":"Document","id":"roadmap"}})",
                            "", "/access/v1/evaluation"));
  EXPECT_EQ(anon->status, 401);

  // Batch: defaults at the top, overrides per item; results in order.
  std::string batch = R"({"subject":{"type":"agent","id":"planner"},"action":{"name":"read"},
      "evaluations":[{"resource":{"type":"Document","id":"a"}},
                     {"resource":{"type":"Document","id":"secret"}},
                     {"resource":{"type":"Document","id":"b"}}])";
  auto all = eval(batch + "}", "/access/v1/evaluations");
  json::object ab = Body(all);
  ASSERT_EQ(ab["evaluations"].as_array().size(), 3u) << all->body;
  EXPECT_EQ(ab["evaluations"].as_array()[1].as_object().at("decision"), json::value(false));
  EXPECT_EQ(ab["evaluations"].as_array()[2].as_object().at("decision"), json::value(true));
  // Every item, a denial too, carries its decision's span for the PEP to carry on.
  std::set<std::string> spans;
  for (const json::value& item : ab["evaluations"].as_array()) {
    std::string tp = S(item.at("context").at("traceparent"));
    EXPECT_EQ(tp.size(), 55u) << all->body;
    spans.insert(tp);
  }
  EXPECT_EQ(spans.size(), 3u) << "one span per decision: " << all->body;
  auto first_deny = eval(batch + R"(,"options":{"evaluations_semantic":"deny_on_first_deny"}})",
                         "/access/v1/evaluations");
  EXPECT_EQ(Body(first_deny)["evaluations"].as_array().size(), 2u) << first_deny->body;
  auto first_permit =
      eval(batch + R"(,"options":{"evaluations_semantic":"permit_on_first_permit"}})",
           "/access/v1/evaluations");
  EXPECT_EQ(Body(first_permit)["evaluations"].as_array().size(), 1u);
  auto bad_sem =
      eval(batch + R"(,"options":{"evaluations_semantic":"random"}})", "/access/v1/evaluations");
  EXPECT_EQ(bad_sem->status, 400);
}

TEST_F(AttributionE2E, ManualContainmentFromTheCli) {
  std::ofstream(dir_ / "p.cedar") << "permit(principal, action, resource);";
  ASSERT_EQ(Cli({"policy", "publish", (dir_ / "p.cedar").string()}), 0);
  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  std::string researcher = Child(planner, "researcher");
  EXPECT_EQ(Authorize(researcher, "github", "x")->status, 200);
  std::string out;
  ASSERT_EQ(Cli({"contain", "researcher", "--reason", "exfiltration suspected"}, &out), 0) << out;
  EXPECT_NE(out.find("\"scope\": \"agent\""), std::string::npos) << out;
  EXPECT_EQ(Authorize(researcher, "github", "x")->status, 401);
  EXPECT_EQ(Authorize(planner, "github", "x")->status, 200);
  // A containment without a reason is refused by the CLI itself.
  EXPECT_NE(Cli({"contain", "planner"}), 0);
}

// `custody index rebuild` derives the action index from the ledger again, offline; it refuses
// to touch the index a running server holds.
TEST_F(AttributionE2E, IndexRebuildFromTheLedger) {
  std::ofstream(dir_ / "p.cedar") << "permit(principal, action, resource);";
  ASSERT_EQ(Cli({"policy", "publish", (dir_ / "p.cedar").string()}), 0);
  std::string planner = Exchange("planner", IdToken("alice@example.com"),
                                 "urn:ietf:params:oauth:token-type:id_token");
  ASSERT_EQ(Authorize(planner, "github", "x")->status, 200);
  ASSERT_EQ(Authorize(planner, "github", "y")->status, 200);
  const std::string data = (dir_ / "data").string();
  std::string out;
  EXPECT_NE(testing::RunCommand({CUSTODY_BINARY, "index", "rebuild", "--data-dir", data}, &out), 0);
  EXPECT_NE(out.find("held by a running custody serve"), std::string::npos) << out;

  server_->Stop();
  // The index is lost; the ledger holds every decision.
  for (const char* f : {"attribution.db", "attribution.db-wal", "attribution.db-shm"})
    std::filesystem::remove(dir_ / "data" / f);
  ASSERT_EQ(testing::RunCommand({CUSTODY_BINARY, "index", "rebuild", "--data-dir", data}, &out), 0)
      << out;
  json::object stats = json::parse(out).as_object();
  EXPECT_EQ(stats["from"].to_number<int64_t>(), 0);
  EXPECT_EQ(stats["decisions"].to_number<int64_t>(), 2);
  EXPECT_EQ(stats["outcomes"].to_number<int64_t>(), 0);
  EXPECT_GT(stats["to"].to_number<int64_t>(), 2);  // identity and policy events too
  // The mark is recorded: from it on there is nothing left to index.
  ASSERT_EQ(testing::RunCommand(
                {CUSTODY_BINARY, "index", "rebuild", "--data-dir", data, "--from-mark"}, &out),
            0)
      << out;
  json::object again = json::parse(out).as_object();
  EXPECT_EQ(again["from"], stats["to"]);
  EXPECT_EQ(again["decisions"].to_number<int64_t>(), 0);
}

}  // namespace
}  // namespace custody
