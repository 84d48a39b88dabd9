#include "mcp/subscriptions.h"

#include <gtest/gtest.h>

#include "mcp/sse_sink.h"

namespace custody::mcp {
namespace {

TEST(Subscriptions, TheUpstreamIsSubscribedForTheFirstAndUnsubscribedAfterTheLast) {
  Subscriptions s;
  EXPECT_TRUE(s.Subscribe("fs", "file:///a", "session-1"));
  EXPECT_FALSE(s.Subscribe("fs", "file:///a", "session-2"));
  EXPECT_FALSE(s.Subscribe("fs", "file:///a", "session-2")) << "twice is once";
  EXPECT_TRUE(s.Subscribe("other", "file:///a", "session-1")) << "another server's URI";
  EXPECT_FALSE(s.Unsubscribe("fs", "file:///a", "session-1")) << "session-2 still holds it";
  EXPECT_FALSE(s.Unsubscribe("fs", "file:///a", "session-1")) << "not held: nothing to do";
  EXPECT_EQ(s.SubscribersOf("fs", "file:///a"), std::vector<std::string>{"session-2"});
  EXPECT_TRUE(s.Unsubscribe("fs", "file:///a", "session-2"));
  EXPECT_TRUE(s.SubscribersOf("fs", "file:///a").empty());
}

TEST(Subscriptions, DroppingASubscriberFreesOnlyWhatItHeldAlone) {
  Subscriptions s;
  s.Subscribe("fs", "file:///a", "gone");
  s.Subscribe("fs", "file:///b", "gone");
  s.Subscribe("fs", "file:///b", "stays");
  auto left = s.Drop("gone");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], std::make_pair(std::string("fs"), std::string("file:///a")));
  EXPECT_EQ(s.SubscribersOf("fs", "file:///b"), std::vector<std::string>{"stays"});
}

TEST(Subscriptions, ListenersHearOnlyWhatTheyAskedForOnTheirEndpoint) {
  Subscriptions s;
  ListenFilter tools;
  tools.tools = true;
  ListenFilter prompts;
  prompts.prompts = true;
  std::string a = s.AddListener({"fs", "sid-1", "1", tools, std::make_shared<SseSink>()});
  std::string b = s.AddListener({"", "sid-2", "\"x\"", tools, std::make_shared<SseSink>()});
  std::string c = s.AddListener({"fs", "sid-2", "2", prompts, std::make_shared<SseSink>()});
  std::string d = s.AddListener({"db", "sid-1", "3", tools, std::make_shared<SseSink>()});
  auto heard = s.ListenersFor("fs", "tools");
  ASSERT_EQ(heard.size(), 2u);  // its own endpoint's and the aggregate one's
  EXPECT_EQ(heard[0].first, a);
  EXPECT_EQ(heard[1].first, b);
  ASSERT_EQ(s.ListenersFor("fs", "prompts").size(), 1u);
  EXPECT_TRUE(s.ListenersFor("fs", "resources").empty());
  // Containment takes a session's listeners, and only its.
  auto taken = s.TakeListenersOf({"sid-2"});
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_FALSE(s.FindListener(b).has_value());
  EXPECT_TRUE(s.FindListener(d).has_value());
  s.RemoveListener(a);
  EXPECT_EQ(s.TakeAll().size(), 1u);
  (void)c;
}

}  // namespace
}  // namespace custody::mcp
