// PgChangeFeed against a real server: a change published by one node reaches the others (not
// itself), and a feed whose connection is killed comes back by itself and catches up (on_tick).
#include "store/postgres/pg_change_feed.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "store/testing/pg_cluster.h"

namespace custody::store::testing {
namespace {

using namespace std::chrono_literals;

// What a feed delivered, for waiting on in the test.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> changes;  // "topic payload"
  int ticks = 0;

  void Change(const std::string& topic, const std::string& payload) {
    std::lock_guard lock(mu);
    changes.push_back(topic + " " + payload);
    cv.notify_all();
  }
  void Tick() {
    std::lock_guard lock(mu);
    ++ticks;
    cv.notify_all();
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return pred(); });
  }
};

std::unique_ptr<PgChangeFeed> Feed(const std::string& url, Seen& seen,
                                   std::chrono::milliseconds poll = 60000ms) {
  auto f = PgChangeFeed::Open(url, PgChangeFeed::Options{poll});
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return nullptr;
  (*f)->Start([&seen](const std::string& t, const std::string& p) { seen.Change(t, p); },
              [&seen] { seen.Tick(); });
  return std::move(*f);
}

TEST(PgChangeFeedTest, AChangeReachesTheOtherNodesButNotItsPublisher) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto url = (*cluster)->NewDatabase();
  ASSERT_TRUE(url.ok());
  Seen a, b, c;
  auto fa = Feed(*url, a), fb = Feed(*url, b), fc = Feed(*url, c);
  ASSERT_TRUE(fa && fb && fc);
  // Each feed ticks once when it starts listening: wait for that, so no message is sent before.
  for (Seen* s : {&a, &b, &c}) ASSERT_TRUE(s->WaitFor([&] { return s->ticks >= 1; }));
  auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(fa->Publish("revoked", "sid-1 sid-2").ok());
  ASSERT_TRUE(b.WaitFor([&] { return !b.changes.empty(); }));
  auto latency = std::chrono::steady_clock::now() - sent;
  ASSERT_TRUE(c.WaitFor([&] { return !c.changes.empty(); }));
  EXPECT_EQ(b.changes, std::vector<std::string>{"revoked sid-1 sid-2"});
  EXPECT_EQ(c.changes, std::vector<std::string>{"revoked sid-1 sid-2"});
  EXPECT_LT(latency, 5s);  // delivered, not merely found by a poll (the poll is a minute here)
  // The publisher hears nothing of its own.
  ASSERT_TRUE(fb->Publish("policy", "").ok());
  ASSERT_TRUE(a.WaitFor([&] { return !a.changes.empty(); }));
  EXPECT_EQ(a.changes, std::vector<std::string>{"policy "});
  std::this_thread::sleep_for(100ms);
  std::lock_guard lock(b.mu);
  EXPECT_EQ(b.changes.size(), 1u);
  // Refusals: a topic of two words, a payload over the limit.
  EXPECT_EQ(fa->Publish("two words", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fa->Publish("big", std::string(ChangeFeed::kMaxPayload + 1, 'x')).code(),
            StatusCode::kInvalidArgument);
}

TEST(PgChangeFeedTest, AFeedWhoseConnectionIsKilledReconnectsAndCatchesUp) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok());
  auto url = (*cluster)->NewDatabase();
  ASSERT_TRUE(url.ok());
  Seen a, b;
  auto fa = Feed(*url, a);
  auto fb = Feed(*url, b, 200ms);
  ASSERT_TRUE(fa && fb);
  ASSERT_TRUE(b.WaitFor([&] { return b.ticks >= 1; }));
  // Kill every LISTEN connection on this database (what a failover or an idle-session killer
  // does); the feed notices, reconnects and ticks so its owner re-reads what it may have missed.
  auto db = PgDb::Open(*url);
  ASSERT_TRUE(db.ok());
  auto killed = (*db)->Exec("kill listeners",
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "datname = current_database() AND query LIKE 'LISTEN%'");
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_GE(killed->size(), 2);
  int ticks_before;
  {
    std::lock_guard lock(b.mu);
    ticks_before = b.ticks;
  }
  ASSERT_TRUE(b.WaitFor([&] { return b.ticks >= ticks_before + 2; }));
  // And hears changes again.
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    ASSERT_TRUE(fa->Publish("keys", std::to_string(i)).ok());
    heard = b.WaitFor([&] { return !b.changes.empty(); }, 200ms);
  }
  EXPECT_TRUE(heard);
}

}  // namespace
}  // namespace custody::store::testing
