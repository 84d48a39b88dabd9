#include "store/testing/identity_store_conformance.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <thread>

namespace custody::store::testing {
namespace {

using identity::Agent;
using identity::InitiatorVerification;
using identity::Session;
using identity::SigningKeyRecord;
using Strings = std::vector<std::string>;

// Runs body(t) on `n` threads released together (to make them race), and waits for them all.
void RunTogether(int n, const std::function<void(int)>& body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      body(t);
    });
  }
  go = true;
  for (auto& th : threads) th.join();
}

Agent MakeAgent(const std::string& name) {
  Agent a;
  a.name = name;
  a.description = "plans work";
  a.environment = identity::Environment::kProd;
  a.business_owner = "finance-team";
  a.technical_owner = "platform";
  a.sponsor = "cfo";
  a.revocation_contact = "sec@example.com";
  a.grants = {"db/read", "github/*"};
  a.permissions = {"assert_initiator"};
  a.max_delegation_depth = 2;
  a.max_token_lifetime_s = 900;
  a.client_jwk = R"({"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"k"})";
  a.disabled = false;
  a.created_at = "2026-01-01T00:00:00Z";
  a.updated_at = "2026-01-02T00:00:00Z";
  return a;
}

void ExpectSameAgent(const Agent& got, const Agent& want) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.description, want.description);
  EXPECT_EQ(got.environment, want.environment);
  EXPECT_EQ(got.business_owner, want.business_owner);
  EXPECT_EQ(got.technical_owner, want.technical_owner);
  EXPECT_EQ(got.sponsor, want.sponsor);
  EXPECT_EQ(got.revocation_contact, want.revocation_contact);
  EXPECT_EQ(got.grants, want.grants);
  EXPECT_EQ(got.permissions, want.permissions);
  EXPECT_EQ(got.max_delegation_depth, want.max_delegation_depth);
  EXPECT_EQ(got.max_token_lifetime_s, want.max_token_lifetime_s);
  EXPECT_EQ(got.client_jwk, want.client_jwk);
  EXPECT_EQ(got.client_secret_sha256, want.client_secret_sha256);
  EXPECT_EQ(got.disabled, want.disabled);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.updated_at, want.updated_at);
}

// As identity_test's IdentityStoreTest makes them: children are created after their parents.
Session MakeSession(const std::string& sid, const std::string& parent, int depth,
                    const std::string& agent = "") {
  Session s;
  s.sid = sid;
  s.parent_sid = parent;
  s.root_sid = parent.empty() ? sid : "root";
  s.depth = depth;
  s.agent = !agent.empty() ? agent : depth == 0 ? "planner" : "worker";
  s.instance = "spiffe://custody.local/agent/x/instance/1";
  s.initiator = "alice";
  s.scopes = {"a"};
  s.jti = "jti-" + sid;
  s.created_at = 100 + depth;
  s.expires_at = 1000;
  return s;
}

Strings Sids(const std::vector<Session>& v) {
  Strings out;
  for (const Session& s : v) out.push_back(s.sid);
  return out;
}

Strings Sorted(Strings v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_P(IdentityStoreConformance, AgentsKeepEveryFieldAndNamesAreUnique) {
  Agent a = MakeAgent("planner");
  ASSERT_TRUE(store_->CreateAgent(a).ok());
  Agent again = MakeAgent("planner");
  again.description = "another";
  EXPECT_EQ(store_->CreateAgent(again).code(), StatusCode::kAlreadyExists);
  auto back = store_->GetAgent("planner");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameAgent(*back, a);
  EXPECT_TRUE(back->HasPermission("assert_initiator"));
  EXPECT_EQ(store_->GetAgent("nobody").status().code(), StatusCode::kNotFound);

  a.disabled = true;
  a.client_jwk.clear();
  a.client_secret_sha256 = std::string(64, 'a');
  a.environment = identity::Environment::kDev;
  a.updated_at = "2026-02-01T00:00:00Z";
  ASSERT_TRUE(store_->UpdateAgent(a).ok());
  ExpectSameAgent(*store_->GetAgent("planner"), a);
  EXPECT_EQ(store_->UpdateAgent(MakeAgent("nobody")).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetAgent("nobody").status().code(), StatusCode::kNotFound)
      << "an update does not create";
}

TEST_P(IdentityStoreConformance, AgentsAreListedByName) {
  EXPECT_TRUE(store_->ListAgents()->empty());
  for (const char* n : {"worker", "auditor", "planner"}) {
    ASSERT_TRUE(store_->CreateAgent(MakeAgent(n)).ok());
  }
  auto list = store_->ListAgents();
  ASSERT_TRUE(list.ok());
  Strings names;
  for (const Agent& a : *list) names.push_back(a.name);
  EXPECT_EQ(names, (Strings{"auditor", "planner", "worker"}));
}

TEST_P(IdentityStoreConformance, SessionsKeepEveryFieldAndSidsAreUnique) {
  Session s = MakeSession("child", "root", 1);
  s.max_depth = 3;
  s.initiator_issuer = "https://hr.example.com";
  s.verification = InitiatorVerification::kAsserted;
  s.asserted_by = "planner";
  s.scopes = {"db/read", "github/create_issue"};
  s.objective_digest = std::string(64, 'f');
  s.txn = "txn-1";
  ASSERT_TRUE(store_->CreateSession(s).ok());
  EXPECT_EQ(store_->CreateSession(s).code(), StatusCode::kAlreadyExists);
  auto back = store_->GetSession("child");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sid, "child");
  EXPECT_EQ(back->parent_sid, "root");
  EXPECT_EQ(back->root_sid, "root");
  EXPECT_EQ(back->depth, 1);
  EXPECT_EQ(back->max_depth, 3);
  EXPECT_EQ(back->agent, "worker");
  EXPECT_EQ(back->instance, s.instance);
  EXPECT_EQ(back->initiator, "alice");
  EXPECT_EQ(back->initiator_issuer, "https://hr.example.com");
  EXPECT_EQ(back->verification, InitiatorVerification::kAsserted);
  EXPECT_EQ(back->asserted_by, "planner");
  EXPECT_EQ(back->scopes, s.scopes);
  EXPECT_EQ(back->objective_digest, s.objective_digest);
  EXPECT_EQ(back->txn, "txn-1");
  EXPECT_EQ(back->jti, "jti-child");
  EXPECT_EQ(back->created_at, 101);
  EXPECT_EQ(back->expires_at, 1000);
  EXPECT_FALSE(back->revoked);
  EXPECT_EQ(back->revoked_at, 0);
  EXPECT_EQ(back->revoke_reason, "");
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0)).ok());
  auto root = store_->GetSession("root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->parent_sid, "") << "a root session has no parent";
  EXPECT_EQ(root->verification, InitiatorVerification::kVerified);
  EXPECT_EQ(store_->GetSession("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SessionTree("nope").status().code(), StatusCode::kNotFound);
}

// GetSessionForToken: what verifying an access token reads, as the separate reads would answer.
TEST_P(IdentityStoreConformance, SessionForTokenReadsTheSessionItsJtiAndItsAgentAtOnce) {
  Session s = MakeSession("child", "root", 1);
  s.scopes = {"db/read"};
  ASSERT_TRUE(store_->CreateSession(s).ok());
  auto found = store_->GetSessionForToken("child", "jti-child");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->session.sid, "child");
  EXPECT_EQ(found->session.jti, "jti-child");
  EXPECT_EQ(found->session.scopes, s.scopes);
  EXPECT_EQ(found->session.expires_at, 1000);
  EXPECT_FALSE(found->jti_revoked);
  EXPECT_FALSE(found->agent.has_value()) << "the session's agent is not registered";

  Agent worker = MakeAgent("worker");
  worker.grants = {"db/*"};
  ASSERT_TRUE(store_->CreateAgent(worker).ok());
  ASSERT_TRUE(store_->RevokeJti("jti-child", 2000).ok());
  found = store_->GetSessionForToken("child", "jti-child");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->agent.has_value());
  ExpectSameAgent(*found->agent, worker);
  EXPECT_TRUE(found->jti_revoked);
  EXPECT_FALSE(store_->GetSessionForToken("child", "another-jti")->jti_revoked)
      << "only the jti asked about";

  ASSERT_TRUE(store_->RevokeSessionTree("child", "contained", 500).ok());
  found = store_->GetSessionForToken("child", "jti-child");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->session.revoked);
  EXPECT_EQ(found->session.revoke_reason, "contained");
  EXPECT_EQ(store_->GetSessionForToken("nope", "jti-child").status().code(), StatusCode::kNotFound);
}

// SessionTree: parents before children, by depth, then creation time, then sid.
TEST_P(IdentityStoreConformance, SessionTreeIsTheSubtreeByDepthThenTimeThenSid) {
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0)).ok());
  Session b = MakeSession("b", "root", 1);
  b.created_at = 200;
  ASSERT_TRUE(store_->CreateSession(b).ok());
  Session a = MakeSession("a", "root", 1);
  a.created_at = 300;
  ASSERT_TRUE(store_->CreateSession(a).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("c", "root", 1)).ok());  // created_at 101
  ASSERT_TRUE(store_->CreateSession(MakeSession("bb", "b", 2)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("ba", "b", 2)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("other", "", 0)).ok());
  auto tree = store_->SessionTree("root");
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Sids(*tree), (Strings{"root", "c", "b", "a", "ba", "bb"}));
  EXPECT_EQ(Sids(*store_->SessionTree("b")), (Strings{"b", "ba", "bb"}));
  EXPECT_EQ(Sids(*store_->SessionTree("ba")), (Strings{"ba"}));
}

TEST_P(IdentityStoreConformance, RevocationCascadesToDescendantsAndReturnsOnlyTheNewlyRevoked) {
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("child-a", "root", 1)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("child-b", "root", 1)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("grandchild", "child-a", 2)).ok());
  auto revoked = store_->RevokeSessionTree("child-a", "tripwire", 500);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_EQ(*revoked, (Strings{"child-a", "grandchild"}));
  auto g = store_->GetSession("grandchild");
  EXPECT_TRUE(g->revoked);
  EXPECT_EQ(g->revoked_at, 500);
  EXPECT_EQ(g->revoke_reason, "tripwire");
  EXPECT_FALSE(store_->GetSession("child-b")->revoked);
  EXPECT_FALSE(store_->GetSession("root")->revoked);
  EXPECT_EQ(store_->SessionTree("root")->size(), 4u) << "revoked sessions stay in the tree";
  // Revoking again revokes nothing new, and keeps the first revocation's time and reason.
  EXPECT_TRUE(store_->RevokeSessionTree("child-a", "again", 600)->empty());
  EXPECT_EQ(store_->GetSession("grandchild")->revoked_at, 500);
  EXPECT_EQ(store_->GetSession("grandchild")->revoke_reason, "tripwire");
  // Revoking the root now returns only what was still live.
  EXPECT_EQ(*store_->RevokeSessionTree("root", "manual", 700), (Strings{"root", "child-b"}));
  EXPECT_EQ(store_->RevokeSessionTree("nope", "x", 1).status().code(), StatusCode::kNotFound);
}

TEST_P(IdentityStoreConformance, AnAgentsLiveSessionsAreRevokedWithTheirDescendants) {
  ASSERT_TRUE(store_->CreateSession(MakeSession("r1", "", 0, "planner")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("r1-w", "r1", 1, "worker")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("r1-w-p", "r1-w", 2, "planner")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("r2", "", 0, "worker")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("r2-p", "r2", 1, "planner")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("r3", "", 0, "worker")).ok());
  ASSERT_TRUE(store_->RevokeSessionTree("r2-p", "earlier", 10).ok());
  auto revoked = store_->RevokeAgentSessions("planner", "disabled", 20);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  // Each sid once, the already revoked r2-p not at all.
  EXPECT_EQ(Sorted(*revoked), (Strings{"r1", "r1-w", "r1-w-p"}));
  EXPECT_EQ(store_->GetSession("r1-w")->revoke_reason, "disabled");
  EXPECT_EQ(store_->GetSession("r2-p")->revoke_reason, "earlier");
  EXPECT_FALSE(store_->GetSession("r2")->revoked);
  EXPECT_FALSE(store_->GetSession("r3")->revoked);
  EXPECT_TRUE(store_->RevokeAgentSessions("planner", "again", 30)->empty());
  EXPECT_TRUE(store_->RevokeAgentSessions("nobody", "x", 30)->empty());
}

TEST_P(IdentityStoreConformance, NoSessionIsStoredBelowARevokedParentOrForADisabledAgent) {
  ASSERT_TRUE(store_->CreateAgent(MakeAgent("planner")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0, "planner")).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("child", "root", 1)).ok());
  ASSERT_TRUE(store_->RevokeSessionTree("root", "tripwire", 200).ok());
  // A delegation verified before the revocation and stored after it: refused, not left live.
  Status late = store_->CreateSession(MakeSession("late", "root", 1));
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition) << late.ToString();
  EXPECT_NE(late.message().find("root"), std::string::npos) << late.ToString();
  EXPECT_EQ(store_->GetSession("late").status().code(), StatusCode::kNotFound);
  std::promise<Status> below;
  store_->CreateSessionAsync(MakeSession("grandchild", "child", 2),
                             [&](Status st) { below.set_value(std::move(st)); });
  EXPECT_EQ(below.get_future().get().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SessionTree("root")->size(), 2u);

  Agent disabled = MakeAgent("planner");
  disabled.disabled = true;
  ASSERT_TRUE(store_->UpdateAgent(disabled).ok());
  Status root = store_->CreateSession(MakeSession("r2", "", 0, "planner"));
  EXPECT_EQ(root.code(), StatusCode::kFailedPrecondition) << root.ToString();
  EXPECT_EQ(store_->GetSession("r2").status().code(), StatusCode::kNotFound);
  // An agent the store does not know (a test's) and a parent it does not hold do not refuse.
  EXPECT_TRUE(store_->CreateSession(MakeSession("r3", "", 0, "someone")).ok());
  EXPECT_TRUE(store_->CreateSession(MakeSession("orphan", "elsewhere", 1)).ok());
}

TEST_P(IdentityStoreConformance, ConcurrentAsyncSessionsAreEachStoredAndAnsweredOnce) {
  ASSERT_TRUE(store_->CreateSession(MakeSession("root", "", 0)).ok());
  ASSERT_TRUE(store_->CreateSession(MakeSession("gone", "", 0)).ok());
  ASSERT_TRUE(store_->RevokeSessionTree("gone", "manual", 5).ok());
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> ok{0}, refused{0}, exists{0}, other{0}, answers{0};
  std::promise<void> all_answered;
  auto answer = [&](Status st) {
    if (st.ok()) {
      ++ok;
    } else if (st.code() == StatusCode::kFailedPrecondition) {
      ++refused;
    } else if (st.code() == StatusCode::kAlreadyExists) {
      ++exists;
    } else {
      ++other;
    }
    if (++answers == kThreads * kEach) all_answered.set_value();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every tenth a child of the revoked session, every 25th a sid already taken; their
        // refusals are theirs alone: the rest of whatever batch they share is stored.
        std::string sid = "s" + std::to_string(t) + "-" + std::to_string(i);
        Session s = i % 10 == 9   ? MakeSession(sid, "gone", 1)
                    : i % 25 == 0 ? MakeSession("root", "", 0)
                                  : MakeSession(sid, "root", 1);
        store_->CreateSessionAsync(std::move(s), answer);
      }
    });
  }
  for (auto& th : threads) th.join();
  all_answered.get_future().wait();
  EXPECT_EQ(refused.load(), kThreads * 5);
  EXPECT_EQ(exists.load(), kThreads * 2);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * (kEach - 7));
  EXPECT_EQ(answers.load(), kThreads * kEach) << "each answered exactly once";
  EXPECT_EQ(store_->SessionTree("root")->size(), 1u + kThreads * (kEach - 7));
  EXPECT_EQ(store_->SessionTree("gone")->size(), 1u);
  EXPECT_TRUE(store_->GetSession("s3-48").ok());
  EXPECT_EQ(store_->GetSession("s3-49").status().code(), StatusCode::kNotFound);
}

TEST_P(IdentityStoreConformance, AssertionJtiReplayIsDetectedAndRevokedJtisAreKept) {
  EXPECT_TRUE(store_->UseAssertionJti("c/1", 100).ok());
  EXPECT_EQ(store_->UseAssertionJti("c/1", 100).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->UseAssertionJti("c/2", 100).ok());
  EXPECT_FALSE(*store_->IsJtiRevoked("x"));
  ASSERT_TRUE(store_->RevokeJti("x", 100).ok());
  EXPECT_TRUE(*store_->IsJtiRevoked("x"));
  EXPECT_TRUE(store_->RevokeJti("x", 200).ok()) << "revoking twice is not an error";
  EXPECT_TRUE(*store_->IsJtiRevoked("x"));
  EXPECT_FALSE(*store_->IsJtiRevoked("c/1")) << "a used assertion is not a revoked token";
}

// Concurrent first uses of one jti (the same assertion sent twice at once): exactly one is
// answered ok, through UseAssertionJtiAsync (the token endpoint's path) and UseAssertionJti
// alike, whether or not the first use is still being stored; each call answered exactly once.
TEST_P(IdentityStoreConformance, ConcurrentUsesOfOneAssertionJtiLetExactlyOneWin) {
  constexpr int kJtis = 40, kThreads = 4;
  std::vector<std::atomic<int>> ok(kJtis), exists(kJtis), other(kJtis);
  std::atomic<int> answers{0};
  std::promise<void> all_answered;
  auto answer = [&](int j, const Status& st) {
    if (st.ok()) {
      ++ok[j];
    } else if (st.code() == StatusCode::kAlreadyExists) {
      ++exists[j];
    } else {
      ++other[j];
    }
    if (++answers == kJtis * kThreads) all_answered.set_value();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kJtis; ++j) {
        std::string jti = "client/" + std::to_string(j);
        if (t == 0) {
          answer(j, store_->UseAssertionJti(jti, 1000));
        } else {
          store_->UseAssertionJtiAsync(jti, 1000, [&, j](Status st) { answer(j, st); });
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  all_answered.get_future().wait();
  for (int j = 0; j < kJtis; ++j) {
    EXPECT_EQ(ok[j].load(), 1) << "jti " << j;
    EXPECT_EQ(exists[j].load(), kThreads - 1) << "jti " << j;
    EXPECT_EQ(other[j].load(), 0) << "jti " << j;
  }
  EXPECT_EQ(answers.load(), kJtis * kThreads) << "each answered exactly once";
  // Stored, not only remembered: a later use is refused too.
  EXPECT_EQ(store_->UseAssertionJti("client/0", 1000).code(), StatusCode::kAlreadyExists);
}

// An expired assertion's jti may go: the purge deletes the jtis that expire before the time
// given and keeps the others.
TEST_P(IdentityStoreConformance, PurgeDeletesOnlyTheJtisOfExpiredAssertions) {
  ASSERT_TRUE(store_->UseAssertionJti("c/old", 100).ok());
  ASSERT_TRUE(store_->UseAssertionJti("c/edge", 150).ok());
  ASSERT_TRUE(store_->UseAssertionJti("c/new", 200).ok());
  ASSERT_TRUE(store_->PurgeAssertionJtis(150).ok());
  EXPECT_TRUE(store_->UseAssertionJti("c/old", 100).ok()) << "purged";
  EXPECT_EQ(store_->UseAssertionJti("c/edge", 150).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->UseAssertionJti("c/new", 200).code(), StatusCode::kAlreadyExists);
}

TEST_P(IdentityStoreConformance, SigningKeysAreReplacedByKidAndListedOldestFirst) {
  EXPECT_TRUE(store_->ListSigningKeys()->empty());
  ASSERT_TRUE(store_->PutSigningKey({"k2", "pem-2", 20, 0, 0}).ok());
  ASSERT_TRUE(store_->PutSigningKey({"k1", "pem-1", 10, 0, 0}).ok());
  ASSERT_TRUE(store_->PutSigningKey({"k0", "pem-0", 20, 0, 0}).ok());
  ASSERT_TRUE(store_->PutSigningKey({"k1", "pem-1", 10, 15, 99}).ok());  // retired
  auto keys = store_->ListSigningKeys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].kid, "k1");
  EXPECT_EQ((*keys)[0].private_pem, "pem-1");
  EXPECT_EQ((*keys)[0].created_at, 10);
  EXPECT_EQ((*keys)[0].retired_at, 15);
  EXPECT_EQ((*keys)[0].publish_until, 99);
  EXPECT_EQ((*keys)[1].kid, "k0");
  EXPECT_EQ((*keys)[2].kid, "k2");
}

identity::RefreshFamily MakeFamily(const std::string& id) {
  identity::RefreshFamily f;
  f.family_id = id;
  f.client_id = "https://app.example/client";
  f.agent = "planner";
  f.instance = "spiffe://custody.local/agent/planner/instance/1";
  f.initiator = "alice";
  f.initiator_issuer = "https://idp.example";
  f.scopes = {"db/read", "github/*"};
  f.resource = "https://custody.example/mcp";
  f.created_at = 100;
  f.expires_at = 9000;
  f.sessions = {"s1"};
  return f;
}

// Refresh token families: every field kept, only hashes stored, rotation is compare-and-swap
// (a rotated-out token is found but not current: its reuse is detectable), revocation sticks.
TEST_P(IdentityStoreConformance, RefreshFamiliesRotateOnceAndRevocationSticks) {
  identity::RefreshFamily f = MakeFamily("fam-1");
  Status created = store_->CreateRefreshFamily(f, "h1");
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_EQ(store_->CreateRefreshFamily(f, "h9").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateRefreshFamily(MakeFamily("fam-2"), "h1").code(),
            StatusCode::kAlreadyExists)
      << "a hash belongs to one family";
  EXPECT_EQ(store_->FindRefreshToken("nope").status().code(), StatusCode::kNotFound);
  auto found = store_->FindRefreshToken("h1");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->current);
  EXPECT_EQ(found->family.family_id, "fam-1");
  EXPECT_EQ(found->family.client_id, f.client_id);
  EXPECT_EQ(found->family.agent, "planner");
  EXPECT_EQ(found->family.instance, f.instance);
  EXPECT_EQ(found->family.initiator, "alice");
  EXPECT_EQ(found->family.initiator_issuer, "https://idp.example");
  EXPECT_EQ(found->family.scopes, f.scopes);
  EXPECT_EQ(found->family.resource, f.resource);
  EXPECT_EQ(found->family.created_at, 100);
  EXPECT_EQ(found->family.expires_at, 9000);
  EXPECT_FALSE(found->family.revoked);
  EXPECT_TRUE(found->family.sessions.empty()) << "a lookup leaves the growing list out";

  ASSERT_TRUE(store_->RotateRefreshToken("fam-1", "h1", "h2", "s2").ok());
  EXPECT_EQ(store_->RotateRefreshToken("fam-1", "h1", "h3", "s3").code(),
            StatusCode::kFailedPrecondition)
      << "a rotated-out token rotates no more (a concurrent refresh lost)";
  EXPECT_EQ(store_->RotateRefreshToken("nope", "h1", "h3", "s3").code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->FindRefreshToken("h1")->current) << "h1 was rotated out: reuse";
  EXPECT_TRUE(store_->FindRefreshToken("h2")->current);
  EXPECT_EQ(store_->FindRefreshToken("h3").status().code(), StatusCode::kNotFound);

  auto revoked = store_->RevokeRefreshFamily("fam-1", "refresh token reused", 500);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_TRUE(revoked->revoked);
  EXPECT_EQ(revoked->revoked_at, 500);
  EXPECT_EQ(revoked->revoke_reason, "refresh token reused");
  EXPECT_EQ(revoked->sessions, (Strings{"s1", "s2"}))
      << "the rotation appended its session; the stale one (s3) added nothing";
  auto again = store_->RevokeRefreshFamily("fam-1", "again", 600);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked_at, 500) << "the first revocation is kept";
  EXPECT_EQ(again->revoke_reason, "refresh token reused");
  EXPECT_EQ(store_->RotateRefreshToken("fam-1", "h2", "h4", "s4").code(),
            StatusCode::kFailedPrecondition)
      << "a revoked family never refreshes";
  EXPECT_TRUE(store_->FindRefreshToken("h2")->family.revoked);
  EXPECT_EQ(store_->RevokeRefreshFamily("fam-1", "again", 700)->sessions, (Strings{"s1", "s2"}))
      << "a refused rotation appends no session";
  EXPECT_EQ(store_->FindRefreshToken("h4").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->RevokeRefreshFamily("nope", "x", 1).status().code(), StatusCode::kNotFound);
}

// A refresh's bookkeeping is one operation: each rotation appends its session in order (the
// next seq follows the last one, also from an empty list), and a rotation refused for any reason
// (a hash already taken, a stale token) changes nothing.
TEST_P(IdentityStoreConformance, RefreshRotationsAppendSessionsInOrder) {
  identity::RefreshFamily f = MakeFamily("fam-1");
  f.sessions.clear();
  ASSERT_TRUE(store_->CreateRefreshFamily(f, "h0").ok());
  ASSERT_TRUE(store_->CreateRefreshFamily(MakeFamily("fam-2"), "other").ok());
  Strings expected;
  for (int i = 1; i <= 12; ++i) {
    std::string sid = "s" + std::to_string(i);
    Status st = store_->RotateRefreshToken("fam-1", "h" + std::to_string(i - 1),
                                           "h" + std::to_string(i), sid);
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
    expected.push_back(sid);
  }
  EXPECT_EQ(store_->RotateRefreshToken("fam-1", "h12", "other", "taken").code(),
            StatusCode::kAlreadyExists);
  auto found = store_->FindRefreshToken("h12");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->current) << "a refused rotation keeps the current token";
  EXPECT_EQ(store_->FindRefreshToken("other")->family.family_id, "fam-2");
  EXPECT_EQ(store_->RevokeRefreshFamily("fam-1", "test", 1)->sessions, expected)
      << "oldest first, nothing from refused rotations";
  EXPECT_EQ(store_->RevokeRefreshFamily("fam-2", "test", 1)->sessions, (Strings{"s1"}));
}

identity::AuthorizationCode MakeCode(const std::string& code_id, int64_t expires_at = 1060) {
  identity::AuthorizationCode c;
  c.code_id = code_id;
  c.client_id = "https://client.example/metadata.json";
  c.redirect_uri = "http://127.0.0.1:3334/callback?x=1";
  c.code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  c.resource = "https://custody.example/mcp";
  c.agent = "planner";
  c.scopes = {"db/read", "github/*"};
  c.subject = "alice";
  c.issuer = "https://idp.example";
  c.name = "Alice Liddell";
  c.email = "alice@example.com";
  c.groups = {"Finance Team", "a\"quoted\" one", "line\nbreak"};
  c.expires_at = expires_at;
  return c;
}

// Authorization codes: every field kept (the key is the code's hash), redeemed once: the first
// redemption says so, every later one says reuse and shows what the first use issued.
TEST_P(IdentityStoreConformance, AuthorizationCodesKeepEveryFieldAndAreRedeemedOnce) {
  identity::AuthorizationCode c = MakeCode("code-1");
  Status created = store_->CreateAuthorizationCode(c, "hc1");
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_EQ(store_->CreateAuthorizationCode(MakeCode("code-2"), "hc1").code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->RedeemAuthorizationCode("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->NoteAuthorizationCodeIssued("nope", "s", "f").status().code(),
            StatusCode::kNotFound);

  auto first = store_->RedeemAuthorizationCode("hc1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->first);
  const identity::AuthorizationCode& got = first->code;
  EXPECT_EQ(got.code_id, "code-1");
  EXPECT_EQ(got.client_id, c.client_id);
  EXPECT_EQ(got.redirect_uri, c.redirect_uri);
  EXPECT_EQ(got.code_challenge, c.code_challenge);
  EXPECT_EQ(got.resource, c.resource);
  EXPECT_EQ(got.agent, "planner");
  EXPECT_EQ(got.scopes, c.scopes);
  EXPECT_EQ(got.subject, "alice");
  EXPECT_EQ(got.issuer, "https://idp.example");
  EXPECT_EQ(got.name, c.name);
  EXPECT_EQ(got.email, c.email);
  EXPECT_EQ(got.groups, c.groups) << "group names keep their spaces, quotes and newlines";
  EXPECT_EQ(got.expires_at, 1060);
  EXPECT_TRUE(got.used);
  EXPECT_EQ(got.sid, "");
  EXPECT_EQ(got.family_id, "");

  auto noted = store_->NoteAuthorizationCodeIssued("hc1", "s1", "fam-1");
  ASSERT_TRUE(noted.ok()) << noted.status().ToString();
  EXPECT_FALSE(*noted) << "nobody presented the code again yet";

  auto second = store_->RedeemAuthorizationCode("hc1");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->first) << "a second redemption is reuse";
  EXPECT_EQ(second->code.sid, "s1") << "reuse finds what the first use issued";
  EXPECT_EQ(second->code.family_id, "fam-1");
  EXPECT_FALSE(store_->RedeemAuthorizationCode("hc1")->first);
}

// A reuse that lands before the first use noted what it issued finds nothing to revoke: the
// note tells the first use, which revokes it itself.
TEST_P(IdentityStoreConformance, AReuseBeforeTheNoteIsReportedByTheNote) {
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("code-1"), "hc1").ok());
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("code-2"), "hc2").ok());
  ASSERT_TRUE(store_->RedeemAuthorizationCode("hc1")->first);
  auto reuse = store_->RedeemAuthorizationCode("hc1");
  ASSERT_TRUE(reuse.ok());
  EXPECT_FALSE(reuse->first);
  EXPECT_EQ(reuse->code.family_id, "");
  auto noted = store_->NoteAuthorizationCodeIssued("hc1", "s1", "fam-1");
  ASSERT_TRUE(noted.ok()) << noted.status().ToString();
  EXPECT_TRUE(*noted) << "the code was reused while its first use was being answered";
  EXPECT_TRUE(store_->RedeemAuthorizationCode("hc2")->first) << "codes are independent";
}

// Redemptions racing on one code (as from several nodes): exactly one is first.
TEST_P(IdentityStoreConformance, RacingRedemptionsHaveExactlyOneFirst) {
  constexpr int kCodes = 4;
  constexpr int kThreads = 8;
  for (int c = 0; c < kCodes; ++c) {
    ASSERT_TRUE(store_
                    ->CreateAuthorizationCode(MakeCode("code-" + std::to_string(c)),
                                              "hc" + std::to_string(c))
                    .ok());
  }
  std::atomic<int> firsts[kCodes] = {};
  std::atomic<int> failures{0};
  RunTogether(kThreads, [&](int) {
    for (int c = 0; c < kCodes; ++c) {
      auto r = store_->RedeemAuthorizationCode("hc" + std::to_string(c));
      if (!r.ok()) {
        ++failures;
      } else if (r->first) {
        ++firsts[c];
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
  for (int c = 0; c < kCodes; ++c) EXPECT_EQ(firsts[c].load(), 1) << "code " << c;
}

// Purging drops expired codes, but keeps a used one for the grace period so that its reuse is
// still detected rather than answered "unknown".
TEST_P(IdentityStoreConformance, PurgeKeepsUsedCodesForTheGracePeriod) {
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("unused", 1060), "h-unused").ok());
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("used", 1060), "h-used").ok());
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("live", 2000), "h-live").ok());
  ASSERT_TRUE(store_->RedeemAuthorizationCode("h-used")->first);
  ASSERT_TRUE(store_->PurgeAuthorizationCodes(1059, 600).ok());
  EXPECT_TRUE(store_->RedeemAuthorizationCode("h-unused")->first) << "not expired yet";
  ASSERT_TRUE(store_->CreateAuthorizationCode(MakeCode("unused2", 1060), "h-unused2").ok());
  ASSERT_TRUE(store_->PurgeAuthorizationCodes(1060, 600).ok());
  EXPECT_EQ(store_->RedeemAuthorizationCode("h-unused2").status().code(), StatusCode::kNotFound)
      << "an expired, unused code is gone";
  auto used = store_->RedeemAuthorizationCode("h-used");
  ASSERT_TRUE(used.ok()) << "a used code outlives its expiry by the grace period";
  EXPECT_FALSE(used->first);
  EXPECT_TRUE(store_->RedeemAuthorizationCode("h-live")->first);
  ASSERT_TRUE(store_->PurgeAuthorizationCodes(1660, 600).ok());
  EXPECT_EQ(store_->RedeemAuthorizationCode("h-used").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->RedeemAuthorizationCode("h-unused").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->RedeemAuthorizationCode("h-live").ok()) << "used at 1060, expires at 2000";
}

TEST_P(IdentityStoreConformance, ConsentsArePerPersonAndClientAndCanBeDeleted) {
  identity::Consent c{"https://idp.example", "alice", "client-a", "planner", {"db/read"}, 10};
  Status put = store_->PutConsent(c);
  ASSERT_TRUE(put.ok()) << put.ToString();
  identity::Consent bob = c;
  bob.initiator = "bob";
  ASSERT_TRUE(store_->PutConsent(bob).ok());
  identity::Consent other = c;
  other.client_id = "client-0";
  ASSERT_TRUE(store_->PutConsent(other).ok());
  auto got = store_->GetConsent("https://idp.example", "alice", "client-a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->agent, "planner");
  EXPECT_EQ(got->scopes, (Strings{"db/read"}));
  EXPECT_EQ(got->granted_at, 10);
  EXPECT_EQ(store_->GetConsent("https://other.example", "alice", "client-a").status().code(),
            StatusCode::kNotFound)
      << "a person is their issuer and subject";
  c.scopes = {"db/read", "db/write"};
  c.granted_at = 20;
  ASSERT_TRUE(store_->PutConsent(c).ok());
  EXPECT_EQ(store_->GetConsent("https://idp.example", "alice", "client-a")->scopes,
            (Strings{"db/read", "db/write"}))
      << "replaced";
  auto list = store_->ListConsents();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].client_id, "client-0");
  EXPECT_EQ((*list)[1].initiator, "alice");
  EXPECT_EQ((*list)[2].initiator, "bob");
  ASSERT_TRUE(store_->DeleteConsent("https://idp.example", "alice", "client-a").ok());
  EXPECT_EQ(store_->DeleteConsent("https://idp.example", "alice", "client-a").code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetConsent("https://idp.example", "alice", "client-a").status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetConsent("https://idp.example", "bob", "client-a").ok());
}

// The browser's part of a sign-in, shared by the nodes: an entry is read while live, taken
// once, keyed by kind and hash, and gone once expired or purged.
TEST_P(IdentityStoreConformance, BrowserStatesAreTakenOnceAndExpire) {
  Status put = store_->PutBrowserState("login", "h1", R"({"a":1})", 1000);
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(store_->PutBrowserState("login", "h1", "{}", 2000).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->PutBrowserState("consent", "h1", R"({"b":2})", 1000).ok())
      << "the kind is part of the key";
  ASSERT_TRUE(store_->PutBrowserState("approver", "h2", R"({"c":3})", 1000).ok());
  auto got = store_->GetBrowserState("approver", "h2", 999);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, R"({"c":3})");
  EXPECT_TRUE(store_->GetBrowserState("approver", "h2", 999).ok()) << "a read leaves it";
  EXPECT_EQ(store_->GetBrowserState("approver", "h2", 1000).status().code(), StatusCode::kNotFound)
      << "expired at expires_at";
  EXPECT_EQ(store_->GetBrowserState("login", "h2", 999).status().code(), StatusCode::kNotFound);
  auto taken = store_->TakeBrowserState("login", "h1", 999);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(*taken, R"({"a":1})");
  EXPECT_EQ(store_->TakeBrowserState("login", "h1", 999).status().code(), StatusCode::kNotFound)
      << "taken once";
  EXPECT_EQ(store_->GetBrowserState("login", "h1", 999).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->TakeBrowserState("consent", "h1", 1000).status().code(), StatusCode::kNotFound)
      << "an expired entry is not taken";
  EXPECT_EQ(store_->TakeBrowserState("consent", "h1", 0).status().code(), StatusCode::kNotFound)
      << "and is gone";
  EXPECT_EQ(store_->TakeBrowserState("login", "nope", 0).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutBrowserState("login", "old", "{}", 100).ok());
  ASSERT_TRUE(store_->PutBrowserState("login", "edge", "{}", 150).ok());
  ASSERT_TRUE(store_->PutBrowserState("login", "new", "{}", 151).ok());
  ASSERT_TRUE(store_->PurgeBrowserStates(150).ok());
  EXPECT_TRUE(store_->PutBrowserState("login", "old", "{}", 100).ok()) << "purged";
  EXPECT_TRUE(store_->PutBrowserState("login", "edge", "{}", 100).ok()) << "purged";
  EXPECT_EQ(store_->PutBrowserState("login", "new", "{}", 100).code(), StatusCode::kAlreadyExists)
      << "live, kept";
  EXPECT_TRUE(store_->GetBrowserState("approver", "h2", 0).ok()) << "purge is by expiry only";
}

// Takes racing on one entry (as the IdP's answer replayed at several nodes): exactly one wins.
TEST_P(IdentityStoreConformance, RacingTakesOfABrowserStateHaveExactlyOneWinner) {
  constexpr int kEntries = 4;
  constexpr int kThreads = 8;
  for (int e = 0; e < kEntries; ++e) {
    ASSERT_TRUE(store_->PutBrowserState("login", "h" + std::to_string(e), "{}", 1000).ok());
  }
  std::atomic<int> wins[kEntries] = {};
  std::atomic<int> failures{0};
  RunTogether(kThreads, [&](int) {
    for (int e = 0; e < kEntries; ++e) {
      auto r = store_->TakeBrowserState("login", "h" + std::to_string(e), 10);
      if (r.ok()) {
        ++wins[e];
      } else if (r.status().code() != StatusCode::kNotFound) {
        ++failures;
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
  for (int e = 0; e < kEntries; ++e) EXPECT_EQ(wins[e].load(), 1) << "entry " << e;
}

}  // namespace
}  // namespace custody::store::testing
