// The investigation routes over real stores: every route needs a reader or admin token, answers
// JSON (or a tree / DOT when asked), and maps errors to the one error shape.
#include "api/investigation_routes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include "attribution/attribution_service.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "investigate/evidence.h"
#include "ledger/ledger.h"
#include "store/stores.h"

namespace custody::api {
namespace {

namespace json = boost::json;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

class InvestigationRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody-invroutes-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto key = crypto::Ed25519PrivateKey::Generate();
    ledger::LedgerOptions lo;
    lo.origin = "custody.test/ledger";
    auto stores = store::OpenStores(store::StorageOptions::InDirectory(dir_.string()));
    ASSERT_TRUE(stores.ok()) << stores.status().ToString();
    ledger_ = std::move(*ledger::Ledger::Open(std::move(stores->ledger), std::move(*key), lo));
    ids_ = std::move(stores->identity);
    identity::TokenServiceOptions o;
    o.trust_domain = "custody.test";
    o.issuer = "https://custody.test";
    tokens_ = std::move(*identity::TokenService::Create(
        *ids_, clock_, random_, errors_,
        [this](const std::string& e) { return events::Recorder(*ledger_).RecordText(e).status(); },
        o));
    store_ = std::move(stores->attribution);
    attr_ = std::move(*attribution::AttributionService::Create(*tokens_, *ledger_, *store_, clock_,
                                                               random_, errors_, {}));
    ASSERT_TRUE(AddInvestigationRoutes(router_, *tokens_, *ledger_, *attr_, clock_).ok());

    identity::Agent a;
    a.name = "planner";
    a.environment = identity::Environment::kDev;
    a.grants = {"github/*"};
    a.permissions = {"assert_initiator"};
    auto reg = tokens_->RegisterAgent(a, true, "admin");
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto client = *tokens_->AuthenticateClient("planner", "", "", reg->client_secret).value;
    identity::ExchangeRequest x;
    x.subject_token = R"({"sub":"alice@example.com","iss":"https://hr.example.com"})";
    x.subject_token_type = std::string(identity::kTokenTypeInitiatorAssertion);
    x.actor_token = tokens_->IssueSvid(client, "https://custody.test").value->access_token;
    x.actor_token_type = std::string(identity::kTokenTypeJwt);
    x.audience = "custody";
    auto t = tokens_->Exchange(client, x);
    ASSERT_TRUE(t.ok()) << t.error.description;
    sid_ = t.value->sid;
  }
  void TearDown() override {
    attr_.reset();
    tokens_.reset();
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs the route as the server would after authentication.
  http::Response Get(const std::string& path, const std::string& query = "") {
    auto m = router_.Find("GET", path);
    EXPECT_NE(m.route, nullptr) << path;
    if (m.route == nullptr) return {};
    EXPECT_TRUE(m.route->auth.required) << path;
    EXPECT_EQ(m.route->auth.roles, (std::vector<std::string>{"admin", "reader"})) << path;
    http::Request req;
    req.method = "GET";
    req.path = path;
    req.query = query;
    req.params = m.params;
    req.principal = http::Principal{"t1", "reader"};
    http::Response out;
    m.route->handler(req, [&](http::Response r) { out = std::move(r); });
    return out;
  }
  static std::string ContentType(const http::Response& r) {
    return std::string(r.headers.Get("content-type").value_or(""));
  }

  std::filesystem::path dir_;
  SystemClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<store::IdentityStore> ids_;
  std::unique_ptr<identity::TokenService> tokens_;
  std::unique_ptr<store::AttributionStore> store_;
  std::unique_ptr<attribution::AttributionService> attr_;
  http::Router router_;
  std::string sid_;
};

TEST_F(InvestigationRoutesTest, AnswersJsonTreesAndDot) {
  http::Response ev = Get("/v1/sessions/" + sid_ + "/events");
  EXPECT_EQ(ev.status, 200) << ev.body;
  EXPECT_EQ(S(json::parse(ev.body).at("session")), sid_);
  http::Response tree = Get("/v1/sessions/" + sid_ + "/events", "format=tree");
  EXPECT_EQ(tree.status, 200);
  EXPECT_NE(ContentType(tree).find("text/plain"), std::string::npos);
  EXPECT_NE(tree.body.find("agent planner"), std::string::npos) << tree.body;

  http::Response dot = Get("/v1/graph", "format=dot");
  EXPECT_EQ(dot.status, 200);
  EXPECT_NE(ContentType(dot).find("graphviz"), std::string::npos);
  EXPECT_EQ(Get("/v1/graph").status, 200);

  http::Response br = Get("/v1/blast-radius", "kind=agent&id=planner");
  EXPECT_EQ(br.status, 200) << br.body;
  EXPECT_EQ(Get("/v1/review/planner", "since=7d").status, 200);

  http::Response evidence = Get("/v1/evidence/" + sid_);
  ASSERT_EQ(evidence.status, 200) << evidence.body;
  auto report = investigate::VerifyEvidence(evidence.body, ledger_->VerifierKey());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok);
  EXPECT_GE(report->events, 1u);  // the session.start
}

TEST_F(InvestigationRoutesTest, ErrorsUseTheErrorShape) {
  auto code = [](const http::Response& r) { return S(json::parse(r.body).at("error").at("code")); };
  http::Response r = Get("/v1/trace/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code(r), "not_found");
  EXPECT_EQ(Get("/v1/blast-radius", "kind=agent").status, 400);
  EXPECT_EQ(Get("/v1/blast-radius", "kind=robot&id=x").status, 400);
  EXPECT_EQ(Get("/v1/review/planner", "since=yesterday").status, 400);
  EXPECT_EQ(Get("/v1/review/ghost").status, 404);
  EXPECT_EQ(Get("/v1/graph", "format=svg").status, 400);
  EXPECT_EQ(Get("/v1/sessions/" + sid_ + "/events", "format=xml").status, 400);
  EXPECT_EQ(Get("/v1/evidence/nope").status, 404);
}

}  // namespace
}  // namespace custody::api
