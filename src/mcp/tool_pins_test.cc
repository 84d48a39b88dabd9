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

TEST(ResourceDefinitionHashTest, CoversTheListedDefinitionByCanonicalUriButNotSize) {
  auto a = ResourceDefinitionHash(Tool(
      R"({"uri":"file:///docs/a.md","name":"a","description":"Notes","mimeType":"text/markdown",)"
      R"("size":10,"annotations":{"audience":["user"],"lastModified":"2025-01-01T00:00:00Z"}})"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->uri, "file:///docs/a.md");
  EXPECT_EQ(a->hash.size(), 64u);
  // The content's size and time, another spelling of the URI, _meta and icons are not covered.
  auto same = ResourceDefinitionHash(Tool(
      R"({"uri":"FILE:///docs/./a.md","name":"a","description":"Notes","mimeType":"text/markdown",)"
      R"("size":99999,"_meta":{"x":1},"icons":[],)"
      R"("annotations":{"lastModified":"2026-02-02T00:00:00Z","audience":["user"]}})"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->uri, "file:///docs/a.md");
  EXPECT_EQ(same->hash, a->hash);
  for (
      const char* changed : {
          R"({"uri":"file:///docs/a.md","name":"b","description":"Notes","mimeType":"text/markdown","annotations":{"audience":["user"]}})",
          R"({"uri":"file:///docs/a.md","name":"a","title":"A","description":"Notes","mimeType":"text/markdown","annotations":{"audience":["user"]}})",
          R"({"uri":"file:///docs/a.md","name":"a","description":"Notes; obey them","mimeType":"text/markdown","annotations":{"audience":["user"]}})",
          R"({"uri":"file:///docs/a.md","name":"a","description":"Notes","mimeType":"text/html","annotations":{"audience":["user"]}})",
          R"({"uri":"file:///docs/a.md","name":"a","description":"Notes","mimeType":"text/markdown","annotations":{"audience":["assistant"]}})",
          R"({"uri":"file:///docs/b.md","name":"a","description":"Notes","mimeType":"text/markdown","annotations":{"audience":["user"]}})",
      }) {
    auto c = ResourceDefinitionHash(Tool(changed));
    ASSERT_TRUE(c.ok()) << changed;
    EXPECT_NE(c->hash, a->hash) << changed;
  }
  EXPECT_FALSE(ResourceDefinitionHash(Tool(R"({"name":"no uri"})")).ok());
  EXPECT_FALSE(ResourceDefinitionHash(Tool(R"({"uri":"docs/a.md"})")).ok()) << "not absolute";
}

TEST(PromptDefinitionHashTest, CoversNameTitleDescriptionAndArguments) {
  auto a = PromptDefinitionHash(Tool(
      R"({"name":"greet","description":"Greets","arguments":[{"name":"who","required":true}]})"));
  ASSERT_TRUE(a.ok());
  auto same = PromptDefinitionHash(Tool(
      R"({"arguments":[{"required":true,"name":"who"}],"description":"Greets","name":"greet","_meta":{}})"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *a);
  for (
      const char* changed : {
          R"({"name":"greet","title":"Hi","description":"Greets","arguments":[{"name":"who","required":true}]})",
          R"({"name":"greet","description":"Greets, then asks for secrets","arguments":[{"name":"who","required":true}]})",
          R"({"name":"greet","description":"Greets","arguments":[{"name":"who"}]})",
          R"({"name":"greet2","description":"Greets","arguments":[{"name":"who","required":true}]})",
      }) {
    auto c = PromptDefinitionHash(Tool(changed));
    ASSERT_TRUE(c.ok()) << changed;
    EXPECT_NE(*c, *a) << changed;
  }
  EXPECT_FALSE(PromptDefinitionHash(Tool(R"({"description":"no name"})")).ok());
}

}  // namespace
}  // namespace custody::mcp
