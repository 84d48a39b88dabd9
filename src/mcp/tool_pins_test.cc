#include "mcp/tool_pins.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace custody::mcp {
namespace {

namespace json = boost::json;

json::object Tool(std::string_view text) { return json::parse(text).as_object(); }

TEST(ToolDefinitionHashTest, CoversNameDescriptionSchemaAndAnnotationsCanonically) {
  auto a = ToolDefinitionHash(
      Tool(R"({"name":"echo","description":"Echo","inputSchema":{"type":"object","b":1,"a":2}})"));
  // Member order does not matter (JCS); other members (title, _meta) are not covered.
  auto b = ToolDefinitionHash(Tool(
      R"({"inputSchema":{"a":2,"type":"object","b":1},"description":"Echo","name":"echo","title":"x"})"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 64u);
  for (
      const char* changed : {
          R"({"name":"echo","description":"Echo!","inputSchema":{"type":"object","b":1,"a":2}})",
          R"({"name":"echo","description":"Echo","inputSchema":{"type":"object","b":1}})",
          R"({"name":"echo","description":"Echo","inputSchema":{"type":"object","b":1,"a":2},"annotations":{"destructiveHint":true}})",
          R"({"name":"echo2","description":"Echo","inputSchema":{"type":"object","b":1,"a":2}})",
      }) {
    auto c = ToolDefinitionHash(Tool(changed));
    ASSERT_TRUE(c.ok());
    EXPECT_NE(*c, *a) << changed;
  }
  EXPECT_FALSE(ToolDefinitionHash(Tool(R"({"description":"no name"})")).ok());
}

}  // namespace
}  // namespace custody::mcp
