// End-to-end tests of `custody token keygen|svid|exchange` against the running server
// (`custody serve --quickstart` on port 0, with a trusted OIDC issuer whose key the test holds):
// the README's path from a fresh server to a first attributed call, done with the CLI alone,
// and the refusals a script sees: each prints the RFC 6749 error on stderr, nothing on stdout,
// exits non-zero, and never echoes a token.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::CliResult;
using testing::PostJson;
using testing::ServeProcess;
using testing::Subprocess;
using testing::TempDir;

constexpr const char* kIdp = "https://idp.example";

json::object Claims(const std::string& jwt, int part) {
  size_t a = jwt.find('.');
  size_t b = jwt.find('.', a + 1);
  auto bytes = Base64UrlDecode(part == 0 ? jwt.substr(0, a) : jwt.substr(a + 1, b - a - 1));
  EXPECT_TRUE(bytes.ok()) << "not a JWT";
  if (!bytes.ok()) return {};
  return json::parse(AsString(*bytes)).as_object();
}

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

class TokenCliE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(std::string("token_cli_") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
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
                           "identity.trusted_issuers_file=" + (dir_ / "issuers.json").string()});
    ASSERT_TRUE(server_->started());
  }
  void TearDown() override {
    if (server_ && server_->started()) {
      EXPECT_EQ(server_->Stop(), 0);
    }
    server_.reset();
    fs::remove_all(dir_);
  }

  // Runs `custody ARGS…` with `input` on stdin; stdout and stderr apart. --server is added for
  // the commands that talk to the server unless given.
  CliResult Cli(std::vector<std::string> args, const std::string& input = "") {
    bool offline = args.size() >= 2 && args[1] == "keygen";
    if (!offline && std::find(args.begin(), args.end(), "--server") == args.end()) {
      args.insert(args.end(), {"--server", server_->url()});
    }
    return testing::RunCli(args, dir_, input);
  }
  // The token a successful `custody token …` printed: its only line.
  std::string Token(const CliResult& r) {
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    std::string t = r.out.substr(0, r.out.find('\n'));
    EXPECT_EQ(std::count(t.begin(), t.end(), '.'), 2) << "not a compact JWT";
    return t;
  }
  // A refusal: exit 1, nothing on stdout, the OAuth error and `says` on stderr, no token there.
  void ExpectRefused(const CliResult& r, const std::string& error, const std::string& says,
                     const std::vector<std::string>& secrets = {}) {
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(": " + error + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    for (const auto& s : secrets) EXPECT_EQ(r.err.find(s), std::string::npos) << r.err;
  }

  // `custody token keygen` then `custody agent register --jwk`, as the README does.
  void RegisterWithKey(const std::string& name) {
    CliResult key = Cli({"token", "keygen", "--out", (dir_ / (name + ".key")).string()});
    ASSERT_EQ(key.rc, 0) << key.err;
    std::ofstream(dir_ / (name + ".jwk")) << key.out;
    CliResult reg = Cli({"agent", "register", "--name", name, "--scope", "github/*", "--permission",
                         "assert_initiator", "--jwk", (dir_ / (name + ".jwk")).string(), "--token",
                         server_->token()});
    ASSERT_EQ(reg.rc, 0) << reg.err;
  }
  std::string KeyFile(const std::string& name) { return (dir_ / (name + ".key")).string(); }
  std::string Svid(const std::string& name) {
    return Token(Cli({"token", "svid", "--agent", name, "--key", KeyFile(name)}));
  }

  std::string IdToken(int64_t exp_offset) {
    int64_t now = static_cast<int64_t>(::time(nullptr));
    json::object c{{"iss", kIdp},
                   {"sub", "alice@example.com"},
                   {"aud", "custody"},
                   {"iat", now - 3600},
                   {"exp", now + exp_offset}};
    return *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"idp-1","typ":"JWT"})", json::serialize(c),
                                 *idp_key_);
  }

  fs::path dir_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> idp_key_;
  std::unique_ptr<ServeProcess> server_;
};

TEST_F(TokenCliE2e, FromAFreshServerToAnAttributedCallWithTheCliAlone) {
  CliResult key = Cli({"token", "keygen", "--out", KeyFile("planner")});
  ASSERT_EQ(key.rc, 0) << key.err;
  struct stat st {};
  ASSERT_EQ(::stat(KeyFile("planner").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json::object jwk = json::parse(key.out).as_object();  // the public JWK only
  EXPECT_EQ(jwk.find("d"), jwk.end());
  EXPECT_EQ(Cli({"token", "keygen", "--out", KeyFile("planner")}).rc, 1);  // never overwritten
  std::ofstream(dir_ / "planner.jwk") << key.out;
  CliResult reg = Cli({"agent", "register", "--name", "planner", "--scope", "github/*",
                       "--permission", "assert_initiator", "--jwk", (dir_ / "planner.jwk").string(),
                       "--token", server_->token()});
  ASSERT_EQ(reg.rc, 0) << reg.err;
  std::ofstream(dir_ / "policy.cedar")
      << R"(permit(principal == Agent::"planner", action == Action::"call_tool",
                 resource in Server::"github");)";
  CliResult pub =
      Cli({"policy", "publish", (dir_ / "policy.cedar").string(), "--token", server_->token()});
  ASSERT_EQ(pub.rc, 0) << pub.err;

  std::string svid = Svid("planner");
  json::object svid_claims = Claims(svid, 1);
  EXPECT_EQ(S(svid_claims["sub"]).rfind("spiffe://custody.local/agent/planner/instance/", 0), 0u);
  // Its aud is the issuer (the server's, found in its metadata or the default).
  EXPECT_EQ(svid_claims["aud"], json::value(json::array{svid_claims["iss"]}));

  // The client is the agent named in the SVID; the initiator is asserted by it.
  std::string session =
      Token(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token",
                 R"({"sub":"alice@example.com","iss":"ci"})", "--actor-token", svid, "--scope",
                 "github/get_issue", "--audience", "custody", "--objective", "triage issues"}));
  json::object header = Claims(session, 0);
  EXPECT_EQ(header["typ"], json::value("at+jwt"));
  json::object claims = Claims(session, 1);
  EXPECT_EQ(claims["sub"], json::value("alice@example.com"));
  EXPECT_EQ(claims["scope"], json::value("github/get_issue"));
  EXPECT_EQ(claims["act"].as_object()["sub"], svid_claims["sub"]);

  // The token on a real call: allowed by the policy naming the agent, recorded, traceable.
  auto r = server_->Client().Send(
      PostJson(R"({"action":"call_tool","target":{"server":"github","tool":"get_issue"}})", session,
               "/v1/actions:authorize"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json::object decision = json::parse(r->body).as_object();
  EXPECT_EQ(decision["decision"], json::value("allow")) << r->body;
  EXPECT_EQ(decision["session"], claims["sid"]) << r->body;
  http::ClientRequest trace = testing::Get("/v1/trace/" + S(decision["action_id"]));
  trace.headers.Set("authorization", "Bearer " + server_->token());
  auto tr = server_->Client().Send(trace);
  ASSERT_TRUE(tr.ok());
  ASSERT_EQ(tr->status, 200) << tr->body;
  EXPECT_NE(tr->body.find("\"planner\""), std::string::npos) << tr->body;
  EXPECT_NE(tr->body.find("alice@example.com"), std::string::npos) << tr->body;
  EXPECT_NE(tr->body.find(S(svid_claims["sub"])), std::string::npos) << tr->body;

  // A child session: the parent token from stdin (its type inferred), the SVID from a file.
  std::string svid2 = Svid("planner");
  std::ofstream(dir_ / "svid.jwt") << svid2 << "\n";
  std::string child =
      Token(Cli({"token", "exchange", "--agent", "planner", "--key", KeyFile("planner"),
                 "--subject-token", "-", "--actor-token", "@" + (dir_ / "svid.jwt").string(),
                 "--audience", "custody", "--lifetime", "60"},
                session + "\n"));
  json::object child_claims = Claims(child, 1);
  EXPECT_EQ(child_claims["sub"], json::value("alice@example.com"));
  EXPECT_EQ(child_claims["txn"], claims["txn"]);
  EXPECT_NE(child_claims["sid"], claims["sid"]);
  EXPECT_LE(child_claims["exp"].to_number<int64_t>() - child_claims["iat"].to_number<int64_t>(),
            60);
}

TEST_F(TokenCliE2e, AnAgentWithAClientSecretGetsItsTokensToo) {
  CliResult reg = Cli({"agent", "register", "--name", "ci-bot", "--scope", "github/*",
                       "--client-secret", "--token", server_->token()});
  ASSERT_EQ(reg.rc, 0) << reg.err;
  std::ofstream(dir_ / "secret") << S(json::parse(reg.out).as_object()["client_secret"]) << "\n";
  std::string svid = Token(Cli(
      {"token", "svid", "--agent", "ci-bot", "--client-secret-file", (dir_ / "secret").string()}));
  std::string session =
      Token(Cli({"token", "exchange", "--client-secret-file", (dir_ / "secret").string(),
                 "--subject-token", IdToken(300), "--actor-token", svid, "--audience", "custody"}));
  EXPECT_EQ(Claims(session, 1)["initiator_verification"], json::value("verified"));
}

TEST_F(TokenCliE2e, UnknownAgentAndWrongKeyAreInvalidClient) {
  RegisterWithKey("planner");
  RegisterWithKey("coder");
  ExpectRefused(Cli({"token", "svid", "--agent", "ghost", "--key", KeyFile("planner")}),
                "invalid_client", "unknown client");
  // The coder's key does not sign for the planner.
  ExpectRefused(Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("coder")}),
                "invalid_client", "client assertion");
  // Nor does a key that was never registered, in the private JWK form either.
  auto stranger = crypto::EcdsaP256PrivateKey::FromScalar(std::vector<uint8_t>(32, 7));
  ASSERT_TRUE(stranger.ok());
  json::object jwk = json::parse(crypto::EcPublicJwkJson(stranger->public_key(), "k")).as_object();
  jwk["d"] = Base64UrlEncode(std::vector<uint8_t>(32, 7));
  std::ofstream(dir_ / "stranger.jwk") << json::serialize(jwk);
  ExpectRefused(
      Cli({"token", "svid", "--agent", "planner", "--key", (dir_ / "stranger.jwk").string()}),
      "invalid_client", "client assertion");
  // An assertion addressed to another issuer is not for this server.
  ExpectRefused(Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"), "--issuer",
                     "https://elsewhere.example"}),
                "invalid_client", "aud");
  // The planner's SVID is not the coder's actor token.
  std::string svid = Svid("planner");
  ExpectRefused(
      Cli({"token", "exchange", "--agent", "coder", "--key", KeyFile("coder"), "--subject-token",
           R"({"sub":"alice"})", "--actor-token", svid, "--audience", "custody"}),
      "invalid_grant", "another agent", {svid});
}

TEST_F(TokenCliE2e, ExpiredAndForgedSubjectTokensAreInvalidGrant) {
  RegisterWithKey("planner");
  std::string svid = Svid("planner");
  std::string expired = IdToken(-600);
  ExpectRefused(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token", expired,
                     "--actor-token", svid, "--audience", "custody"}),
                "invalid_grant", "ID token: token expired", {expired, svid});

  // A genuine session token with its payload changed (a wider scope) no longer verifies.
  std::string session = Token(Cli(
      {"token", "exchange", "--key", KeyFile("planner"), "--subject-token", R"({"sub":"alice"})",
       "--actor-token", Svid("planner"), "--scope", "github/read", "--audience", "custody"}));
  size_t a = session.find('.');
  size_t b = session.find('.', a + 1);
  json::object claims = Claims(session, 1);
  claims["scope"] = "github/*";
  std::string forged =
      session.substr(0, a) + "." + Base64UrlEncode(json::serialize(claims)) + session.substr(b);
  ExpectRefused(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token", forged,
                     "--actor-token", Svid("planner"), "--audience", "custody"}),
                "invalid_grant", "subject_token", {forged, session});
  // An ID token signed by a key the trusted issuer does not publish.
  auto other = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::string impostor = *crypto::SignJwsEs256(
      R"({"alg":"ES256","kid":"idp-1","typ":"JWT"})",
      json::serialize(
          json::object{{"iss", kIdp}, {"sub", "mallory"}, {"aud", "custody"}, {"exp", now + 300}}),
      *other);
  ExpectRefused(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token", impostor,
                     "--actor-token", Svid("planner"), "--audience", "custody"}),
                "invalid_grant", "ID token", {impostor});
  // A forged SVID as the actor.
  std::string forged_svid = svid.substr(0, svid.rfind('.') + 1) + "AAAA";
  ExpectRefused(Cli({"token", "exchange", "--agent", "planner", "--key", KeyFile("planner"),
                     "--subject-token", R"({"sub":"alice"})", "--actor-token", forged_svid,
                     "--audience", "custody"}),
                "invalid_grant", "actor_token", {forged_svid});
}

// `token svid --lifetime`: a shorter SVID on request, never longer than the server's maximum
// (identity.svid_lifetime_s, 300 s by default), and a malformed duration is a usage error.
TEST_F(TokenCliE2e, SvidLifetimeIsAskedForAndBoundedByTheServer) {
  RegisterWithKey("planner");
  auto lifetime = [&](const std::string& svid) {
    json::object c = Claims(svid, 1);
    return c["exp"].to_number<int64_t>() - c["iat"].to_number<int64_t>();
  };
  EXPECT_EQ(lifetime(Svid("planner")), 300);
  EXPECT_EQ(lifetime(Token(Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"),
                                "--lifetime", "90s"}))),
            90);
  EXPECT_EQ(lifetime(Token(Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"),
                                "--lifetime", "2m"}))),
            120);
  EXPECT_EQ(lifetime(Token(Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"),
                                "--lifetime", "300"}))),
            300);
  ExpectRefused(
      Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"), "--lifetime", "1h"}),
      "invalid_request", "3600 s is past this server's JWT-SVID maximum of 300 s");
  for (const char* bad : {"0", "5d", "soon", "m"}) {
    CliResult r = Cli(
        {"token", "svid", "--agent", "planner", "--key", KeyFile("planner"), "--lifetime", bad});
    EXPECT_EQ(r.rc, 2) << bad << ": " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("--lifetime"), std::string::npos) << r.err;
  }
}

TEST_F(TokenCliE2e, MissingFlagsAreUsageErrorsAndNothingIsSent) {
  RegisterWithKey("planner");
  std::string svid = Svid("planner");
  auto usage = [&](const CliResult& r, const std::string& says) {
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.rc, 1) << "a usage error, not a refusal: " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(svid), std::string::npos) << r.err;
  };
  usage(Cli({"token", "svid", "--key", KeyFile("planner")}), "--agent");
  usage(Cli({"token", "svid", "--agent", "planner"}), "--key");
  usage(Cli({"token", "svid", "--agent", "planner", "--key", (dir_ / "nope.key").string()}),
        "--key");
  std::ofstream(dir_ / "public.jwk")
      << "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}";
  usage(Cli({"token", "svid", "--agent", "planner", "--key", (dir_ / "public.jwk").string()}),
        "public key");
  std::vector<std::string> ok = {"token",           "exchange",
                                 "--key",           KeyFile("planner"),
                                 "--subject-token", R"({"sub":"alice"})",
                                 "--actor-token",   svid,
                                 "--audience",      "custody"};
  auto without = [&](const std::string& flag) {
    std::vector<std::string> args;
    for (size_t i = 0; i < ok.size(); ++i) {
      if (ok[i] == flag) {
        ++i;
        continue;
      }
      args.push_back(ok[i]);
    }
    return args;
  };
  usage(Cli(without("--audience")), "--audience");
  usage(Cli(without("--subject-token")), "--subject-token");
  usage(Cli(without("--actor-token")), "--actor-token");
  usage(Cli(without("--key")), "--key");
  std::vector<std::string> both = without("--actor-token");
  both.insert(both.end(), {"--actor-token", "-"});
  for (auto& a : both) {
    if (a == R"({"sub":"alice"})") a = "-";
  }
  usage(Cli(both), "stdin");
  usage(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token", "opaque",
             "--actor-token", svid, "--audience", "custody"}),
        "--subject-token-type");
  // An actor token that names no agent, without --agent: the client is unknown.
  usage(Cli({"token", "exchange", "--key", KeyFile("planner"), "--subject-token",
             R"({"sub":"alice"})", "--actor-token", "x.y.z", "--audience", "custody"}),
        "--agent");
  // A server that is not there is named, with exit 1.
  CliResult down = Cli({"token", "svid", "--agent", "planner", "--key", KeyFile("planner"),
                        "--server", "http://127.0.0.1:1"});
  EXPECT_EQ(down.rc, 1);
  EXPECT_EQ(down.out, "");
  EXPECT_NE(down.err.find("cannot reach"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace custody
