#include "api/auth.h"

#include <gtest/gtest.h>

#include <memory>

#include "store/stores.h"

namespace custody::api {
namespace {

// The in-memory admin token store, from the factory.
std::unique_ptr<store::AdminTokenStore> MemoryTokens() {
  auto s = store::OpenAdminTokenStore(store::StorageOptions::InMemory());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(Auth, IssuedTokensAuthenticateAndAreStoredHashed) {
  auto owned = MemoryTokens();
  store::AdminTokenStore& store = *owned;
  FakeClock clock;
  SystemRandom random;
  auto t = IssueAdminToken(store, "admin", "ops", clock, random);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->token.starts_with("cst_" + t->id + "_"));
  EXPECT_EQ(t->token.size(), 4u + 16 + 1 + 43);
  // Nothing stored contains the token or its secret part.
  auto got = store.Get(t->id);
  ASSERT_TRUE(got.ok() && got->has_value());
  const store::AdminTokenRecord& rec = **got;
  EXPECT_EQ(rec.role, "admin");
  EXPECT_EQ(rec.label, "ops");
  std::string secret = t->token.substr(21);
  std::string stored(reinterpret_cast<const char*>(rec.hash.data()), rec.hash.size());
  EXPECT_EQ(stored.find(secret), std::string::npos);

  TokenAuthenticator auth(store);
  auto p = auth.Authenticate(t->token);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->id, t->id);
  EXPECT_EQ(p->role, "admin");
}

TEST(Auth, WrongMalformedAndRevokedTokensAreRefused) {
  auto owned = MemoryTokens();
  store::AdminTokenStore& store = *owned;
  FakeClock clock;
  SystemRandom random;
  auto t = IssueAdminToken(store, "reader", "", clock, random);
  ASSERT_TRUE(t.ok());
  TokenAuthenticator auth(store);
  std::string wrong = t->token;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(auth.Authenticate(wrong).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("cst_nothex").status().code(), StatusCode::kUnauthenticated);
  // The message never echoes the presented token.
  EXPECT_EQ(auth.Authenticate(wrong).status().message().find(wrong), std::string::npos);
  ASSERT_TRUE(store.Revoke(t->id, 5).ok());
  auto r = auth.Authenticate(t->token);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), "token revoked");
  EXPECT_EQ(IssueAdminToken(store, "root", "", clock, random).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Auth, TokenIdParsing) {
  EXPECT_EQ(*TokenId("cst_0123456789abcdef_" + std::string(43, 'A')), "0123456789abcdef");
  EXPECT_FALSE(TokenId("cst_0123456789ABCDEF_" + std::string(43, 'A')).ok());
  EXPECT_FALSE(TokenId("xyz_0123456789abcdef_" + std::string(43, 'A')).ok());
  EXPECT_FALSE(TokenId("cst_0123456789abcdef_" + std::string(42, 'A')).ok());
}

}  // namespace
}  // namespace custody::api
