#include "store/testing/admin_token_store_conformance.h"

namespace custody::store::testing {
namespace {

AdminTokenRecord Rec(std::string id, std::string role, int64_t t, std::string label = "") {
  AdminTokenRecord r;
  r.id = std::move(id);
  r.role = std::move(role);
  r.label = std::move(label);
  r.hash.fill(static_cast<uint8_t>(t));
  r.created_unix_ms = t;
  return r;
}

TEST_P(AdminTokenStoreConformance, InsertGetListRevoke) {
  ASSERT_TRUE(store_->Insert(Rec("aaaa", "admin", 1)).ok());
  ASSERT_TRUE(store_->Insert(Rec("bbbb", "reader", 2, "ci")).ok());
  EXPECT_EQ(store_->Insert(Rec("aaaa", "admin", 3)).code(), StatusCode::kAlreadyExists);
  auto got = store_->Get("bbbb");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->id, "bbbb");
  EXPECT_EQ((*got)->role, "reader");
  EXPECT_EQ((*got)->label, "ci");
  EXPECT_EQ((*got)->hash, Rec("bbbb", "reader", 2).hash);
  EXPECT_EQ((*got)->created_unix_ms, 2);
  EXPECT_FALSE((*got)->revoked_unix_ms.has_value());
  auto first = store_->Get("aaaa");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->label, "") << "the refused insert changed nothing";
  EXPECT_EQ((*first)->created_unix_ms, 1);
  auto missing = store_->Get("cccc");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->Revoke("aaaa", 100).ok());
  ASSERT_TRUE(store_->Revoke("aaaa", 200).ok());
  EXPECT_EQ(store_->Revoke("zzzz", 1).code(), StatusCode::kNotFound);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "aaaa");
  EXPECT_EQ((*list)[0].revoked_unix_ms.value_or(0), 100);  // the first revocation time stays
  EXPECT_FALSE((*list)[1].revoked_unix_ms.has_value());
  EXPECT_TRUE(store_->CheckWritable().ok());
}

TEST_P(AdminTokenStoreConformance, ListIsOldestFirstThenById) {
  EXPECT_TRUE(store_->List()->empty());
  ASSERT_TRUE(store_->Insert(Rec("cccc", "admin", 5)).ok());
  ASSERT_TRUE(store_->Insert(Rec("bbbb", "admin", 9)).ok());
  ASSERT_TRUE(store_->Insert(Rec("aaaa", "reader", 5)).ok());
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, "aaaa");
  EXPECT_EQ((*list)[1].id, "cccc");
  EXPECT_EQ((*list)[2].id, "bbbb");
}

TEST_P(AdminTokenStoreConformance, ARecordInsertedRevokedStaysRevoked) {
  AdminTokenRecord r = Rec("dddd", "admin", 7);
  r.revoked_unix_ms = 8;
  ASSERT_TRUE(store_->Insert(r).ok());
  ASSERT_TRUE(store_->Revoke("dddd", 50).ok());
  auto got = store_->Get("dddd");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->revoked_unix_ms.value_or(0), 8);
}

}  // namespace
}  // namespace custody::store::testing
