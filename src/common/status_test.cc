#include "common/status.h"

#include <gtest/gtest.h>

namespace custody {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("not positive");
  return v;
}

Result<int> Doubled(int v) {
  ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status Check(int v) {
  RETURN_IF_ERROR(ParsePositive(v));
  return OkStatus();
}

TEST(StatusTest, MacrosPropagateErrors) {
  EXPECT_EQ(*Doubled(4), 8);
  Result<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().ToString(), "invalid_argument: not positive");
  EXPECT_TRUE(Check(1).ok());
  EXPECT_EQ(Check(0).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = NotFoundError("no row").WithContext("leaf 7");
  EXPECT_EQ(s.message(), "leaf 7: no row");
  EXPECT_EQ(StatusCodeName(s.code()), "not_found");
}

}  // namespace
}  // namespace custody
