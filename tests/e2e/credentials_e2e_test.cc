// Just-in-time database credentials end to end (#23), against the real `custody serve` and a
// throwaway PostgreSQL cluster: [credentials.postgres.orders] in the configuration file, a
// policy published over HTTP, an agent session that gets `read` over POST /v1/credentials:issue,
// connects with libpq, reads and is refused a write; another agent's `write` denied and the
// denial recorded; containment of the parent session over POST /v1/contain cuts the open
// connection within a second; `custody credential revoke ROLE` drops a role; the administrative
// password is in neither the answers nor the server's logs.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "serve_util.h"
#include "store/testing/pg_cluster.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::ClientResponse;
using testing::PostForm;
using testing::PostJson;
using testing::RegisterAgent;
using testing::ServeProcess;
using testing::TempDir;
using Ms = std::chrono::milliseconds;

constexpr const char* kIdp = "https://login.example";
constexpr const char* kExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr const char* kAdminPassword = "adm1n-s3cret-never-logged";
constexpr const char* kPolicies =
    "@id(\"read-orders\") permit(principal, action == Action::\"issue_credential\", resource == "
    "Database::\"orders\") when { context.arguments.access == \"read\" };";

json::object Body(const Result<ClientResponse>& r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  return !ec && v.is_object() ? v.get_object() : json::object();
}
std::string S(const json::value* v) {
  return v && v->is_string() ? std::string(v->get_string()) : "";
}

std::unique_ptr<store::testing::PgTestConnection> Login(const json::object& cred) {
  const json::object& c = cred.at("connection").as_object();
  return store::testing::PgTestConnection::Connect(
      S(c.if_contains("host")), static_cast<int>(c.at("port").to_number<int64_t>()),
      S(c.if_contains("dbname")), S(c.if_contains("user")), S(c.if_contains("password")));
}

class CredentialsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("cred-e2e");
    auto cluster = store::testing::PgCluster::StartPrivate();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    auto url = cluster_->NewDatabase();
    ASSERT_TRUE(url.ok());
    admin_url_ = *url;
    // The roles of the credentials must give their password (the cluster trusts the rest).
    std::string hba = Admin("SHOW hba_file");
    std::ifstream in(hba);
    std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(hba, std::ios::trunc) << "host all +custody_jit 127.0.0.1/32 scram-sha-256\n"
                                        << rest;
    Admin("CREATE ROLE custody_jit NOLOGIN");
    Admin("SELECT pg_reload_conf()");
    Admin(
        "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'x')");

    idp_key_ =
        std::make_unique<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    json::array issuers{json::object{
        {"issuer", kIdp},
        {"audience", "custody"},
        {"jwks", json::parse("{\"keys\":[" +
                             crypto::EcPublicJwkJson(idp_key_->public_key(), "idp-1") + "]}")}}};
    std::ofstream(dir_ / "issuers.json") << json::serialize(issuers);
    std::ofstream(dir_ / "custody.toml")
        << "[credentials.postgres.orders]\n"
        << "admin_url = \"" << admin_url_ << "\"\n"
        << "admin_password_env = \"ORDERS_ADMIN_PASSWORD\"\n"
        << "max_ttl_s = 600\n"
        << "[credentials.postgres.orders.access.read]\n"
        << "grant = \"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}; GRANT custody_jit "
           "TO {{role}}\"\n"
        << "[credentials.postgres.orders.access.write]\n"
        << "grant = \"GRANT INSERT ON ALL TABLES IN SCHEMA public TO {{role}}\"\n";
    ::setenv("ORDERS_ADMIN_PASSWORD", kAdminPassword, 1);
    server_ = std::make_unique<ServeProcess>(
        dir_ / "data",
        std::vector<std::string>{
            "--config", (dir_ / "custody.toml").string(), "--log-level", "info", "--set",
            "identity.trusted_issuers_file=" + (dir_ / "issuers.json").string(), "--set",
            "identity.issuer=https://custody.local"},
        true, true);
    ASSERT_TRUE(server_->started());
    Register("planner", "prod", {"*"});
    Register("worker", "dev", {"Database:*"});
    json::object p{{"policies", kPolicies}};
    auto r = Send(PostJson(json::serialize(p), server_->token(), "/v1/policies"));
    ASSERT_TRUE(r.ok() && r->status / 100 == 2) << (r.ok() ? r->body : "");
  }
  void TearDown() override {
    server_.reset();
    cluster_.reset();
    fs::remove_all(dir_);
  }

  std::string Admin(const std::string& sql) {
    PGconn* c = PQconnectdb(admin_url_.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
        << sql << ": " << PQerrorMessage(c);
    std::string first =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    PQfinish(c);
    return first;
  }
  Result<ClientResponse> Send(http::ClientRequest r) { return server_->Client().Send(r); }
  // A GET with the admin token (the investigation routes want a reader).
  Result<ClientResponse> AdminGet(const std::string& target) {
    http::ClientRequest r = testing::Get(target);
    r.headers.Set("authorization", "Bearer " + server_->token());
    return Send(r);
  }
  void Register(const std::string& name, const std::string& env, std::vector<std::string> grants) {
    auto r = Send(RegisterAgent(name, env, grants, server_->token()));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201) << r->body;
    secrets_[name] = S(Body(r).if_contains("client_secret"));
  }
  std::string Exchange(const std::string& agent, const std::string& subject,
                       const std::string& subject_type) {
    auto svid = Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                                {"client_id", agent},
                                                {"client_secret", secrets_[agent]},
                                                {"audience", "https://custody.local"}}));
    auto r = Send(
        PostForm("/oauth2/token", {{"grant_type", kExchange},
                                   {"client_id", agent},
                                   {"client_secret", secrets_[agent]},
                                   {"subject_token", subject},
                                   {"subject_token_type", subject_type},
                                   {"actor_token", S(Body(svid).if_contains("access_token"))},
                                   {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                                   {"audience", "custody"}}));
    EXPECT_EQ(r->status, 200) << r->body;
    return S(Body(r).if_contains("access_token"));
  }
  std::string Root() {
    int64_t now = static_cast<int64_t>(::time(nullptr));
    json::object c{
        {"iss", kIdp}, {"sub", "alice"}, {"aud", "custody"}, {"iat", now}, {"exp", now + 300}};
    std::string id = *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"idp-1","typ":"JWT"})",
                                           json::serialize(c), *idp_key_);
    return Exchange("planner", id, "urn:ietf:params:oauth:token-type:id_token");
  }
  Result<ClientResponse> Issue(const std::string& token, const std::string& access) {
    json::object b{{"target", {{"type", "Database"}, {"id", "orders"}}}, {"access", access}};
    return Send(PostJson(json::serialize(b), token, "/v1/credentials:issue"));
  }

  fs::path dir_;
  std::unique_ptr<store::testing::PgCluster> cluster_;
  std::string admin_url_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> idp_key_;
  std::unique_ptr<ServeProcess> server_;
  std::map<std::string, std::string> secrets_;
};

TEST_F(CredentialsE2E, IssueReadContainAndRevokeOverHttp) {
  std::string root = Root();
  ASSERT_FALSE(root.empty());
  std::string child = Exchange("worker", root, "urn:ietf:params:oauth:token-type:access_token");
  ASSERT_FALSE(child.empty());
  // Before any issue, review lists read (allowed by policy) as granted but never used; write is
  // configured but no policy allows it.
  auto before = AdminGet("/v1/review/worker");
  ASSERT_TRUE(before.ok() && before->status == 200);
  EXPECT_NE(
      before->body.find(R"("unused_credential_templates":[{"database":"orders","access":"read"}])"),
      std::string::npos)
      << before->body;

  auto issued = Issue(child, "read");
  ASSERT_TRUE(issued.ok());
  ASSERT_EQ(issued->status, 201) << issued->body;
  EXPECT_EQ(issued->headers.Get("cache-control").value_or(""), "no-store");
  json::object cred = Body(issued);
  const std::string role = S(cred.if_contains("role"));
  const std::string password = S(cred.at("connection").as_object().if_contains("password"));
  EXPECT_EQ(S(cred.if_contains("state")), "active");
  EXPECT_EQ(S(cred.if_contains("initiator")), "alice");
  auto conn = Login(cred);
  ASSERT_TRUE(conn->ok()) << conn->Error();
  EXPECT_TRUE(conn->Run("SELECT * FROM orders"));
  EXPECT_FALSE(conn->Run("INSERT INTO orders VALUES (2, 'y')"));

  // write: no policy permits it; the denial is a recorded decision.
  auto denied = Issue(child, "write");
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403) << denied->body;
  json::object refusal = Body(denied);
  ASSERT_FALSE(S(refusal.if_contains("action_id")).empty()) << denied->body;
  ASSERT_TRUE(refusal.contains("ledger_index")) << denied->body;
  auto decision = Send(testing::Get(
      "/v1/ledger/entries/" + std::to_string(refusal.at("ledger_index").to_number<uint64_t>())));
  ASSERT_TRUE(decision.ok() && decision->status == 200);
  EXPECT_NE(decision->body.find("issue_credential"), std::string::npos) << decision->body;
  EXPECT_NE(decision->body.find("\"deny\""), std::string::npos) << decision->body;

  // Another credential, revoked from the CLI with the admin token.
  auto second = Issue(child, "read");
  ASSERT_TRUE(second.ok() && second->status == 201) << (second.ok() ? second->body : "");
  std::string role2 = S(Body(second).if_contains("role"));
  auto cli = testing::RunCli(
      {"credential", "revoke", role2, "--server", server_->url(), "--token", server_->token()},
      dir_);
  EXPECT_EQ(cli.rc, 0) << cli.err;
  EXPECT_NE(cli.out.find("\"revoked\""), std::string::npos) << cli.out;
  EXPECT_EQ(Admin("SELECT count(*) FROM pg_roles WHERE rolname = '" + role2 + "'"), "0");

  // Nobody appends a credential event but Custody: a forged revoke is refused.
  auto forged = Send(
      PostJson(R"({"kind":"db_credential.revoke","event_id":"x","time":"2026-01-01T00:00:00Z"})",
               server_->token(), "/v1/ledger/entries"));
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->status, 400) << forged->body;

  // From the database role back to the human: custody trace --role.
  auto trace = testing::RunCli(
      {"trace", "--role", role, "--server", server_->url(), "--token", server_->token()}, dir_);
  EXPECT_EQ(trace.rc, 0) << trace.err;
  EXPECT_NE(trace.out.find("\"credential\""), std::string::npos) << trace.out;
  EXPECT_NE(trace.out.find("issue_credential"), std::string::npos) << trace.out;
  EXPECT_NE(trace.out.find("alice"), std::string::npos) << trace.out;
  // An investigator with a reader token reads the lease and traces it, and may not revoke it.
  const std::string reader = testing::CreateToken(dir_ / "data", "reader", nullptr);
  auto by_reader = testing::RunCli(
      {"trace", "--role", role, "--server", server_->url(), "--token", reader}, dir_);
  EXPECT_EQ(by_reader.rc, 0) << by_reader.err;
  EXPECT_NE(by_reader.out.find("alice"), std::string::npos) << by_reader.out;
  auto revoke_by_reader = Send(PostJson("{}", reader, "/v1/credentials/" + role + ":revoke"));
  ASSERT_TRUE(revoke_by_reader.ok());
  EXPECT_EQ(revoke_by_reader->status, 403) << revoke_by_reader->body;

  // Blast radius of the session and review of the agent name the databases and access levels.
  auto blast = AdminGet("/v1/blast-radius?kind=session&id=" + S(cred.if_contains("root_session")));
  ASSERT_TRUE(blast.ok() && blast->status == 200) << (blast.ok() ? blast->body : "");
  json::object radius = Body(blast);
  ASSERT_TRUE(radius.contains("credentials")) << blast->body;
  bool found = false;
  for (const auto& c : radius.at("credentials").as_array()) {
    const json::object& o = c.as_object();
    if (S(o.if_contains("role")) == role) {
      found = true;
      EXPECT_EQ(S(o.if_contains("database")), "orders");
      EXPECT_EQ(S(o.if_contains("access")), "read");
      EXPECT_FALSE(o.at("revoked").as_bool());
    }
    if (S(o.if_contains("role")) == role2) {
      EXPECT_TRUE(o.at("revoked").as_bool());
    }
  }
  EXPECT_TRUE(found) << blast->body;
  auto review = AdminGet("/v1/review/worker");
  ASSERT_TRUE(review.ok() && review->status == 200);
  EXPECT_NE(review->body.find(R"({"database":"orders","access":"read","issued":2)"),
            std::string::npos)
      << review->body;
  EXPECT_NE(review->body.find(R"("unused_credential_templates":[])"), std::string::npos)
      << review->body;

  // Containment of the parent session cuts the child's open connection.
  json::object contain{{"session", S(cred.if_contains("root_session"))}, {"reason", "e2e"}};
  auto start = std::chrono::steady_clock::now();
  auto contained = Send(PostJson(json::serialize(contain), server_->token(), "/v1/contain"));
  ASSERT_TRUE(contained.ok() && contained->status / 100 == 2)
      << (contained.ok() ? contained->body : "");
  const int64_t cut_ms = conn->MillisUntilCut(start, Ms(5000));
  std::printf("[ measured ] POST /v1/contain of the parent to the connection cut: %lld ms\n",
              static_cast<long long>(cut_ms));
  ASSERT_GE(cut_ms, 0);
  EXPECT_LT(cut_ms, 1000);
  EXPECT_FALSE(Login(cred)->ok());

  // Never the passwords in the server's output.
  server_->Stop();
  std::string logs;
  for (const auto& l : server_->lines()) logs += l + "\n";
  for (const auto& l : server_->DrainOutput()) logs += l + "\n";
  EXPECT_EQ(logs.find(kAdminPassword), std::string::npos);
  EXPECT_EQ(logs.find(password), std::string::npos);
}

}  // namespace
}  // namespace custody
