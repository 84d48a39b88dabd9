#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "crypto/jose.h"
#include "identity/agent.h"
#include "identity/scopes.h"
#include "identity/spiffe_id.h"
#include "store/stores.h"

namespace custody::identity {
namespace {

TEST(SpiffeIdTest, AcceptsValidAndRejectsInvalid) {
  auto id = ParseSpiffeId("spiffe://custody.local/agent/planner/instance/0192-ab");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->trust_domain, "custody.local");
  EXPECT_EQ(id->path, "/agent/planner/instance/0192-ab");
  EXPECT_TRUE(ParseSpiffeId("spiffe://example.org").ok());
  for (const char* bad :
       {"http://example.org/x", "spiffe://", "spiffe://Example.org/x", "spiffe://ex ample/x",
        "spiffe://example.org/", "spiffe://example.org//x", "spiffe://example.org/./x",
        "spiffe://example.org/../x", "spiffe://example.org/x%20y", "spiffe://user@example.org/x",
        "spiffe://example.org:8080/x", "spiffe://example.org/x?q", "spiffe://example.org/x#f"}) {
    EXPECT_FALSE(ParseSpiffeId(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseSpiffeId("spiffe://example.org/" + std::string(2100, 'a')).ok());
  EXPECT_FALSE(ParseSpiffeId("spiffe://" + std::string(256, 'a')).ok());
  EXPECT_FALSE(AgentInstanceSpiffeId("custody.local", "bad/name", "1").ok());
}

TEST(ScopesTest, CoversAndIntersect) {
  EXPECT_TRUE(Covers("github/*", "github/create_issue"));
  EXPECT_TRUE(Covers("github/*", "github/issues/*"));
  EXPECT_FALSE(Covers("github/create_issue", "github/*"));
  EXPECT_FALSE(Covers("github/*", "gitlab/x"));
  ScopeSet a = *ParseScopes("github/* db/read");
  ScopeSet b = *ParseScopes("github/create_issue db/* fs/read");
  EXPECT_EQ(Intersect(a, b), (ScopeSet{"db/read", "github/create_issue"}));
  EXPECT_EQ(JoinScopes(*ParseScopes("  b a  a ")), "a b");
  EXPECT_FALSE(ParseScopes("a*b").ok());
  EXPECT_FALSE(ParseScopes("a\"b").ok());
}

Agent ValidAgent() {
  Agent a;
  a.name = "planner";
  a.grants = {"github/*"};
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  a.client_jwk = crypto::EcPublicJwkJson(key->public_key(), "k");
  return a;
}

TEST(AgentTest, ProdNeedsBothOwnersAndARevocationContact) {
  Agent a = ValidAgent();
  EXPECT_TRUE(ValidateAgent(a).ok());
  a.environment = Environment::kProd;
  a.business_owner = "finance-team";
  Status s = ValidateAgent(a);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("technical_owner"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("revocation_contact"), std::string::npos);
  a.technical_owner = "platform-team";
  a.revocation_contact = "secops@example.com";
  EXPECT_TRUE(ValidateAgent(a).ok());
}

TEST(AgentTest, RejectsBadRecords) {
  Agent a = ValidAgent();
  a.name = "no/slash";
  EXPECT_FALSE(ValidateAgent(a).ok());
  a = ValidAgent();
  a.client_secret_sha256 = std::string(64, 'a');  // two credentials
  EXPECT_FALSE(ValidateAgent(a).ok());
  a = ValidAgent();
  a.client_jwk.clear();  // none
  EXPECT_FALSE(ValidateAgent(a).ok());
  a = ValidAgent();
  a.permissions = {"root"};
  EXPECT_FALSE(ValidateAgent(a).ok());
  a = ValidAgent();
  a.max_token_lifetime_s = 10 * 86400;
  EXPECT_FALSE(ValidateAgent(a).ok());
}

class IdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("custody-identity-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path_);
    store_ = std::move(*store::OpenIdentityStore(Files()));
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove(path_);
    std::filesystem::remove(path_.string() + "-wal");
    std::filesystem::remove(path_.string() + "-shm");
  }
  Session MakeSession(const std::string& sid, const std::string& parent, int depth) {
    Session s;
    s.sid = sid;
    s.parent_sid = parent;
    s.root_sid = parent.empty() ? sid : "root";
    s.depth = depth;
    s.agent = depth == 0 ? "planner" : "worker";
    s.instance = "spiffe://custody.local/agent/x/instance/1";
    s.initiator = "alice";
    s.scopes = {"a"};
    s.jti = "jti-" + sid;
    s.created_at = 100 + depth;
    s.expires_at = 1000;
    return s;
  }
  std::filesystem::path path_;
  store::StorageOptions Files() const {
    store::StorageOptions o;
    o.identity_path = path_.string();
    return o;
  }
  std::unique_ptr<store::IdentityStore> store_;
};

TEST_F(IdentityStoreTest, AgentsRoundTrip) {
  Agent a = ValidAgent();
  a.permissions = {"assert_initiator"};
  ASSERT_TRUE(store_->CreateAgent(a).ok());
  EXPECT_EQ(store_->CreateAgent(a).code(), StatusCode::kAlreadyExists);
  auto back = store_->GetAgent("planner");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->grants, a.grants);
  EXPECT_TRUE(back->HasPermission(kAssertInitiator));
  EXPECT_EQ(store_->GetAgent("nobody").status().code(), StatusCode::kNotFound);
}

TEST_F(IdentityStoreTest, ANewDatabaseAndItsWalAreMode0600WhateverTheUmask) {
  store_.reset();
  std::filesystem::remove(path_);
  std::filesystem::remove(path_.string() + "-wal");
  mode_t saved = ::umask(022);
  auto opened = store::OpenIdentityStore(Files());
  ::umask(saved);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(*opened);
  ASSERT_TRUE(store_->CreateAgent(ValidAgent()).ok());
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
    struct stat st {};
    ASSERT_EQ(::stat((path_.string() + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << path_.string() << suffix;
  }
}

TEST_F(IdentityStoreTest, ASecondOpenerIsRefusedWhileTheFileIsInUse) {
  ASSERT_TRUE(store_->CreateAgent(ValidAgent()).ok());
  // The server holds its files exclusively: a second opener (another `custody serve` on the
  // same data directory) gets a clear refusal, and nothing is lost.
  auto second = store::OpenIdentityStore(Files());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("locked by another process"), std::string::npos)
      << second.status().ToString();
  EXPECT_TRUE(store_->GetAgent("planner").ok());
  store_.reset();
  auto reopened = store::OpenIdentityStore(Files());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_TRUE((*reopened)->GetAgent("planner").ok());
}

TEST_F(IdentityStoreTest, RevocationCascadesToGrandchildrenOnly) {
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("child-a", "root", 1)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("child-b", "root", 1)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("grandchild", "child-a", 2)).ok());
  auto revoked = store_->RevokeSessionTree("child-a", "tripwire", 500);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(*revoked, (std::vector<std::string>{"child-a", "grandchild"}));
  EXPECT_TRUE(store_->GetSession("grandchild")->revoked);
  EXPECT_FALSE(store_->GetSession("child-b")->revoked);
  EXPECT_FALSE(store_->GetSession("root")->revoked);
  auto tree = store_->SessionTree("root");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->size(), 4u);
  EXPECT_EQ(tree->front().sid, "root");
  // Revoking again revokes nothing new.
  EXPECT_TRUE(store_->RevokeSessionTree("child-a", "again", 600)->empty());
}

TEST_F(IdentityStoreTest, AssertionJtiReplayIsDetected) {
  EXPECT_TRUE(store_->UseAssertionJti("c/1", 100).ok());
  EXPECT_EQ(store_->UseAssertionJti("c/1", 100).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(*store_->IsJtiRevoked("x"));
  ASSERT_TRUE(store_->RevokeJti("x", 100).ok());
  EXPECT_TRUE(*store_->IsJtiRevoked("x"));
}

}  // namespace
}  // namespace custody::identity
