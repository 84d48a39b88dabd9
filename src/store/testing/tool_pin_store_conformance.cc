#include "store/testing/tool_pin_store_conformance.h"

namespace custody::store::testing {
namespace {

constexpr PinKind kTool = PinKind::kTool;

TEST_P(ToolPinStoreConformance, FirstSeenIsPinnedAChangeIsRefusedUntilApproved) {
  auto first = store_->Observe(kTool, "s", "echo", "h1", 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->approved);
  EXPECT_TRUE(first->first_seen);
  EXPECT_EQ(first->approved_hash, "h1");
  auto again = store_->Observe(kTool, "s", "echo", "h1", 2000);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->approved);
  EXPECT_FALSE(again->first_seen);
  EXPECT_FALSE(again->newly_changed);

  // A rug pull: a new hash is reported once as a change, and stays unapproved.
  auto changed = store_->Observe(kTool, "s", "echo", "h2", 3000);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(changed->approved);
  EXPECT_TRUE(changed->newly_changed);
  EXPECT_EQ(changed->approved_hash, "h1");
  auto still = store_->Observe(kTool, "s", "echo", "h2", 4000);
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->approved);
  EXPECT_FALSE(still->newly_changed);

  // Only the hash currently advertised can be approved.
  EXPECT_EQ(store_->Approve(kTool, "s", "echo", "h3").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Approve(kTool, "s", "nope", "h2").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Approve(kTool, "s", "echo", "h2").ok());
  EXPECT_TRUE(store_->Observe(kTool, "s", "echo", "h2", 5000)->approved);
  // Reverting to the old definition is a change again.
  auto reverted = store_->Observe(kTool, "s", "echo", "h1", 6000);
  ASSERT_TRUE(reverted.ok());
  EXPECT_FALSE(reverted->approved);
  EXPECT_TRUE(reverted->newly_changed);

  auto list = store_->List(kTool);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].server, "s");
  EXPECT_EQ((*list)[0].name, "echo");
  EXPECT_EQ((*list)[0].approved_hash, "h2");
  EXPECT_EQ((*list)[0].seen_hash, "h1");
  EXPECT_EQ((*list)[0].first_seen_ms, 1000);
  EXPECT_EQ((*list)[0].changed_ms, 6000);
}

TEST_P(ToolPinStoreConformance, AChangeBackToTheApprovedHashIsApprovedAndKeepsWhenItChanged) {
  ASSERT_TRUE(store_->Observe(kTool, "s", "echo", "h1", 1000).ok());
  ASSERT_TRUE(store_->Observe(kTool, "s", "echo", "h2", 2000).ok());
  auto back = store_->Observe(kTool, "s", "echo", "h1", 3000);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->approved);
  EXPECT_FALSE(back->newly_changed);
  auto list = store_->List(kTool);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].seen_hash, "h1");
  EXPECT_EQ((*list)[0].changed_ms, 2000);
}

TEST_P(ToolPinStoreConformance, ToolsAreKeptPerServerAndListedInOrder) {
  EXPECT_TRUE(store_->List(kTool)->empty());
  ASSERT_TRUE(store_->Observe(kTool, "zeta", "a", "h1", 1).ok());
  ASSERT_TRUE(store_->Observe(kTool, "alpha", "b", "h2", 2).ok());
  ASSERT_TRUE(store_->Observe(kTool, "alpha", "a", "h3", 3).ok());
  auto other = store_->Observe(kTool, "zeta", "b", "h2", 4);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->first_seen) << "the same tool name on another server is another tool";
  auto list = store_->List(kTool);
  ASSERT_TRUE(list.ok());
  std::vector<std::string> keys;
  for (const auto& p : *list) keys.push_back(p.server + "/" + p.name);
  EXPECT_EQ(keys, (std::vector<std::string>{"alpha/a", "alpha/b", "zeta/a", "zeta/b"}));
}

TEST_P(ToolPinStoreConformance, ToolsResourcesAndPromptsArePinnedApartWhateverTheirNames) {
  // One name as a tool, a prompt and a resource of one server: three pins, each its own first
  // sighting, changed and approved alone.
  for (PinKind kind : {PinKind::kTool, PinKind::kPrompt, PinKind::kResource}) {
    auto first = store_->Observe(kind, "s", "greet", "h-" + std::string(PinKindName(kind)), 1);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_TRUE(first->first_seen) << PinKindName(kind);
  }
  auto changed = store_->Observe(PinKind::kPrompt, "s", "greet", "h2", 2);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed->newly_changed);
  EXPECT_EQ(changed->approved_hash, "h-prompt");
  EXPECT_TRUE(store_->Observe(PinKind::kTool, "s", "greet", "h-tool", 3)->approved);
  EXPECT_EQ(store_->Approve(PinKind::kResource, "s", "greet", "h2").code(),
            StatusCode::kFailedPrecondition)
      << "the prompt's hash is not the resource's";
  EXPECT_EQ(store_->Approve(PinKind::kResource, "s", "other", "h2").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Approve(PinKind::kPrompt, "s", "greet", "h2").ok());

  auto prompts = store_->List(PinKind::kPrompt);
  ASSERT_TRUE(prompts.ok());
  ASSERT_EQ(prompts->size(), 1u);
  EXPECT_EQ((*prompts)[0].kind, PinKind::kPrompt);
  EXPECT_EQ((*prompts)[0].approved_hash, "h2");
  auto tools = store_->List(PinKind::kTool);
  ASSERT_TRUE(tools.ok());
  ASSERT_EQ(tools->size(), 1u);
  EXPECT_EQ((*tools)[0].approved_hash, "h-tool");
  EXPECT_EQ((*tools)[0].changed_ms, 0);
  ASSERT_TRUE(store_->Observe(PinKind::kResource, "a", "file:///z", "h", 4).ok());
  auto resources = store_->List(PinKind::kResource);
  ASSERT_TRUE(resources.ok());
  ASSERT_EQ(resources->size(), 2u);
  EXPECT_EQ((*resources)[0].server + "/" + (*resources)[0].name, "a/file:///z");
  EXPECT_EQ((*resources)[1].seen_hash, "h-resource");
}

}  // namespace
}  // namespace custody::store::testing
