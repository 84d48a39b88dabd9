// PgIdentityStore given a key-encryption key: the signing_keys table holds no private key in the
// clear, and a row the KEK does not open for its kid (moved to another kid, written unwrapped by
// someone with database access only, or wrapped with another KEK) is refused, never signed with.
#include <gtest/gtest.h>

#include "store/postgres/pg_db.h"
#include "store/postgres/pg_identity_store.h"
#include "store/testing/pg_cluster.h"

namespace custody::store {
namespace {

using identity::SigningKeyRecord;
using testing::PgCluster;

std::shared_ptr<const crypto::KeyEncryptionKey> Kek(uint8_t fill) {
  std::array<uint8_t, crypto::KeyEncryptionKey::kSize> b;
  b.fill(fill);
  return std::make_shared<const crypto::KeyEncryptionKey>(crypto::KeyEncryptionKey::FromBytes(b));
}

std::string Pem(const std::string& tag) {
  return "-----BEGIN PRIVATE KEY-----\n" + tag + "\n-----END PRIVATE KEY-----\n";
}

TEST(PgIdentityStoreKeyWrapTest, KeysAreStoredWrappedAndARowTheKekDoesNotOpenIsRefused) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto url = (*cluster)->NewDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  SystemRandom random;
  auto store = PgIdentityStore::Open(*url, Kek(1), &random);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->PutSigningKey(SigningKeyRecord{"kid-a", Pem("AAAA"), 1, 0, 0}).ok());
  ASSERT_TRUE((*store)->PutSigningKey(SigningKeyRecord{"kid-b", Pem("BBBB"), 2, 0, 0}).ok());
  auto listed = (*store)->ListSigningKeys();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].private_pem, Pem("AAAA"));
  EXPECT_EQ((*listed)[1].private_pem, Pem("BBBB"));

  auto db = PgDb::Open(*url);
  ASSERT_TRUE(db.ok());
  auto raw = (*db)->Exec("raw", "SELECT private_pem FROM signing_keys");
  ASSERT_TRUE(raw.ok());
  for (int i = 0; i < raw->size(); ++i) {
    std::string stored(raw->Text(i, 0));
    EXPECT_EQ(stored.find("PRIVATE KEY"), std::string::npos) << stored;
    EXPECT_EQ(stored.find("AAAA"), std::string::npos) << stored;
    EXPECT_TRUE(crypto::KeyEncryptionKey::LooksWrapped(stored)) << stored;
  }

  // Another KEK opens nothing.
  auto other = PgIdentityStore::Open(*url, Kek(2), &random);
  ASSERT_TRUE(other.ok());
  auto wrong = (*other)->ListSigningKeys();
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("wrong key?"), std::string::npos);

  // kid-a's wrapped key moved to kid-b (someone with write access to the database only).
  auto swap = [&] {
    return (*db)->Exec("swap",
                       "UPDATE signing_keys SET private_pem = CASE kid WHEN 'kid-a' THEN "
                       "(SELECT private_pem FROM signing_keys WHERE kid = 'kid-b') ELSE "
                       "(SELECT private_pem FROM signing_keys WHERE kid = 'kid-a') END");
  };
  ASSERT_TRUE(swap().ok());
  EXPECT_FALSE((*store)->ListSigningKeys().ok());
  ASSERT_TRUE(swap().ok());
  EXPECT_TRUE((*store)->ListSigningKeys().ok());

  // A key written in the clear, by someone without the KEK, is not taken.
  ASSERT_TRUE((*db)
                  ->Exec("clear",
                         "INSERT INTO signing_keys(kid, private_pem, created_at, retired_at, "
                         "publish_until) VALUES('kid-c', $1, 3, 0, 0)",
                         {PgText(Pem("CCCC"))})
                  .ok());
  auto clear = (*store)->ListSigningKeys();
  ASSERT_FALSE(clear.ok());
  EXPECT_NE(clear.status().message().find("not wrapped"), std::string::npos)
      << clear.status().message();
}

}  // namespace
}  // namespace custody::store
