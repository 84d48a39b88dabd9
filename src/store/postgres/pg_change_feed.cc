#include "store/postgres/pg_change_feed.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <array>

#include "common/encoding.h"
#include "common/random.h"

namespace custody::store {
namespace {

// One channel for every topic: a message is "<node> <topic> <payload>".
constexpr const char* kChannel = "custody_changes";
constexpr const char* kWhat = "change feed";

}  // namespace

Result<std::unique_ptr<PgChangeFeed>> PgChangeFeed::Open(const std::string& url, Options options) {
  PgOptions po;
  po.pool_size = 1;
  po.what = kWhat;
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, po));
  std::array<uint8_t, 8> id{};
  SystemRandom().Fill(id);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return UnavailableError("change feed: cannot make a pipe");
  }
  return std::unique_ptr<PgChangeFeed>(new PgChangeFeed(
      url, options, std::move(db), HexEncode(std::span<const uint8_t>(id)), fds[0], fds[1]));
}

PgChangeFeed::PgChangeFeed(std::string url, Options options, std::unique_ptr<PgDb> db,
                           std::string node, int wake_read, int wake_write)
    : url_(std::move(url)),
      options_(options),
      db_(std::move(db)),
      node_(std::move(node)),
      wake_read_(wake_read),
      wake_write_(wake_write) {}

PgChangeFeed::~PgChangeFeed() {
  Stop();
  ::close(wake_read_);
  ::close(wake_write_);
}

Status PgChangeFeed::Publish(const std::string& topic, const std::string& payload) {
  if (topic.empty() || topic.find(' ') != std::string::npos) {
    return InvalidArgumentError("change feed: a topic is one word");
  }
  if (payload.size() > kMaxPayload) {
    return InvalidArgumentError("change feed: payload of " + std::to_string(payload.size()) +
                                " bytes is over " + std::to_string(kMaxPayload));
  }
  return db_
      ->Exec("notify", "SELECT pg_notify($1, $2)",
             {PgText(kChannel), PgText(node_ + " " + topic + " " + payload)})
      .status();
}

void PgChangeFeed::Start(Handler on_change, std::function<void()> on_tick) {
  on_change_ = std::move(on_change);
  on_tick_ = std::move(on_tick);
  thread_ = std::thread([this] { Run(); });
}

void PgChangeFeed::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  char b = 1;
  (void)!::write(wake_write_, &b, 1);  // a full pipe already wakes the thread
  thread_.join();
}

void PgChangeFeed::Run() {
  using Clock = std::chrono::steady_clock;
  PGconn* conn = nullptr;
  auto next_tick = Clock::now() + options_.poll_interval;
  while (!stop_) {
    if (conn == nullptr) {
      auto c = PgConnect(url_, db_->where(), kWhat, std::chrono::seconds(5));
      if (c.ok()) {
        PGresult* r = PQexec(*c, (std::string("LISTEN ") + kChannel).c_str());
        const bool listening = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (listening) {
          conn = *c;
          on_tick_();  // anything announced while not listening was missed: re-read now
          next_tick = Clock::now() + options_.poll_interval;
        } else {
          PQfinish(*c);
        }
      }
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - Clock::now());
    pollfd fds[2] = {{wake_read_, POLLIN, 0}, {conn ? PQsocket(conn) : -1, POLLIN, 0}};
    (void)::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (stop_) break;
    if (conn != nullptr && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);  // reconnected on the next turn (at once), then on_tick catches up
        conn = nullptr;
        continue;
      }
      while (PGnotify* n = PQnotifies(conn)) {
        std::string_view msg(n->extra);
        size_t a = msg.find(' ');
        size_t b = a == std::string_view::npos ? a : msg.find(' ', a + 1);
        if (b != std::string_view::npos && msg.substr(0, a) != node_) {
          on_change_(std::string(msg.substr(a + 1, b - a - 1)), std::string(msg.substr(b + 1)));
        }
        PQfreemem(n);
      }
    }
    if (Clock::now() >= next_tick) {
      on_tick_();
      next_tick = Clock::now() + options_.poll_interval;
    }
  }
  if (conn != nullptr) PQfinish(conn);
}

}  // namespace custody::store
