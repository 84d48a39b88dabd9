// Just-in-time PostgreSQL credentials against a real server (a private throwaway cluster,
// store/testing/pg_cluster.h, whose pg_hba.conf is made to check the passwords of the custody_*
// roles): an agent reads with its credential and is refused a write; another agent's write is
// denied by policy and the denial recorded; containment of the parent session cuts the open
// connection within a second; expiry and revocation end logins and drop the role; a revocation
// while the server is down is retried and reported only once done; the password is in neither
// the ledger nor the log.
#include "credentials/credential_service.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "attribution/testing/world.h"
#include "common/stream_logger.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "store/stores.h"
#include "store/testing/pg_cluster.h"

namespace custody::credentials {
namespace {

using attribution::testkit::World;
using store::LeaseState;
using store::testing::PgCluster;
using Ms = std::chrono::milliseconds;

constexpr const char* kPolicies = R"(
@id("read-orders") permit(principal, action == Action::"issue_credential",
                          resource == Database::"orders")
  when { context.arguments.access == "read" };
@id("planner-writes") permit(principal == Agent::"planner", action == Action::"issue_credential",
                             resource == Database::"orders");
)";

// The cluster of this test binary, with password checks for the credentials' roles.
PgCluster* cluster = nullptr;
std::string admin_url;  // the cluster's superuser on the database the credentials are for

using store::testing::PgTestConnection;

std::unique_ptr<PgTestConnection> Login(const IssuedCredential& cred,
                                        const std::string& password = "") {
  return PgTestConnection::Connect(cred.connect.host, cred.connect.port, cred.connect.dbname,
                                   cred.lease.role, password.empty() ? cred.password : password);
}

// A statement as the cluster's superuser, on the credentials' database.
bool Admin(const std::string& sql, std::string* first = nullptr) {
  PGconn* c = PQconnectdb(admin_url.c_str());
  bool ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PGresult* r = PQexec(c, sql.c_str());
    ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok && first && PQntuples(r) > 0) *first = PQgetvalue(r, 0, 0);
    PQclear(r);
  }
  PQfinish(c);
  return ok;
}

bool RoleExists(const std::string& role) {
  std::string n;
  EXPECT_TRUE(Admin("SELECT count(*) FROM pg_roles WHERE rolname = '" + role + "'", &n));
  return n != "0";
}

class CredentialEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto c = PgCluster::StartPrivate();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    owned_ = std::move(*c);
    cluster = owned_.get();
    auto url = cluster->NewDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    admin_url = *url;
    // The cluster trusts every local login; the credentials' roles must give their password (and
    // so meet VALID UNTIL, which only password authentication checks): the test's templates make
    // them members of custody_jit, whose members pg_hba.conf asks for a SCRAM password.
    std::string hba;
    ASSERT_TRUE(Admin("SHOW hba_file", &hba));
    std::ifstream in(hba);
    std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(hba, std::ios::trunc);
    out << "host all +custody_jit 127.0.0.1/32 scram-sha-256\n" << rest;
    out.close();
    ASSERT_TRUE(Admin("CREATE ROLE custody_jit NOLOGIN"));
    ASSERT_TRUE(Admin("SELECT pg_reload_conf()"));
    ASSERT_TRUE(
        Admin("CREATE TABLE orders (id int PRIMARY KEY, item text);"
              "INSERT INTO orders VALUES (1, 'tea'), (2, 'milk')"));
  }
  void TearDown() override { owned_.reset(); }

 private:
  std::unique_ptr<PgCluster> owned_;
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new CredentialEnvironment);

class CredentialServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster, nullptr);
    auto w = World::Create(
        std::filesystem::temp_directory_path() / ("custody-cred-" + std::to_string(::getpid())), {},
        store::Backend::kMemory);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(w_->Register("worker", {"Database:*"}, {}, identity::Environment::kDev).ok());
    ASSERT_TRUE(w_->svc->PublishPolicies(kPolicies, "", "admin").ok());
    auto s = store::OpenCredentialStore(store::StorageOptions::InMemory());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    recorder_ = std::make_unique<events::Recorder>(*w_->ledger);
    log_file_ = std::tmpfile();
    logger_ = std::make_unique<StreamLogger>(LogLevel::kDebug, true, w_->clock, log_file_);
    errors_ = std::make_unique<ErrorReporter>(*logger_);
    Open();
  }
  void TearDown() override {
    svc_.reset();
    if (log_file_) std::fclose(log_file_);
  }
  void Open(Ms expiry_interval = Ms(50)) {
    auto info = ParseAdminUrl(admin_url, "admin_url");
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    Database db;
    db.name = "orders";
    db.connect = *info;
    db.max_ttl_s = 600;
    db.connection_limit = 3;
    db.access["read"] = {
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}; GRANT custody_jit TO {{role}}",
        0};
    db.access["write"] = {
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {{role}};"
        " GRANT custody_jit TO {{role}}",
        60};
    db.roles = std::make_shared<PgRoleManager>(admin_url, "", "orders", Ms(2000));
    CredentialOptions o;
    o.databases.push_back(std::move(db));
    o.expiry_interval = expiry_interval;
    o.retry_first = Ms(50);
    o.retry_max = Ms(200);
    auto svc = CredentialService::Create(*w_->tokens, *w_->svc, *store_, *recorder_, w_->clock,
                                         w_->random, *errors_, std::move(o));
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    svc_ = std::move(*svc);
  }
  // A root session of the planner and a child session of the worker under it.
  void Sessions() {
    auto root = w_->Root("planner");
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = *root;
    auto child = w_->Child(root_.token, "worker");
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    child_ = *child;
  }
  Result<IssuedCredential> Issue(const std::string& token, const std::string& access,
                                 int64_t ttl_s = 0, Refusal* refusal = nullptr) {
    return svc_->Issue(IssueRequest{token, "orders", access, ttl_s}, refusal);
  }
  // Waits (bounded) until the lease of `role` is in `state`.
  bool WaitFor(const std::string& role, LeaseState state, Ms limit = Ms(10000)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      auto l = store_->Get(role);
      if (l.ok() && *l && (*l)->state == state) return true;
      std::this_thread::sleep_for(Ms(10));
    }
    return false;
  }
  // Every ledger entry's text, and the kinds among them.
  std::string Ledger() {
    w_->svc->FlushIndex();
    std::string all;
    Status st = w_->ledger->store().ScanLeaves(0, [&](const store::StoredLeaf& l) {
      all += l.data + "\n";
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return all;
  }
  std::string Log() {
    std::fflush(log_file_);
    std::rewind(log_file_);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, log_file_)) > 0) out.append(buf, n);
    return out;
  }

  std::unique_ptr<World> w_;
  std::unique_ptr<store::CredentialStore> store_;
  std::unique_ptr<events::Recorder> recorder_;
  FILE* log_file_ = nullptr;
  std::unique_ptr<StreamLogger> logger_;
  std::unique_ptr<ErrorReporter> errors_;
  std::unique_ptr<CredentialService> svc_;
  attribution::testkit::IssuedSession root_, child_;
};

TEST_F(CredentialServiceTest, ReadCredentialReadsAndIsRefusedAWrite) {
  Sessions();
  auto cred = Issue(child_.token, "read");
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  EXPECT_EQ(cred->lease.sid, child_.sid);
  EXPECT_EQ(cred->lease.root_sid, root_.sid);
  EXPECT_EQ(cred->lease.agent, "worker");
  EXPECT_EQ(cred->lease.initiator, "alice@example.com");
  EXPECT_LE(cred->lease.role.size(), 63u);
  EXPECT_EQ(cred->lease.role.rfind("custody_", 0), 0u);

  auto wrong = Login(*cred, "not-the-password");
  EXPECT_FALSE(wrong->ok()) << "the role checks its password";
  auto conn = Login(*cred);
  ASSERT_TRUE(conn->ok()) << conn->Error();
  EXPECT_TRUE(conn->Run("SELECT count(*) FROM orders"));
  EXPECT_FALSE(conn->Run("INSERT INTO orders VALUES (3, 'beer')")) << "read only";
  // pg_stat_activity names the session.
  std::string who;
  ASSERT_TRUE(Admin("SELECT usename FROM pg_stat_activity WHERE usename LIKE 'custody\\_%'", &who));
  std::string sid_hex;
  for (char c : child_.sid) {
    if (c != '-') sid_hex += c;
  }
  EXPECT_NE(who.find(sid_hex), std::string::npos) << who;

  std::string ledger = Ledger();
  EXPECT_NE(ledger.find("\"db_credential.issue\""), std::string::npos);
  EXPECT_NE(ledger.find(cred->lease.password_sha256), std::string::npos);
  EXPECT_EQ(ledger.find(cred->password), std::string::npos) << "the password is never recorded";
}

TEST_F(CredentialServiceTest, AnotherAgentsWriteIsDeniedByPolicyAndRecorded) {
  Sessions();
  Refusal refusal;
  auto cred = Issue(child_.token, "write", 0, &refusal);
  ASSERT_EQ(cred.status().code(), StatusCode::kPermissionDenied) << cred.status().ToString();
  ASSERT_FALSE(refusal.action_id.empty());
  auto action = w_->svc->FindAction(refusal.action_id);
  ASSERT_TRUE(action.ok() && action->has_value());
  EXPECT_EQ((*action)->action, "issue_credential");
  EXPECT_EQ((*action)->decision, "deny");
  EXPECT_TRUE(store_->ListBySession(child_.sid)->empty()) << "no lease, no role";
  // The planner may write.
  auto planner = Issue(root_.token, "write");
  ASSERT_TRUE(planner.ok()) << planner.status().ToString();
  auto conn = Login(*planner);
  ASSERT_TRUE(conn->ok()) << conn->Error();
  EXPECT_TRUE(conn->Run("INSERT INTO orders VALUES (100, 'planned') ON CONFLICT DO NOTHING"));
}

TEST_F(CredentialServiceTest, ContainingTheParentCutsTheOpenConnectionWithinASecond) {
  Sessions();
  auto cred = Issue(child_.token, "read");
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  auto conn = Login(*cred);
  ASSERT_TRUE(conn->ok()) << conn->Error();
  ASSERT_TRUE(conn->Run("SELECT 1"));

  auto start = std::chrono::steady_clock::now();
  auto contained = w_->svc->Contain("session", root_.sid, "test containment", "admin:test");
  ASSERT_TRUE(contained.ok()) << contained.status().ToString();
  const int64_t cut_ms = conn->MillisUntilCut(start, Ms(5000));
  std::printf("[ measured ] containment of the parent to the connection cut: %lld ms\n",
              static_cast<long long>(cut_ms));
  ASSERT_GE(cut_ms, 0) << "the connection was never cut";
  EXPECT_LT(cut_ms, 1000);
  EXPECT_FALSE(Login(*cred)->ok()) << "the next login fails";
  ASSERT_TRUE(WaitFor(cred->lease.role, LeaseState::kRevoked));
  EXPECT_FALSE(RoleExists(cred->lease.role));
  EXPECT_EQ((*store_->Get(cred->lease.role))->revoke_reason, "session contained");
  // A contained session gets no new credential.
  EXPECT_FALSE(Issue(child_.token, "read").ok());
}

// A tripwire on the credential action contains like one on any other action: the worker asking
// for write contains its session, and the read credential it already holds is cut with it; the
// parent session is spared.
TEST_F(CredentialServiceTest, ATripwireOnIssuingContainsTheSessionAndCutsItsCredential) {
  ASSERT_TRUE(w_->svc
                  ->PublishPolicies(std::string(kPolicies) + R"(
@id("worker-asks-write") @contain("session")
forbid(principal == Agent::"worker", action == Action::"issue_credential", resource)
  when { context.arguments.access == "write" };
)",
                                    "", "admin")
                  .ok());
  Sessions();
  auto cred = Issue(child_.token, "read");
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  auto conn = Login(*cred);
  ASSERT_TRUE(conn->ok()) << conn->Error();
  EXPECT_FALSE(Issue(child_.token, "write").ok());
  ASSERT_TRUE(WaitFor(cred->lease.role, LeaseState::kRevoked));
  EXPECT_FALSE(conn->Run("SELECT 1")) << "its open connection is cut";
  EXPECT_FALSE(Login(*cred)->ok());
  EXPECT_FALSE(RoleExists(cred->lease.role));
  EXPECT_NE(Ledger().find("worker-asks-write"), std::string::npos);
  EXPECT_TRUE(Issue(root_.token, "write").ok()) << "the parent session is not contained";
}

TEST_F(CredentialServiceTest, ExpiryEndsLoginsAndDropsTheRole) {
  Sessions();
  auto cred = Issue(child_.token, "read", 1);
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  EXPECT_LE(cred->lease.expires_ms - cred->lease.issued_ms, 1000);
  ASSERT_TRUE(Login(*cred)->ok());
  ASSERT_TRUE(WaitFor(cred->lease.role, LeaseState::kRevoked));
  EXPECT_FALSE(Login(*cred)->ok());
  EXPECT_FALSE(RoleExists(cred->lease.role));
  EXPECT_EQ((*store_->Get(cred->lease.role))->revoke_reason, "expired");
}

TEST_F(CredentialServiceTest, ValidUntilRefusesLoginEvenBeforeCustodyDropsTheRole) {
  svc_.reset();
  Open(Ms(3'600'000));  // the loop looks once, then not for an hour
  Sessions();
  auto cred = Issue(child_.token, "read", 1);
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  ASSERT_TRUE(Login(*cred)->ok());
  std::this_thread::sleep_for(Ms(cred->lease.expires_ms - cred->lease.issued_ms + 200));
  EXPECT_FALSE(Login(*cred)->ok()) << "PostgreSQL itself refuses a role past VALID UNTIL";
  EXPECT_TRUE(RoleExists(cred->lease.role)) << "not dropped yet";
  EXPECT_EQ((*store_->Get(cred->lease.role))->state, LeaseState::kActive);
  svc_->RunOnce();
  EXPECT_EQ((*store_->Get(cred->lease.role))->state, LeaseState::kRevoked);
  EXPECT_FALSE(RoleExists(cred->lease.role));
}

TEST_F(CredentialServiceTest, ARevokedRoleIsGoneAndNeitherLedgerNorLogHoldsThePassword) {
  Sessions();
  auto cred = Issue(child_.token, "read");
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  ASSERT_TRUE(RoleExists(cred->lease.role));
  auto revoked = svc_->Revoke(cred->lease.role, "done", "session:" + child_.sid);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_EQ(revoked->state, LeaseState::kRevoked);
  EXPECT_FALSE(RoleExists(cred->lease.role));
  EXPECT_FALSE(Login(*cred)->ok());
  std::string ledger = Ledger();
  EXPECT_NE(ledger.find("\"db_credential.revoke\""), std::string::npos);
  EXPECT_EQ(ledger.find(cred->password), std::string::npos);
  EXPECT_EQ(Log().find(cred->password), std::string::npos);
  // Renewing a revoked lease is refused.
  EXPECT_EQ(svc_->Renew(cred->lease.role, 60, "test").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(CredentialServiceTest, RenewalNeverPassesTheAccessLevelsMaximum) {
  Sessions();
  auto cred = Issue(root_.token, "write", 10);
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  auto renewed = svc_->Renew(cred->lease.role, 3600, "session:" + root_.sid);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_GT(renewed->expires_ms, cred->lease.expires_ms);
  EXPECT_LE(renewed->expires_ms - cred->lease.issued_ms, 61'000) << "write's max_ttl_s is 60";
  EXPECT_NE(Ledger().find("\"db_credential.renew\""), std::string::npos);
}

TEST_F(CredentialServiceTest, ARevocationWhileTheServerIsDownIsRetriedAndReportedOnlyWhenDone) {
  Sessions();
  auto cred = Issue(child_.token, "read");
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  ASSERT_TRUE(cluster->StopServer().ok());
  auto revoking = svc_->Revoke(cred->lease.role, "", "admin:test");
  ASSERT_TRUE(revoking.ok()) << revoking.status().ToString();
  EXPECT_EQ(revoking->state, LeaseState::kRevoking) << "not revoked before the drop succeeded";
  EXPECT_GE(svc_->PendingRevocations(), 1);
  // Several attempts fail meanwhile; it stays revoking.
  std::this_thread::sleep_for(Ms(300));
  EXPECT_EQ((*store_->Get(cred->lease.role))->state, LeaseState::kRevoking);
  EXPECT_NE(Ledger().find("\"db_credential.revoke_failed\""), std::string::npos);
  EXPECT_EQ(Ledger().find("\"db_credential.revoke\""), std::string::npos);
  ASSERT_TRUE(cluster->StartServer().ok());
  ASSERT_TRUE(WaitFor(cred->lease.role, LeaseState::kRevoked));
  // The loop's pass marks the lease revoked before it records the event and recounts what is
  // pending; a pass of our own waits for that one to end.
  svc_->RunOnce();
  EXPECT_FALSE(RoleExists(cred->lease.role));
  EXPECT_EQ(svc_->PendingRevocations(), 0);
  EXPECT_NE(Ledger().find("\"db_credential.revoke\""), std::string::npos);
  EXPECT_EQ(Log().find(cred->password), std::string::npos);
}

TEST(AdminUrl, RefusesAPasswordInTheUrl) {
  auto r = ParseAdminUrl("postgresql://admin:s3cret@db.example/orders", "k.admin_url");
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("s3cret"), std::string::npos);
  auto ok = ParseAdminUrl("postgresql://admin@db.example:6543/orders", "k.admin_url");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->host, "db.example");
  EXPECT_EQ(ok->port, 6543);
  EXPECT_EQ(ok->dbname, "orders");
}

}  // namespace
}  // namespace custody::credentials
