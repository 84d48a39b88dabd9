// Key rotation against the running server: `custody key rotate` (POST /v1/keys/rotate) starts
// signing with a new key, the JWKS publishes both, tokens issued before still verify and
// introspect active, new tokens carry the new kid, and only admins may rotate.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "common/encoding.h"
#include "crypto/jose.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace json = boost::json;
using testing::CreateToken;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::RunCommand;
using testing::ServeProcess;
using testing::TempDir;

constexpr const char* kIssuer = "https://custody.local";  // identity.issuer, as configured

json::object Body(const Result<http::ClientResponse>& r) {
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return {};
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  EXPECT_FALSE(ec) << r->body;
  return ec || !v.is_object() ? json::object{} : v.as_object();
}

std::string KidOf(const std::string& token) {
  auto header = Base64UrlDecode(std::string_view(token).substr(0, token.find('.')));
  return std::string(json::parse(AsString(*header)).as_object().at("kid").as_string());
}

std::string CheckpointSize(http::BlockingHttpClient& c) {
  auto r = c.Send(Get("/v1/ledger/checkpoint"));
  EXPECT_TRUE(r.ok() && r->status == 200);
  if (!r.ok()) return "";
  size_t a = r->body.find('\n');
  return r->body.substr(a + 1, r->body.find('\n', a + 1) - a - 1);  // line 2: tree size
}

class RotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TempDir("rotation") / "data";  // created by --quickstart with mode 0700
    server_ = std::make_unique<ServeProcess>(
        data_, std::vector<std::string>{"--set", std::string("identity.issuer=") + kIssuer});
    ASSERT_TRUE(server_->started());
    auto c = server_->Client();
    json::object agent{{"name", "rotator"},
                       {"grants", json::array{"tools/*"}},
                       {"permissions", json::array{"assert_initiator"}},
                       {"client_secret", true}};
    auto r = c.Send(PostJson(json::serialize(agent), server_->token(), "/v1/agents"));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201) << r->body;
    secret_ = std::string(json::parse(r->body).as_object().at("client_secret").as_string());
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(data_.parent_path());
  }

  // A JWT-SVID, then a delegated token for an asserted initiator.
  std::pair<std::string, std::string> Issue() {
    auto c = server_->Client();
    auto svid = Body(c.Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                                       {"client_id", "rotator"},
                                                       {"client_secret", secret_},
                                                       {"audience", kIssuer}})));
    std::string s(svid.at("access_token").as_string());
    auto at = Body(c.Send(
        PostForm("/oauth2/token",
                 {{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                  {"client_id", "rotator"},
                  {"client_secret", secret_},
                  {"subject_token", R"({"sub":"nightly","iss":"ci"})"},
                  {"subject_token_type", "urn:custody:params:oauth:token-type:initiator-assertion"},
                  {"actor_token", s},
                  {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                  {"audience", "gateway"}})));
    return {s, std::string(at.at("access_token").as_string())};
  }

  bool Active(const std::string& token) {
    auto c = server_->Client();
    auto o = Body(c.Send(PostForm("/oauth2/introspect", {{"token", token}}, server_->token())));
    return o.contains("active") && o.at("active") == true;
  }

  crypto::Jwks PublishedKeys() {
    auto c = server_->Client();
    auto r = c.Send(Get("/.well-known/jwks.json"));
    EXPECT_TRUE(r.ok());
    auto set = crypto::Jwks::Parse(r.ok() ? r->body : "");
    EXPECT_TRUE(set.ok());
    return set.ok() ? std::move(*set) : crypto::Jwks{};
  }

  std::filesystem::path data_;
  std::unique_ptr<ServeProcess> server_;
  std::string secret_;
};

TEST_F(RotationTest, CliRotationKeepsOldTokensValidAndSignsWithTheNewKey) {
  auto [svid1, token1] = Issue();
  std::string old_kid = KidOf(token1);
  EXPECT_EQ(KidOf(svid1), old_kid);
  ASSERT_EQ(PublishedKeys().size(), 1u);
  auto c = server_->Client();
  std::string size_before = CheckpointSize(c);

  std::string out;
  int rc = RunCommand(
      {CUSTODY_BINARY, "key", "rotate", "--server", server_->url(), "--token", server_->token()},
      &out);
  ASSERT_EQ(rc, 0) << out;
  json::object printed = json::parse(out).as_object();
  std::string new_kid(printed.at("kid").as_string());
  EXPECT_NE(new_kid, old_kid);
  EXPECT_EQ(printed.at("published_kids").as_array().size(), 2u);
  // The rotation is one ledger event, durable before the answer.
  EXPECT_EQ(std::stoll(CheckpointSize(c)), std::stoll(size_before) + 1);

  // Both keys are published; the old token still verifies against the JWKS and is active.
  crypto::Jwks keys = PublishedKeys();
  EXPECT_EQ(keys.size(), 2u);
  ASSERT_NE(keys.Find(old_kid), nullptr);
  ASSERT_NE(keys.Find(new_kid), nullptr);
  auto resolve = [&](std::string_view kid) { return keys.Find(kid); };
  EXPECT_TRUE(crypto::VerifyJwsEs256(token1, resolve).ok());
  EXPECT_TRUE(Active(token1));
  // The old JWT-SVID is still accepted as an actor token (verified inside Custody).
  auto child = Body(c.Send(PostForm(
      "/oauth2/token", {{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                        {"client_id", "rotator"},
                        {"client_secret", secret_},
                        {"subject_token", token1},
                        {"subject_token_type", "urn:ietf:params:oauth:token-type:access_token"},
                        {"actor_token", svid1},
                        {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                        {"audience", "gateway"}})));
  ASSERT_TRUE(child.contains("access_token")) << json::serialize(child);
  EXPECT_EQ(KidOf(std::string(child.at("access_token").as_string())), new_kid);

  // New tokens carry the new kid and verify with it.
  auto [svid2, token2] = Issue();
  EXPECT_EQ(KidOf(svid2), new_kid);
  EXPECT_EQ(KidOf(token2), new_kid);
  EXPECT_TRUE(crypto::VerifyJwsEs256(token2, resolve).ok());
  EXPECT_TRUE(Active(token2));
}

TEST_F(RotationTest, OnlyAdminsMayRotate) {
  auto c = server_->Client();
  http::ClientRequest req;
  req.method = "POST";
  req.target = "/v1/keys/rotate";
  auto anonymous = c.Send(req);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  std::string reader = CreateToken(data_, "reader", nullptr);
  req.headers.Set("authorization", "Bearer " + reader);
  auto as_reader = c.Send(req);
  ASSERT_TRUE(as_reader.ok());
  EXPECT_EQ(as_reader->status, 403);
  EXPECT_EQ(PublishedKeys().size(), 1u);
  // The CLI says why and exits non-zero.
  std::string out;
  EXPECT_NE(
      RunCommand({CUSTODY_BINARY, "key", "rotate", "--server", server_->url(), "--token", reader},
                 &out),
      0);
  EXPECT_NE(out.find("key rotate"), std::string::npos) << out;
  EXPECT_EQ(PublishedKeys().size(), 1u);
}

}  // namespace
}  // namespace custody
