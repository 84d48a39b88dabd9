// PgChangeFeed: ChangeFeed over PostgreSQL LISTEN/NOTIFY on one channel of the shared database.
// One dedicated connection LISTENs (not from the pool: it stays open); Publish is a pg_notify
// through a small pool. A node's own notifications are recognised by a random node id in each
// message and not delivered back to it. When the connection drops, the feed reconnects at the
// poll interval and calls on_tick after reconnecting, since notifications sent meanwhile are lost.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "store/change_feed.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

class PgChangeFeed final : public ChangeFeed {
 public:
  struct Options {
    // How often on_tick runs: the bound on how long a lost notification can go unnoticed.
    std::chrono::milliseconds poll_interval{1000};
  };
  static Result<std::unique_ptr<PgChangeFeed>> Open(const std::string& url, Options options);
  ~PgChangeFeed() override;

  Status Publish(const std::string& topic, const std::string& payload) override;
  void Start(Handler on_change, std::function<void()> on_tick) override;
  void Stop() override;

  const std::string& node_id() const { return node_; }

 private:
  PgChangeFeed(std::string url, Options options, std::unique_ptr<PgDb> db, std::string node,
               int wake_read, int wake_write);
  void Run();

  const std::string url_;
  const Options options_;
  std::unique_ptr<PgDb> db_;          // for NOTIFY
  const std::string node_;            // random; this node's notifications carry it
  const int wake_read_, wake_write_;  // a pipe: Stop wakes the thread's poll()
  Handler on_change_;
  std::function<void()> on_tick_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace custody::store
