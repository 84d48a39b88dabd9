// GET /v1/ledger/stream?from=N: the ledger as server-sent events, one "entry" event per entry
// from index N on ({"index":N,"event":<the entry's JSON>}, SSE id N), then each new entry as the
// ledger grows. One thread polls the ledger's size (every `poll`, and only while a stream is
// open), which also sees entries other nodes appended to a shared store.
//
// Bounds: at most `max_streams` open streams (503 beyond), at most `max_per_tick` entries sent to
// one stream per poll (a backlog is sent over several polls, so one reader from 0 does not hold
// up the others), and a stream whose peer has gone is dropped at the next poll.
//
// Thread-safe. The ledger must outlive the streamer; Stop() before closing the ledger.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "http/http.h"
#include "ledger/ledger.h"

namespace custody::api {

struct LedgerStreamOptions {
  std::chrono::milliseconds poll{250};
  size_t max_streams = 64;
  size_t max_per_tick = 2000;
  std::chrono::seconds keepalive{15};  // a comment line when nothing was sent for this long
};

class LedgerStreamer {
 public:
  LedgerStreamer(ledger::Ledger& ledger, LedgerStreamOptions options = {});
  ~LedgerStreamer();  // Stop()
  LedgerStreamer(const LedgerStreamer&) = delete;
  LedgerStreamer& operator=(const LedgerStreamer&) = delete;

  Status AddRoute(http::Router& router, const http::AuthRequirement& read_auth);
  // Closes every stream and stops the thread. Idempotent.
  void Stop();
  size_t open_streams() const;

 private:
  struct Stream;
  void Run();
  void Handle(http::Request& req, http::Responder respond);

  ledger::Ledger& ledger_;
  const LedgerStreamOptions options_;
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<std::shared_ptr<Stream>> streams_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started in the constructor, joined by Stop()
};

}  // namespace custody::api
