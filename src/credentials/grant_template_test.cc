// Grant templates: the one parameter is {{role}}, checked when the configuration is read, and
// substituted with the quoted identifier only.
#include "credentials/grant_template.h"

#include <gtest/gtest.h>

namespace custody::credentials {
namespace {

constexpr const char* kKey = "credentials.postgres.orders.access.read.grant";

TEST(GrantTemplate, AcceptsTheRoleParameter) {
  EXPECT_TRUE(
      ValidateGrantTemplate("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}", kKey).ok());
  EXPECT_TRUE(ValidateGrantTemplate(
                  "GRANT USAGE ON SCHEMA s TO {{role}}; GRANT SELECT ON s.t TO {{role}}", kKey)
                  .ok());
}

TEST(GrantTemplate, RefusesAnythingElseNamingTheKey) {
  for (const char* bad : {"", "   ", "GRANT SELECT ON t TO PUBLIC", "GRANT SELECT ON t TO {{user}}",
                          "GRANT SELECT ON {{table}} TO {{role}}", "GRANT x TO {{ role }}",
                          "GRANT x TO {{role}", "GRANT x TO role}}"}) {
    Status st = ValidateGrantTemplate(bad, kKey);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find(kKey), std::string::npos) << st.message();
  }
}

TEST(GrantTemplate, RendersOnlyTheQuotedRole) {
  EXPECT_EQ(RenderGrant("GRANT SELECT ON t TO {{role}}; GRANT USAGE ON SCHEMA s TO {{role}}",
                        "\"custody_a\""),
            "GRANT SELECT ON t TO \"custody_a\"; GRANT USAGE ON SCHEMA s TO \"custody_a\"");
}

}  // namespace
}  // namespace custody::credentials
