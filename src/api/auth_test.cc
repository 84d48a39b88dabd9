#include "api/auth.h"

#include <gtest/gtest.h>

#include <map>

namespace custody::api {
namespace {

class MemoryTokenStore : public store::AdminTokenStore {
 public:
  Status Insert(const store::AdminTokenRecord& r) override {
    if (!records_.emplace(r.id, r).second) return AlreadyExistsError("dup");
    return OkStatus();
  }
  Result<std::optional<store::AdminTokenRecord>> Get(std::string_view id) override {
    auto it = records_.find(std::string(id));
    if (it == records_.end()) return std::optional<store::AdminTokenRecord>();
    return std::optional<store::AdminTokenRecord>(it->second);
  }
  Result<std::vector<store::AdminTokenRecord>> List() override {
    std::vector<store::AdminTokenRecord> out;
    for (auto& [k, v] : records_) out.push_back(v);
    return out;
  }
  Status Revoke(std::string_view id, int64_t at) override {
    auto it = records_.find(std::string(id));
    if (it == records_.end()) return NotFoundError("no");
    it->second.revoked_unix_ms = at;
    return OkStatus();
  }
  std::map<std::string, store::AdminTokenRecord> records_;
};

TEST(Auth, IssuedTokensAuthenticateAndAreStoredHashed) {
  MemoryTokenStore store;
  FakeClock clock;
  SystemRandom random;
  auto t = IssueAdminToken(store, "admin", "ops", clock, random);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->token.starts_with("cst_" + t->id + "_"));
  EXPECT_EQ(t->token.size(), 4u + 16 + 1 + 43);
  // Nothing stored contains the token or its secret part.
  const auto& rec = store.records_.at(t->id);
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
  MemoryTokenStore store;
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
