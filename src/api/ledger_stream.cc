#include "api/ledger_stream.h"

#include <charconv>

namespace custody::api {

struct LedgerStreamer::Stream {
  std::shared_ptr<http::SseWriter> writer;
  uint64_t next = 0;  // touched only by the streamer's thread once added
  std::chrono::steady_clock::time_point last_sent;
};

LedgerStreamer::LedgerStreamer(ledger::Ledger& ledger, LedgerStreamOptions options)
    : ledger_(ledger), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

LedgerStreamer::~LedgerStreamer() { Stop(); }

void LedgerStreamer::Stop() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    MutexLock lock(mu_);
    if (stop_) return;
    stop_ = true;
    streams.swap(streams_);
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  for (auto& s : streams) s->writer->Close();
}

size_t LedgerStreamer::open_streams() const {
  MutexLock lock(mu_);
  return streams_.size();
}

void LedgerStreamer::Run() {
  for (;;) {
    std::vector<std::shared_ptr<Stream>> streams;
    {
      MutexLock lock(mu_);
      // Idle (no stream open): sleep until one opens rather than polling for nobody.
      cv_.Wait(mu_, [this]() REQUIRES(mu_) { return stop_ || !streams_.empty(); });
      if (stop_) return;
      std::erase_if(streams_, [](const auto& s) { return s->writer->closed(); });
      streams = streams_;
    }
    uint64_t size = ledger_.Size();
    auto now = std::chrono::steady_clock::now();
    for (auto& s : streams) {
      if (s->next < size) {
        size_t budget = options_.max_per_tick;
        uint64_t end = std::min<uint64_t>(size, s->next + budget);
        Status st = ledger_.store().ScanLeaves(s->next, [&](const store::StoredLeaf& leaf) {
          if (s->next >= end) return false;
          std::string data =
              "{\"index\":" + std::to_string(s->next) + ",\"event\":" + leaf.data + "}";
          if (!s->writer->Send("entry", data, std::to_string(s->next))) return false;
          ++s->next;
          return s->next < end;
        });
        if (!st.ok()) {
          // The store could not be read: say so on the stream and end it; the client reconnects
          // from the last id it saw.
          s->writer->Send("error", "{\"error\":\"the ledger could not be read\"}");
          s->writer->Close();
        }
        s->last_sent = now;
      } else if (now - s->last_sent >= options_.keepalive) {
        s->writer->Comment("keep-alive");
        s->last_sent = now;
      }
    }
    MutexLock lock(mu_);
    cv_.WaitFor(mu_, options_.poll, [this]() REQUIRES(mu_) { return stop_; });
    if (stop_) return;
  }
}

void LedgerStreamer::Handle(http::Request& req, http::Responder respond) {
  uint64_t from = 0;
  if (auto f = req.QueryParam("from")) {
    const std::string& t = *f;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), from);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() ||
        (t.size() > 1 && t[0] == '0')) {
      return respond(http::ErrorResponse(
          InvalidArgumentError("from must be a non-negative decimal integer"), req.request_id));
    }
  }
  {
    MutexLock lock(mu_);
    if (stop_) {
      return respond(
          http::ErrorResponse(UnavailableError("the server is stopping"), req.request_id));
    }
    std::erase_if(streams_, [](const auto& s) { return s->writer->closed(); });
    if (streams_.size() >= options_.max_streams) {
      return respond(http::ErrorResponse(
          UnavailableError("too many ledger streams open (" + std::to_string(options_.max_streams) +
                           "); try again later"),
          req.request_id));
    }
  }
  http::Response r;
  r.headers.Set("x-accel-buffering", "no");
  r.sse = [this, from](std::shared_ptr<http::SseWriter> writer) {
    auto s = std::make_shared<Stream>();
    s->writer = std::move(writer);
    s->next = from;
    s->last_sent = std::chrono::steady_clock::now();
    {
      MutexLock lock(mu_);
      if (stop_) {
        s->writer->Close();
        return;
      }
      streams_.push_back(s);
    }
    cv_.NotifyAll();
  };
  respond(std::move(r));
}

Status LedgerStreamer::AddRoute(http::Router& router, const http::AuthRequirement& read_auth) {
  return router.Add(
      {"GET", "/v1/ledger/stream",
       [this](http::Request& req, http::Responder respond) { Handle(req, std::move(respond)); },
       read_auth, ""});
}

}  // namespace custody::api
