#include "store/testing/credential_store_conformance.h"

namespace custody::store::testing {
namespace {

LeaseRow Lease(const std::string& role, const std::string& sid, int64_t issued_ms) {
  LeaseRow l;
  l.role = role;
  l.sid = sid;
  l.root_sid = "root-" + sid;
  l.agent = "worker";
  l.initiator = "alice@example.com";
  l.action_id = "action-" + role;
  l.decision_index = 42;
  l.database = "orders";
  l.access = "read";
  l.password_sha256 = std::string(64, 'a');
  l.issued_ms = issued_ms;
  l.expires_ms = issued_ms + 60'000;
  return l;
}

TEST_P(CredentialStoreConformance, ALeaseReadsBackAsStored) {
  LeaseRow l = Lease("custody_r1", "s1", 1000);
  ASSERT_TRUE(store_->Insert(l).ok());
  auto got = store_->Get("custody_r1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, l);
  auto none = store_->Get("custody_other");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(CredentialStoreConformance, ARoleIsLeasedOnce) {
  ASSERT_TRUE(store_->Insert(Lease("custody_r1", "s1", 1000)).ok());
  Status again = store_->Insert(Lease("custody_r1", "s2", 2000));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_EQ((*store_->Get("custody_r1"))->sid, "s1");
}

TEST_P(CredentialStoreConformance, StatesMoveForwardOnceEach) {
  ASSERT_TRUE(store_->Insert(Lease("custody_r1", "s1", 1000)).ok());
  EXPECT_FALSE(*store_->FinishRevoke("custody_r1", 5)) << "not revoking yet";
  EXPECT_TRUE(*store_->BeginRevoke("custody_r1", "contained"));
  EXPECT_FALSE(*store_->BeginRevoke("custody_r1", "expired")) << "already revoking";
  auto mid = *store_->Get("custody_r1");
  EXPECT_EQ(mid->state, LeaseState::kRevoking);
  EXPECT_EQ(mid->revoke_reason, "contained");
  EXPECT_EQ(mid->revoked_ms, 0);
  EXPECT_FALSE(*store_->Renew("custody_r1", 99'000)) << "only an active lease is renewed";
  EXPECT_TRUE(*store_->FinishRevoke("custody_r1", 7000));
  EXPECT_FALSE(*store_->FinishRevoke("custody_r1", 8000));
  auto done = *store_->Get("custody_r1");
  EXPECT_EQ(done->state, LeaseState::kRevoked);
  EXPECT_EQ(done->revoked_ms, 7000);
  EXPECT_EQ(done->revoke_reason, "contained");
  EXPECT_EQ(store_->BeginRevoke("custody_nope", "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FinishRevoke("custody_nope", 1).status().code(), StatusCode::kNotFound);
}

TEST_P(CredentialStoreConformance, RenewMovesAnActiveLeasesExpiry) {
  ASSERT_TRUE(store_->Insert(Lease("custody_r1", "s1", 1000)).ok());
  EXPECT_TRUE(*store_->Renew("custody_r1", 99'000));
  EXPECT_EQ((*store_->Get("custody_r1"))->expires_ms, 99'000);
  EXPECT_EQ(store_->Renew("custody_nope", 1).status().code(), StatusCode::kNotFound);
}

TEST_P(CredentialStoreConformance, ListsFilterAndOrderOldestFirst) {
  ASSERT_TRUE(store_->Insert(Lease("custody_b", "s1", 2000)).ok());
  ASSERT_TRUE(store_->Insert(Lease("custody_a", "s1", 2000)).ok());
  ASSERT_TRUE(store_->Insert(Lease("custody_c", "s1", 1000)).ok());
  ASSERT_TRUE(store_->Insert(Lease("custody_d", "s2", 500)).ok());
  ASSERT_TRUE(*store_->BeginRevoke("custody_d", "expired"));
  auto active = store_->ListByState(LeaseState::kActive);
  ASSERT_TRUE(active.ok()) << active.status().ToString();
  std::vector<std::string> roles;
  for (const auto& l : *active) roles.push_back(l.role);
  EXPECT_EQ(roles, (std::vector<std::string>{"custody_c", "custody_a", "custody_b"}));
  auto revoking = *store_->ListByState(LeaseState::kRevoking);
  ASSERT_EQ(revoking.size(), 1u);
  EXPECT_EQ(revoking[0].role, "custody_d");
  EXPECT_TRUE(store_->ListByState(LeaseState::kRevoked)->empty());
  auto s2 = *store_->ListBySession("s2");
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0].state, LeaseState::kRevoking);
  EXPECT_EQ(store_->ListBySession("s1")->size(), 3u);
  EXPECT_TRUE(store_->ListBySession("s3")->empty());
}

}  // namespace
}  // namespace custody::store::testing
