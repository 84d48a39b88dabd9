#include "mcp/tool_pins.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

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

class ToolPinStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("custody-pins-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
    std::filesystem::remove(path_);
    auto s = SqliteToolPinStore::Open(path_.string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(path_.string() + suffix);
  }
  std::filesystem::path path_;
  std::unique_ptr<SqliteToolPinStore> store_;
};

TEST_F(ToolPinStoreTest, FirstSeenIsPinnedAChangeIsRefusedUntilApproved) {
  auto first = store_->Observe("s", "echo", "h1", 1000);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->approved);
  EXPECT_TRUE(first->first_seen);
  auto again = store_->Observe("s", "echo", "h1", 2000);
  EXPECT_TRUE(again->approved);
  EXPECT_FALSE(again->first_seen);
  EXPECT_FALSE(again->newly_changed);

  // A rug pull: a new hash is reported once as a change, and stays unapproved.
  auto changed = store_->Observe("s", "echo", "h2", 3000);
  EXPECT_FALSE(changed->approved);
  EXPECT_TRUE(changed->newly_changed);
  EXPECT_EQ(changed->approved_hash, "h1");
  auto still = store_->Observe("s", "echo", "h2", 4000);
  EXPECT_FALSE(still->approved);
  EXPECT_FALSE(still->newly_changed);

  // Only the hash currently advertised can be approved.
  EXPECT_EQ(store_->Approve("s", "echo", "h3").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Approve("s", "nope", "h2").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Approve("s", "echo", "h2").ok());
  EXPECT_TRUE(store_->Observe("s", "echo", "h2", 5000)->approved);
  // Reverting to the old definition is a change again.
  EXPECT_FALSE(store_->Observe("s", "echo", "h1", 6000)->approved);

  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].approved_hash, "h2");
  EXPECT_EQ((*list)[0].seen_hash, "h1");
  EXPECT_EQ((*list)[0].first_seen_ms, 1000);
}

TEST_F(ToolPinStoreTest, PinsSurviveReopening) {
  ASSERT_TRUE(store_->Observe("s", "echo", "h1", 1).ok());
  store_.reset();
  auto s = SqliteToolPinStore::Open(path_.string());
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->Observe("s", "echo", "h2", 2)->approved);
  store_ = std::move(*s);
}

}  // namespace
}  // namespace custody::mcp
