// [credentials.postgres.NAME]: parsed with its access levels, and refused at start-up with an
// error naming the key for a grant template with another parameter, a password in the URL, two
// password sources, or an unknown key.
#include <gtest/gtest.h>

#include "api/config.h"

namespace custody::api {
namespace {

constexpr const char* kGood = R"(
[credentials.postgres.orders]
admin_url = "postgresql://custody_admin@db.example:5433/orders"
admin_password_env = "ORDERS_ADMIN_PASSWORD"
max_ttl_s = 900
connection_limit = 2
[credentials.postgres.orders.access.read]
grant = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}"
[credentials.postgres.orders.access.write]
grant = "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {{role}}"
max_ttl_s = 300
)";

TEST(CredentialConfig, ParsesADatabaseAndItsAccessLevels) {
  auto c = ParseConfigToml(kGood, "custody.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->credentials.postgres.size(), 1u);
  const auto& d = c->credentials.postgres.at("orders");
  EXPECT_EQ(d.admin_password_env, "ORDERS_ADMIN_PASSWORD");
  EXPECT_EQ(d.max_ttl_s, 900);
  EXPECT_EQ(d.connection_limit, 2);
  ASSERT_EQ(d.access.size(), 2u);
  EXPECT_EQ(d.access.at("write").max_ttl_s, 300);
  EXPECT_EQ(d.access.at("read").max_ttl_s, 0);
}

void ExpectRefused(const std::string& replace, const std::string& with, const std::string& key) {
  std::string text = kGood;
  size_t at = text.find(replace);
  ASSERT_NE(at, std::string::npos) << replace;
  text.replace(at, replace.size(), with);
  auto c = ParseConfigToml(text, "custody.toml");
  ASSERT_EQ(c.status().code(), StatusCode::kInvalidArgument) << with;
  EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status().message();
  EXPECT_EQ(c.status().message().find("s3cret"), std::string::npos) << c.status().message();
}

TEST(CredentialConfig, RefusesBadTemplatesNamingTheKey) {
  const std::string key = "credentials.postgres.orders.access.read.grant";
  ExpectRefused("TO {{role}}\"\n[credentials.postgres.orders.access.write]",
                "TO {{user}}\"\n[credentials.postgres.orders.access.write]", key);
  ExpectRefused("TO {{role}}\"\n[credentials.postgres.orders.access.write]",
                "TO PUBLIC\"\n[credentials.postgres.orders.access.write]", key);
  ExpectRefused("SCHEMA public TO {{role}}\"\n[credentials.postgres.orders.access.write]",
                "{{schema}} TO {{role}}\"\n[credentials.postgres.orders.access.write]", key);
}

TEST(CredentialConfig, RefusesAPasswordInTheUrlAndOtherMistakes) {
  ExpectRefused("custody_admin@", "custody_admin:s3cret@", "credentials.postgres.orders.admin_url");
  ExpectRefused("admin_password_env = \"ORDERS_ADMIN_PASSWORD\"",
                "admin_password_env = \"X\"\nadmin_password_file = \"/etc/x\"",
                "credentials.postgres.orders");
  ExpectRefused("connection_limit = 2", "connection_limit = 0",
                "credentials.postgres.orders.connection_limit");
  ExpectRefused("connection_limit = 2", "conection_limit = 2",
                "credentials.postgres.orders.conection_limit");
  ExpectRefused("max_ttl_s = 300", "max_ttl_s = 3000", "credentials.postgres.orders.access.write");
}

}  // namespace
}  // namespace custody::api
