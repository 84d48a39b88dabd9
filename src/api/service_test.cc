// `custody serve` in-process on a disk that fills up: real SQLite files whose writes fail on
// command (store/testing/fault_vfs.h), real HTTP. What an operator and a client see must be
// clean and visible: /readyz fails with the reason, every failed commit is counted and logged,
// clients get `unavailable` naming no file, and everything works again once there is room.
// Also: the issuer a service names when identity.issuer is not set, and the RFC 8414 document.
#include "api/service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "api/identity_routes.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/stream_logger.h"
#include "http/client.h"
#include "store/testing/fault_vfs.h"

namespace custody::api {
namespace {

namespace fs = std::filesystem;
using store::testing::Fault;
using store::testing::FaultVfs;

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultVfs::Install();
    dir_ = fs::temp_directory_path() / ("custody-service-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    log_file_ = std::tmpfile();
    ASSERT_NE(log_file_, nullptr);
    log_ = std::make_unique<StreamLogger>(LogLevel::kInfo, true, clock_, log_file_);
    Config c;
    c.data_dir = dir_.string();
    c.listen = "127.0.0.1:0";
    c.worker_threads = 2;
    // Set, so that the only warnings in the log are the full disk's (checked below).
    c.identity.issuer = "https://custody.example";
    auto s = Service::Open(c, {.quickstart = true}, clock_, random_, *log_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(*s);
    ASSERT_TRUE(service_->Start().ok());
    admin_ = service_->bootstrap_token()->token;
  }
  void TearDown() override {
    FaultVfs::Clear();
    service_.reset();
    if (log_file_ != nullptr) std::fclose(log_file_);
    fs::remove_all(dir_);
  }

  http::ClientResponse Send(const std::string& method, const std::string& target,
                            const std::string& body = "",
                            const std::string& type = "application/json") {
    http::ClientRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!body.empty()) r.headers.Set("content-type", type);
    r.headers.Set("authorization", "Bearer " + admin_);
    auto resp = http::BlockingHttpClient("127.0.0.1", service_->port()).Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : http::ClientResponse{};
  }
  std::string Log() {
    std::fflush(log_file_);
    std::rewind(log_file_);
    std::string out;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, log_file_)) out.append(buf, n);
    return out;
  }
  // A client's error: unavailable, nothing about files or SQLite's internals.
  void ExpectCleanUnavailable(const http::ClientResponse& r, const std::string& what) {
    EXPECT_EQ(r.status, 503) << what << ": " << r.body;
    EXPECT_NE(r.body.find("\"code\":\"unavailable\""), std::string::npos) << what << r.body;
    EXPECT_EQ(r.body.find(dir_.string()), std::string::npos) << what << r.body;
    EXPECT_EQ(r.body.find(".db"), std::string::npos) << what << r.body;
  }

  SystemClock clock_;
  SystemRandom random_;
  fs::path dir_;
  std::FILE* log_file_ = nullptr;
  std::unique_ptr<StreamLogger> log_;
  std::unique_ptr<Service> service_;
  std::string admin_;
};

TEST_F(FullDiskTest, AFullDiskIsVisibleCleanAndRecoverable) {
  ASSERT_EQ(Send("POST", "/v1/ledger/entries", R"({"kind":"test","n":1})").status, 201);
  auto agent = Send("POST", "/v1/agents",
                    R"({"name":"bot","environment":"dev","business_owner":"ops",)"
                    R"("technical_owner":"platform","revocation_contact":"sec@example.com",)"
                    R"("grants":["github/*"],"client_secret":true})");
  ASSERT_EQ(agent.status, 201) << agent.body;
  size_t at = agent.body.find("\"client_secret\":\"");
  ASSERT_NE(at, std::string::npos);
  std::string secret = agent.body.substr(at + 17, agent.body.find('"', at + 17) - at - 17);
  const std::string token_form =
      "grant_type=client_credentials&client_id=bot&client_secret=" + secret +
      "&audience=https%3A%2F%2Fcustody.local";
  EXPECT_EQ(Send("GET", "/readyz").status, 200);

  FaultVfs::Fail(dir_.string(), Fault::kDiskFull);  // every file of the data directory
  ExpectCleanUnavailable(Send("POST", "/v1/ledger/entries", R"({"kind":"test","n":2})"), "append");
  auto ready = Send("GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("the ledger cannot commit: database or disk is full"),
            std::string::npos)
      << ready.body;
  ExpectCleanUnavailable(Send("POST", "/v1/agents",
                              R"({"name":"bot2","environment":"dev","business_owner":"ops",)"
                              R"("technical_owner":"platform","revocation_contact":"s@e.com",)"
                              R"("grants":["github/*"],"client_secret":true})"),
                         "registration");
  auto issued = Send("POST", "/oauth2/token", token_form, "application/x-www-form-urlencoded");
  EXPECT_EQ(issued.status, 503) << issued.body;
  EXPECT_EQ(issued.body.find("access_token"), std::string::npos) << issued.body;
  EXPECT_EQ(issued.body.find(dir_.string()), std::string::npos) << issued.body;
  // Counted and logged for the operator.
  std::string metrics = Send("GET", "/metrics").body;
  EXPECT_NE(metrics.find("custody_errors_total{site=\"ledger.commit\"}"), std::string::npos)
      << metrics;
  std::string log = Log();
  EXPECT_NE(log.find("\"site\":\"ledger.commit\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"level\":\"warn\""), std::string::npos) << log;

  // Room again: ready, and appends, registrations and issuance work; nothing was half-written.
  FaultVfs::Clear();
  EXPECT_EQ(Send("GET", "/readyz").status, 200);
  auto again = Send("POST", "/v1/ledger/entries", R"({"kind":"test","n":3})");
  EXPECT_EQ(again.status, 201) << again.body;
  auto token = Send("POST", "/oauth2/token", token_form, "application/x-www-form-urlencoded");
  EXPECT_EQ(token.status, 200) << token.body;
  auto agent2 = Send("POST", "/v1/agents",
                     R"({"name":"bot2","environment":"dev","business_owner":"ops",)"
                     R"("technical_owner":"platform","revocation_contact":"s@e.com",)"
                     R"("grants":["github/*"],"client_secret":true})");
  EXPECT_EQ(agent2.status, 201) << agent2.body;
}

// identity.issuer unset: the service names the URL it really listens on (port 0 resolved before
// anything could mint a token), warns that it should be set, and every part of it agrees: the
// RFC 8414 metadata, the gateway's RFC 9728 metadata and the tokens' iss.
class ServiceIssuerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("custody-issuer-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    log_file_ = std::tmpfile();
    ASSERT_NE(log_file_, nullptr);
    log_ = std::make_unique<StreamLogger>(LogLevel::kInfo, true, clock_, log_file_);
  }
  void TearDown() override {
    service_.reset();
    if (log_file_ != nullptr) std::fclose(log_file_);
    fs::remove_all(dir_);
  }
  void Open(const std::string& listen, const std::string& issuer) {
    Config c;
    c.data_dir = dir_.string();
    c.listen = listen;
    c.worker_threads = 1;
    c.identity.issuer = issuer;
    auto s = Service::Open(c, {.quickstart = true}, clock_, random_, *log_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(*s);
    ASSERT_TRUE(service_->Start().ok());
  }
  std::string Get(const std::string& target) {
    http::ClientRequest r;
    r.target = target;
    auto resp = http::BlockingHttpClient("127.0.0.1", service_->port()).Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    EXPECT_EQ(resp.ok() ? resp->status : 0, 200) << target;
    return resp.ok() ? resp->body : "";
  }
  std::string Log() {
    std::fflush(log_file_);
    std::rewind(log_file_);
    std::string out;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, log_file_)) out.append(buf, n);
    return out;
  }

  SystemClock clock_;
  SystemRandom random_;
  fs::path dir_;
  std::FILE* log_file_ = nullptr;
  std::unique_ptr<StreamLogger> log_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceIssuerTest, UnsetIsTheUrlListenedOnWithAWarning) {
  ASSERT_NO_FATAL_FAILURE(Open("127.0.0.1:0", ""));
  ASSERT_NE(service_->port(), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(service_->port());
  EXPECT_EQ(service_->issuer(), url);
  std::string log = Log();
  EXPECT_NE(log.find("identity.issuer is not set: using " + url + "; set it in production"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("\"level\":\"warn\""), std::string::npos) << log;

  std::string as = Get("/.well-known/oauth-authorization-server");
  EXPECT_NE(as.find("\"issuer\":\"" + url + "\""), std::string::npos) << as;
  EXPECT_NE(as.find("\"token_endpoint\":\"" + url + "/oauth2/token\""), std::string::npos) << as;
  EXPECT_EQ(Get("/.well-known/openid-configuration"), as);
  std::string prm = Get("/.well-known/oauth-protected-resource/mcp");
  EXPECT_NE(prm.find("\"authorization_servers\":[\"" + url + "\"]"), std::string::npos) << prm;
  EXPECT_NE(prm.find("\"resource\":\"" + url + "/mcp\""), std::string::npos) << prm;
}

TEST_F(ServiceIssuerTest, ConfiguredIsUsedAsIsWithoutAWarning) {
  ASSERT_NO_FATAL_FAILURE(Open("127.0.0.1:0", "https://custody.example"));
  EXPECT_EQ(service_->issuer(), "https://custody.example");
  EXPECT_EQ(Log().find("identity.issuer is not set"), std::string::npos);
  std::string as = Get("/.well-known/oauth-authorization-server");
  EXPECT_NE(as.find("\"issuer\":\"https://custody.example\""), std::string::npos) << as;
  std::string prm = Get("/.well-known/oauth-protected-resource");
  EXPECT_NE(prm.find("\"authorization_servers\":[\"https://custody.example\"]"), std::string::npos)
      << prm;
}

TEST(AuthorizationServerMetadata, NamesOnlyWhatIsImplemented) {
  std::string m = AuthorizationServerMetadataJson("https://c.example");
  EXPECT_EQ(m,
            R"({"issuer":"https://c.example","token_endpoint":"https://c.example/oauth2/token",)"
            R"("jwks_uri":"https://c.example/.well-known/jwks.json","grant_types_supported":)"
            R"(["client_credentials","urn:ietf:params:oauth:grant-type:token-exchange"],)"
            R"("token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_post"],)"
            R"("token_endpoint_auth_signing_alg_values_supported":["ES256"],)"
            R"("introspection_endpoint":"https://c.example/oauth2/introspect",)"
            R"("introspection_endpoint_auth_methods_supported":["Bearer"]})");
}

}  // namespace
}  // namespace custody::api
