#include <gtest/gtest.h>

#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/parser.h"

namespace custody::policy {
namespace {

TEST(PolicyParser, ParsesSimplePermit) {
  auto out = ParsePolicies("permit(principal, action, resource) when { 1 + 2 == 3 };");
  ASSERT_TRUE(out.errors.empty()) << out.errors[0].ToString();
  ASSERT_EQ(out.policies.size(), 1u);
  EXPECT_EQ(out.policies[0].id, "policy0");
}

}  // namespace
}  // namespace custody::policy
