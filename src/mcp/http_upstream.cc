#include "mcp/http_upstream.h"

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace custody::mcp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using HeaderList = std::vector<std::pair<std::string, std::string>>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kSweepEvery = std::chrono::milliseconds(100);
constexpr auto kDeleteTimeout = std::chrono::seconds(2);
constexpr auto kNotifyTimeout = std::chrono::seconds(10);
constexpr size_t kMaxIdleConnections = 8;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool HasControlOrSpace(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) return true;
  }
  return false;
}

struct Endpoint {
  bool tls = false;
  std::string host;  // without the brackets of an IPv6 literal
  uint16_t port = 0;
  std::string target = "/";
  bool ipv6 = false;
};

Result<Endpoint> ParseUrl(std::string_view url) {
  Endpoint ep;
  std::string scheme = Lower(url.substr(0, 8));
  if (scheme.starts_with("https://")) {
    ep.tls = true;
    url.remove_prefix(8);
  } else if (scheme.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return InvalidArgumentError("url must start with http:// or https://");
  }
  size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("url must not carry user info (put credentials in headers)");
  }
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("url has an unterminated IPv6 literal");
    }
    ep.host = std::string(authority.substr(1, close - 1));
    ep.ipv6 = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return InvalidArgumentError("url has junk after its IPv6 literal");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = authority.find(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (ep.host.empty() || HasControlOrSpace(ep.host)) {
    return InvalidArgumentError("url has no valid host");
  }
  if (has_port) {
    uint32_t p = 0;
    if (port.empty() || port.size() > 5) return InvalidArgumentError("url has an invalid port");
    for (char c : port) {
      if (c < '0' || c > '9') return InvalidArgumentError("url has an invalid port");
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) return InvalidArgumentError("url has an invalid port");
    ep.port = static_cast<uint16_t>(p);
  } else {
    ep.port = ep.tls ? 443 : 80;
  }
  rest = rest.substr(0, rest.find('#'));
  if (HasControlOrSpace(rest)) return InvalidArgumentError("url has spaces or control characters");
  if (rest.empty()) {
    ep.target = "/";
  } else if (rest[0] == '?') {
    ep.target = "/" + std::string(rest);
  } else {
    ep.target = std::string(rest);
  }
  return ep;
}

// Replaces ${VAR} with the environment variable VAR. Errors name the header and the variable,
// never the value.
Result<std::string> ExpandHeader(const std::string& header, const std::string& value) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t open = value.find("${", pos);
    if (open == std::string::npos) break;
    size_t close = value.find('}', open + 2);
    if (close == std::string::npos) {
      return InvalidArgumentError("header " + header + " has an unterminated ${");
    }
    std::string var = value.substr(open + 2, close - open - 2);
    const char* v = var.empty() ? nullptr : std::getenv(var.c_str());
    if (!v) {
      return InvalidArgumentError("header " + header + " uses ${" + var +
                                  "}, but the environment variable " + var + " is not set");
    }
    out.append(value, pos, open - pos).append(v);
    pos = close + 1;
  }
  out.append(value, pos);
  for (char c : out) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return InvalidArgumentError("header " + header + " has a line break in its value");
    }
  }
  return out;
}

// Response of one exchange. For an event stream the events went to the sink; body is empty.
struct Reply {
  int status = 0;
  bool sse = false;
  std::string session_id;
  std::string body;
};
// Gets each SSE event's data; returns false to stop reading.
using EventSink = std::function<bool(std::string_view data)>;

// Incremental text/event-stream parser (WHATWG event-stream interpretation; only data matters).
class SseParser {
 public:
  enum class Outcome { kMore, kStop, kTooLarge };
  explicit SseParser(size_t max) : max_(max) {}
  Outcome Feed(std::string_view bytes, const EventSink& sink) {
    pending_.append(bytes);
    size_t start = 0;
    Outcome outcome = Outcome::kMore;
    for (;;) {
      size_t nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (has_data_) {
          if (!data_.empty() && data_.back() == '\n') data_.pop_back();
          bool more = sink(data_);
          data_.clear();
          has_data_ = false;
          if (!more) {
            outcome = Outcome::kStop;
            break;
          }
        }
        continue;
      }
      if (line.starts_with("data")) {
        std::string_view value = line.substr(4);
        if (!value.empty() && value[0] != ':') continue;  // another field, e.g. "dataX"
        if (!value.empty()) value.remove_prefix(1);
        if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
        data_.append(value).append("\n");
        has_data_ = true;
        if (data_.size() > max_) return Outcome::kTooLarge;
      }
    }
    pending_.erase(0, start);
    if (pending_.size() > max_) return Outcome::kTooLarge;
    return outcome;
  }

 private:
  size_t max_;
  std::string pending_;
  std::string data_;
  bool has_data_ = false;
};

// One keep-alive HTTP/1.1 connection (plain or TLS). Not thread-safe: used on the io thread
// only, by one exchange at a time. Registers itself in `live` so Stop can abandon it.
class Conn {
 public:
  Conn(asio::any_io_executor ex, const Endpoint& ep, asio::ssl::context* ssl, std::set<Conn*>* live)
      : ex_(ex), ep_(ep), ssl_(ssl), live_(live), resolver_(ex) {
    live_->insert(this);
  }
  ~Conn() {
    live_->erase(this);
    Reset();
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Abandons whatever is in progress; the connection is not used again. Only the socket is
  // closed: the stream objects stay until the pending operation has completed (a TLS operation
  // still refers to its stream), and go with the exchange's own error path or the destructor.
  void Close() {
    dead_ = true;
    resolver_.cancel();
    error_code ignored;
    if (plain_) plain_->socket().close(ignored);
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
  }
  bool reusable() const { return !dead_ && open(); }

  uint64_t use = 0;  // serial of the request it carries (0: none), for Cancel

  // Sends one request and reads the answer: a JSON (or any non-SSE) body into Reply::body, or
  // an event stream into `sink` until it ends or the sink says stop. `timeout` bounds connect,
  // write, the response head and a non-SSE body. A kept-alive connection that the server had
  // closed is reopened once.
  asio::awaitable<Result<Reply>> Exchange(bhttp::verb verb, const HeaderList& headers,
                                          const std::string& body,
                                          std::chrono::milliseconds timeout, size_t max_bytes,
                                          const EventSink* sink) {
    for (int attempt = 0;; ++attempt) {
      if (dead_) co_return Abandoned();
      bool reused = open();
      if (!reused) {
        Status st = co_await Connect(timeout);
        if (!st.ok()) co_return st;
      }
      bool stale = false;
      std::optional<Result<Reply>> r;
      // (No co_await inside ?: — GCC 12 miscompiles that.)
      if (tls_) {
        r.emplace(co_await Run(*tls_, verb, headers, body, timeout, max_bytes, sink, &stale));
      } else {
        r.emplace(co_await Run(*plain_, verb, headers, body, timeout, max_bytes, sink, &stale));
      }
      if (r->ok() || !reused || !stale || attempt > 0 || dead_) co_return std::move(*r);
    }
  }

 private:
  bool open() const {
    return (plain_ && plain_->socket().is_open()) ||
           (tls_ && beast::get_lowest_layer(*tls_).socket().is_open());
  }
  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  std::string HostPort() const {
    return (ep_.ipv6 ? "[" + ep_.host + "]" : ep_.host) + ":" + std::to_string(ep_.port);
  }
  void Reset() {
    error_code ignored;
    if (plain_) plain_->socket().close(ignored);
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
    plain_.reset();
    tls_.reset();
    buffer_.clear();
  }
  Status Abandoned() {
    return UnavailableError("the exchange with " + HostPort() + " was abandoned");
  }
  Status IoError(std::string_view what, const error_code& ec) {
    Reset();
    return UnavailableError(
        std::string(what) + " " + HostPort() + ": " +
        (ec == beast::error::timeout ? std::string("timed out") : ec.message()));
  }

  asio::awaitable<Status> Connect(std::chrono::milliseconds timeout) {
    Reset();
    auto [rec, results] =
        co_await resolver_.async_resolve(ep_.host, std::to_string(ep_.port), kTuple);
    if (dead_) co_return Abandoned();
    if (rec) co_return IoError("cannot resolve", rec);
    if (ssl_) {
      tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex_, *ssl_);
      tls_->set_verify_callback(asio::ssl::host_name_verification(ep_.host));
      error_code ip_ec;
      asio::ip::make_address(ep_.host, ip_ec);
      if (ip_ec) SSL_set_tlsext_host_name(tls_->native_handle(), ep_.host.c_str());  // SNI
    } else {
      plain_ = std::make_unique<beast::tcp_stream>(ex_);
    }
    Lowest().expires_after(timeout);
    auto [cec, unused] = co_await Lowest().async_connect(results, kTuple);
    if (dead_) co_return Abandoned();
    if (cec) co_return IoError("cannot connect to", cec);
    error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (tls_) {
      auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kTuple);
      if (dead_) co_return Abandoned();
      if (hec) co_return IoError("TLS handshake failed with", hec);
    }
    co_return OkStatus();
  }

  template <class S>
  asio::awaitable<Result<Reply>> Run(S& stream, bhttp::verb verb, const HeaderList& headers,
                                     const std::string& body, std::chrono::milliseconds timeout,
                                     size_t max_bytes, const EventSink* sink, bool* stale) {
    bhttp::request<bhttp::string_body> req{verb, ep_.target, 11};
    req.set(bhttp::field::host, HostPort());
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    Lowest().expires_after(timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
    if (dead_) co_return Abandoned();
    if (wec) {
      *stale = true;
      co_return IoError("cannot send to", wec);
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer_, parser, kTuple);
    if (dead_) co_return Abandoned();
    if (hec) {
      *stale = hec == bhttp::error::end_of_stream || hec == asio::error::eof ||
               hec == asio::error::connection_reset || hec == asio::error::broken_pipe;
      co_return IoError("cannot read the answer from", hec);
    }
    Reply reply;
    auto& head = parser.get();
    reply.status = head.result_int();
    reply.session_id = std::string(head["mcp-session-id"]);
    reply.sse = Lower(head[bhttp::field::content_type]).starts_with("text/event-stream");
    if (reply.sse) Lowest().expires_never();  // an event stream lasts as long as it must
    SseParser sse(max_bytes);
    char chunk[16384];
    bool stopped = false;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      auto [ec, n] = co_await bhttp::async_read_some(stream, buffer_, parser, kTuple);
      if (dead_) co_return Abandoned();
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = sizeof(chunk) - parser.get().body().size;
      if (got && reply.sse && sink) {
        auto outcome = sse.Feed(std::string_view(chunk, got), *sink);
        if (dead_) co_return Abandoned();
        if (outcome == SseParser::Outcome::kTooLarge) {
          Reset();
          co_return UnavailableError("an event from " + HostPort() + " is too large");
        }
        if (outcome == SseParser::Outcome::kStop) {
          stopped = true;
          break;
        }
      } else if (got && !reply.sse) {
        if (reply.body.size() + got > max_bytes) {
          Reset();
          co_return UnavailableError("the answer from " + HostPort() + " is too large");
        }
        reply.body.append(chunk, got);
      }
      if (ec) {
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
        co_return IoError("cannot read the answer from", ec);
      }
    }
    if (reply.sse || stopped || !parser.is_done() || !parser.get().keep_alive()) Reset();
    co_return reply;
  }

  asio::any_io_executor ex_;
  const Endpoint& ep_;
  asio::ssl::context* ssl_;
  std::set<Conn*>* live_;
  tcp::resolver resolver_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  bool dead_ = false;
};

}  // namespace

struct HttpUpstream::Impl {
  struct Pending {
    json::object request;
    UpstreamCallback done;
    Clock::time_point deadline;
    bool sent = false;     // a POST carried it: cancelling must tell the server
    bool retried = false;  // the one retry after a 404 (session expired) was used
    uint64_t use = 0;      // serial of the connection use carrying it
  };

  Impl(UpstreamConfig c, UpstreamOptions o, Endpoint ep, HeaderList h)
      : config(std::move(c)),
        options(std::move(o)),
        endpoint(std::move(ep)),
        headers(std::move(h)),
        prefix("upstream " + config.name + " ") {
    if (endpoint.tls) {
      ssl.emplace(asio::ssl::context::tls_client);
      error_code ec;
      if (!config.ca_file.empty()) {
        ssl->load_verify_file(config.ca_file, ec);
      } else {
        ssl->set_default_verify_paths(ec);
      }
      if (ec) ssl_error = "cannot load the CA file " + config.ca_file + ": " + ec.message();
      ssl->set_verify_mode(asio::ssl::verify_peer);
    }
  }

  const UpstreamConfig config;
  const UpstreamOptions options;
  const Endpoint endpoint;
  const HeaderList headers;  // configured, ${VAR} expanded: credentials, never logged
  const std::string prefix;  // "upstream NAME "
  std::string ssl_error;     // set in the constructor only

  // Declared before every I/O object so that those are destroyed first.
  asio::io_context ioc;
  std::optional<asio::ssl::context> ssl;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;

  // Used on the io thread only.
  asio::steady_timer wake{ioc};    // the supervisor's: "initialize needed" and backoff
  asio::steady_timer listen{ioc};  // the GET stream's backoff
  asio::steady_timer sweep{ioc};   // deadlines
  std::set<Conn*> live;            // every connection, in use or idle
  std::vector<std::unique_ptr<Conn>> idle;
  uint64_t next_use = 1;
  uint64_t generation = 0;  // bumped by each completed handshake
  bool need_init = true;
  bool get_unsupported = false;  // the server answered the GET stream with 405
  std::string session_id;        // Mcp-Session-Id issued at initialize ("" if none)
  std::string version;           // negotiated protocol version

  std::mutex lifecycle_mu;  // serialises Start and Stop

  mutable std::mutex mu;
  bool started = false;                // guarded by mu
  bool stopping = false;               // guarded by mu
  bool stopped = false;                // guarded by mu: Stop() completed
  bool ready = false;                  // guarded by mu: a session is initialized
  int64_t next_id = 1;                 // guarded by mu
  int64_t handshakes = 0;              // guarded by mu
  std::string init_error;              // guarded by mu: why the last handshake failed
  std::map<int64_t, Pending> pending;  // guarded by mu: every request not yet answered
  std::deque<int64_t> waiting;         // guarded by mu: ids waiting for the handshake

  void Log(int level, const std::string& message) const {
    if (options.log) options.log(level, config.name, message);
  }
  bool Stopping() const {
    std::lock_guard lock(mu);
    return stopping;
  }

  template <class A>
  void Spawn(A&& awaitable) {
    asio::co_spawn(ioc, std::forward<A>(awaitable), [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        Log(3, std::string("internal error: ") + ex.what());
      } catch (...) {
        Log(3, "internal error");
      }
    });
  }

  HeaderList Headers(bool with_session, bool post) const {
    HeaderList h = headers;
    if (post) {
      h.emplace_back("Content-Type", "application/json");
      h.emplace_back("Accept", "application/json, text/event-stream");
    } else {
      h.emplace_back("Accept", "text/event-stream");
    }
    if (with_session) {
      if (!version.empty()) h.emplace_back("MCP-Protocol-Version", version);
      if (!session_id.empty()) h.emplace_back("Mcp-Session-Id", session_id);
    }
    return h;
  }

  std::unique_ptr<Conn> Acquire(uint64_t use) {
    std::unique_ptr<Conn> c;
    if (!idle.empty()) {
      c = std::move(idle.back());
      idle.pop_back();
    } else {
      c = std::make_unique<Conn>(ioc.get_executor(), endpoint, ssl ? &*ssl : nullptr, &live);
    }
    c->use = use;
    return c;
  }
  void Release(std::unique_ptr<Conn> c, bool keep) {
    c->use = 0;
    if (keep && c->reusable() && idle.size() < kMaxIdleConnections && !Stopping()) {
      idle.push_back(std::move(c));
    }
  }
  void CloseUse(uint64_t use) {
    if (use == 0) return;
    for (Conn* c : live) {
      if (c->use == use) c->Close();
    }
  }

  // Runs the callback of `id` (once) unless it already ran.
  bool Finish(int64_t id, Result<json::object> r) {
    UpstreamCallback done;
    {
      std::lock_guard lock(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return false;
      done = std::move(it->second.done);
      pending.erase(it);
      std::erase(waiting, id);
    }
    done(std::move(r));
    return true;
  }

  void FailAll(const std::string& why) {
    std::vector<UpstreamCallback> failed;
    {
      std::lock_guard lock(mu);
      for (auto& [id, p] : pending) failed.push_back(std::move(p.done));
      pending.clear();
      waiting.clear();
    }
    for (auto& d : failed) d(UnavailableError(why));
  }

  // A JSON-RPC message from the server (an SSE event's data or a JSON body). Returns true when
  // it is the response to `want` (then moved into `answer`).
  bool Dispatch(std::string_view data, int64_t want, std::optional<json::object>* answer) {
    error_code ec;
    json::value v = json::parse(data, ec);
    if (ec || !v.is_object()) {
      Log(2, "ignored a message that is not a JSON-RPC object");
      return false;
    }
    json::object& o = v.get_object();
    auto idit = o.find("id");
    auto mit = o.find("method");
    if (mit != o.end()) {
      if (idit != o.end()) {  // a request from the server
        std::string_view method =
            mit->value().is_string() ? std::string_view(mit->value().get_string()) : "";
        Spawn(
            SendMessage(AnswerServerRequest(idit->value(), method), "a reply to a server request"));
      } else if (options.on_notification) {
        options.on_notification(o);
      }
      return false;
    }
    if (want == 0 || idit == o.end() || !idit->value().is_int64() ||
        idit->value().get_int64() != want) {
      return false;
    }
    o.erase("id");
    o.erase("jsonrpc");
    if (answer) answer->emplace(std::move(o));
    return true;
  }

  // A notification or a reply to a server request: POST, expect 202.
  asio::awaitable<void> SendMessage(std::string body, std::string what) {
    if (Stopping()) co_return;
    auto conn = Acquire(0);
    auto r = co_await conn->Exchange(bhttp::verb::post, Headers(true, true), body, kNotifyTimeout,
                                     options.max_line_bytes, nullptr);
    if (!r.ok()) {
      if (!Stopping()) Log(2, "cannot send " + what + ": " + r.status().message());
    } else if (r->status < 200 || r->status >= 300) {
      Log(2, what + " answered HTTP " + std::to_string(r->status));
    }
    Release(std::move(conn), r.ok());
  }

  void SendCancelled(int64_t id, const std::string& reason) {
    json::object n{{"jsonrpc", "2.0"},
                   {"method", "notifications/cancelled"},
                   {"params", json::object{{"requestId", id}, {"reason", reason}}}};
    Spawn(SendMessage(json::serialize(n), "notifications/cancelled"));
  }

  // Only from the io thread: the current session is gone (or the server is); initialize again.
  void RequestReinit(uint64_t gen, const std::string& why) {
    if (gen != generation || need_init || Stopping()) return;
    need_init = true;
    {
      std::lock_guard lock(mu);
      ready = false;
    }
    Log(2, why + "; initializing again");
    wake.cancel();
  }

  void Launch(int64_t id) {
    {
      std::lock_guard lock(mu);
      if (!pending.count(id) || stopping) return;
      if (!ready) {
        waiting.push_back(id);
        return;
      }
    }
    Spawn(Post(id));
  }

  asio::awaitable<void> Post(int64_t id) {
    std::string body;
    uint64_t use = next_use++;
    {
      std::lock_guard lock(mu);
      auto it = pending.find(id);
      if (it == pending.end() || stopping) co_return;
      it->second.sent = true;
      it->second.use = use;
      body = json::serialize(it->second.request);
    }
    uint64_t gen = generation;
    bool had_session = !session_id.empty();
    auto conn = Acquire(use);
    std::optional<json::object> answer;
    EventSink sink = [&](std::string_view data) { return !Dispatch(data, id, &answer); };
    auto r = co_await conn->Exchange(bhttp::verb::post, Headers(true, true), body,
                                     options.request_timeout + std::chrono::seconds(1),
                                     options.max_line_bytes, &sink);
    bool still;
    {
      std::lock_guard lock(mu);
      still = pending.count(id) > 0;
    }
    if (!still) {  // cancelled, timed out or shut down meanwhile: that closed the connection
      Release(std::move(conn), false);
      co_return;
    }
    if (!r.ok()) {
      Release(std::move(conn), false);
      Finish(id, UnavailableError(prefix + "is unreachable: " + r.status().message()));
      RequestReinit(gen, prefix + "is unreachable");
      co_return;
    }
    if (!r->sse && !answer && !r->body.empty() && r->status >= 200 && r->status < 300) {
      Dispatch(r->body, id, &answer);
    }
    Release(std::move(conn), true);
    if (r->status == 404 && had_session) {
      bool retry = false;
      {
        std::lock_guard lock(mu);
        auto it = pending.find(id);
        if (it != pending.end() && !it->second.retried) {
          it->second.retried = true;
          it->second.sent = false;
          it->second.use = 0;
          retry = true;
        }
      }
      if (retry) {
        if (gen == generation && !need_init) {
          RequestReinit(gen, prefix + "answered HTTP 404: the session expired");
        }
        Launch(id);  // waits for the new session (or goes now if it already exists)
        co_return;
      }
      Finish(id, UnavailableError(prefix + "answered HTTP 404 again after a new session"));
      co_return;
    }
    if (r->status < 200 || r->status >= 300) {
      Finish(id, UnavailableError(prefix + "answered HTTP " + std::to_string(r->status)));
      co_return;
    }
    if (answer) {
      Finish(id, std::move(*answer));
    } else {
      Finish(id, UnavailableError(prefix + "ended its answer without a response to the request"));
    }
  }

  // POST initialize, then notifications/initialized. On success session_id and version hold
  // the new session.
  asio::awaitable<Status> Initialize() {
    if (!ssl_error.empty()) co_return InvalidArgumentError(ssl_error);
    int64_t init_id;
    {
      std::lock_guard lock(mu);
      init_id = next_id++;
    }
    const std::string init = InitializeRequest(init_id, options.protocol_version);
    session_id.clear();
    version.clear();
    auto conn = Acquire(0);
    std::optional<json::object> answer;
    EventSink sink = [&](std::string_view data) { return !Dispatch(data, init_id, &answer); };
    auto r = co_await conn->Exchange(bhttp::verb::post, Headers(false, true), init,
                                     options.request_timeout, options.max_line_bytes, &sink);
    if (!r.ok()) {
      Release(std::move(conn), false);
      co_return r.status();
    }
    Release(std::move(conn), true);
    if (r->status < 200 || r->status >= 300) {
      co_return UnavailableError("initialize answered HTTP " + std::to_string(r->status));
    }
    if (!r->sse && !answer) Dispatch(r->body, init_id, &answer);
    if (!answer) co_return UnavailableError("no answer to initialize");
    if (auto* err = answer->if_contains("error")) {
      std::string code = "?";
      if (err->is_object() && err->as_object().contains("code")) {
        code = json::serialize(err->as_object().at("code"));
      }
      co_return UnavailableError("initialize refused (JSON-RPC error " + code + ")");
    }
    const json::value* result = answer->if_contains("result");
    const json::value* pv = result && result->is_object()
                                ? result->as_object().if_contains("protocolVersion")
                                : nullptr;
    if (!pv || !pv->is_string() || pv->get_string().empty()) {
      co_return UnavailableError("initialize answered without a protocolVersion");
    }
    std::string_view offered = pv->get_string();
    if (offered != options.protocol_version && offered != "2025-11-25" && offered != "2025-06-18" &&
        offered != "2025-03-26") {
      co_return UnavailableError("initialize answered with an unsupported protocolVersion");
    }
    std::string new_session = r->session_id;
    if (HasControlOrSpace(new_session) ||
        std::any_of(new_session.begin(), new_session.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
      co_return UnavailableError("initialize answered with an invalid Mcp-Session-Id");
    }
    session_id = new_session;
    version = std::string(pv->get_string());
    auto conn2 = Acquire(0);
    auto n = co_await conn2->Exchange(bhttp::verb::post, Headers(true, true),
                                      R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                                      options.request_timeout, options.max_line_bytes, nullptr);
    Release(std::move(conn2), n.ok());
    if (!n.ok()) co_return n.status();
    if (n->status < 200 || n->status >= 300) {
      co_return UnavailableError("notifications/initialized answered HTTP " +
                                 std::to_string(n->status));
    }
    co_return OkStatus();
  }

  asio::awaitable<void> Supervise() {
    auto backoff = options.min_backoff;
    for (;;) {
      if (Stopping()) co_return;
      if (!need_init) {
        wake.expires_at(Clock::time_point::max());
        co_await wake.async_wait(kTuple);
        continue;
      }
      Status st = co_await Initialize();
      if (Stopping()) co_return;
      if (st.ok()) {
        need_init = false;
        backoff = options.min_backoff;
        ++generation;
        std::deque<int64_t> launch;
        {
          std::lock_guard lock(mu);
          ready = true;
          ++handshakes;
          init_error.clear();
          launch.swap(waiting);
        }
        Log(1, "initialized: protocol " + version +
                   (session_id.empty() ? ", no session id" : ", session id issued"));
        for (int64_t id : launch) Spawn(Post(id));
        if (!get_unsupported) Spawn(Listen(generation));
        continue;
      }
      {
        std::lock_guard lock(mu);
        init_error = st.message();
      }
      // (The URL is not logged: a path or query may carry a credential.)
      Log(2, "cannot initialize: " + st.message() + "; retrying in " +
                 std::to_string(backoff.count()) + " ms");
      wake.expires_after(backoff);
      co_await wake.async_wait(kTuple);
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }

  // The GET stream: server-initiated notifications and requests. Ends for good on 405; when the
  // server is unreachable or no longer knows the session, asks for a new handshake.
  asio::awaitable<void> Listen(uint64_t gen) {
    auto backoff = options.min_backoff;
    for (;;) {
      if (Stopping() || gen != generation) co_return;
      auto conn = Acquire(0);
      auto opened = Clock::now();
      EventSink sink = [this](std::string_view data) {
        Dispatch(data, 0, nullptr);
        return true;
      };
      auto r = co_await conn->Exchange(bhttp::verb::get, Headers(true, false), "",
                                       std::chrono::seconds(30), options.max_line_bytes, &sink);
      Release(std::move(conn), false);
      if (Stopping() || gen != generation) co_return;
      if (!r.ok()) {
        RequestReinit(gen, prefix + "is unreachable (" + r.status().message() + ")");
        co_return;
      }
      if (r->status == 405 || (r->status >= 200 && r->status < 300 && !r->sse)) {
        get_unsupported = true;
        Log(0, "offers no server-to-client stream (GET answered HTTP " + std::to_string(r->status) +
                   ")");
        co_return;
      }
      if (r->status == 404 || r->status == 400) {
        RequestReinit(gen, prefix + "no longer knows the session (GET answered HTTP " +
                               std::to_string(r->status) + ")");
        co_return;
      }
      if (r->status >= 200 && r->status < 300) {
        // A stream that ended after a while is reopened soon; one that keeps ending at once
        // backs off.
        if (Clock::now() - opened > std::chrono::seconds(10)) backoff = options.min_backoff;
      } else {
        Log(2, "GET stream answered HTTP " + std::to_string(r->status));
      }
      listen.expires_after(backoff);
      co_await listen.async_wait(kTuple);
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }

  asio::awaitable<void> Sweep() {
    for (;;) {
      if (Stopping()) co_return;
      sweep.expires_after(kSweepEvery);
      co_await sweep.async_wait(kTuple);
      if (Stopping()) co_return;
      std::vector<std::pair<int64_t, Pending>> expired;
      auto now = Clock::now();
      std::string not_ready;
      {
        std::lock_guard lock(mu);
        if (!ready && !init_error.empty()) not_ready = " (not initialized: " + init_error + ")";
        for (auto it = pending.begin(); it != pending.end();) {
          if (it->second.deadline > now) {
            ++it;
            continue;
          }
          std::erase(waiting, it->first);
          expired.emplace_back(it->first, std::move(it->second));
          it = pending.erase(it);
        }
      }
      for (auto& [id, p] : expired) {
        if (p.sent) {
          CloseUse(p.use);
          SendCancelled(id, "timed out at the Custody gateway");
        }
        p.done(UnavailableError(prefix + "did not answer in time" + (p.sent ? "" : not_ready)));
      }
    }
  }

  asio::awaitable<void> DeleteSession(std::string sid) {
    HeaderList h = headers;
    if (!version.empty()) h.emplace_back("MCP-Protocol-Version", version);
    h.emplace_back("Mcp-Session-Id", sid);
    Conn conn(ioc.get_executor(), endpoint, ssl ? &*ssl : nullptr, &live);
    auto r =
        co_await conn.Exchange(bhttp::verb::delete_, h, "", kDeleteTimeout, 64 * 1024, nullptr);
    if (!r.ok()) {
      Log(1, "could not end the session: " + r.status().message());
    } else if (r->status >= 300 && r->status != 405) {
      Log(1, "ending the session answered HTTP " + std::to_string(r->status));
    }
  }

  // On the io thread, once: everything in flight fails, every connection is abandoned, every
  // timer is cancelled, so each coroutine ends and run() returns.
  void ShutDown() {
    FailAll("the gateway is shutting down");
    wake.cancel();
    listen.cancel();
    sweep.cancel();
    for (Conn* c : live) c->Close();
    idle.clear();
    {
      std::lock_guard lock(mu);
      ready = false;
    }
    if (!session_id.empty() && !need_init) Spawn(DeleteSession(session_id));
    session_id.clear();
    work.reset();
  }
};

Result<std::unique_ptr<HttpUpstream>> HttpUpstream::Create(UpstreamConfig config,
                                                           UpstreamOptions options) {
  auto ep = ParseUrl(config.url);
  if (!ep.ok()) {
    return InvalidArgumentError("MCP server \"" + config.name + "\": " + ep.status().message());
  }
  static const std::set<std::string> kReserved = {
      "host",   "content-type",   "content-length",       "transfer-encoding", "connection",
      "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"};
  HeaderList headers;
  for (const auto& [k, v] : config.headers) {
    if (k.empty() || HasControlOrSpace(k) || k.find(':') != std::string::npos) {
      return InvalidArgumentError("MCP server \"" + config.name + "\": invalid header name");
    }
    if (kReserved.count(Lower(k))) {
      return InvalidArgumentError("MCP server \"" + config.name + "\": header " + k +
                                  " is set by the transport and cannot be configured");
    }
    auto value = ExpandHeader(k, v);
    if (!value.ok()) {
      return InvalidArgumentError("MCP server \"" + config.name +
                                  "\": " + value.status().message());
    }
    headers.emplace_back(k, std::move(*value));
  }
  return std::unique_ptr<HttpUpstream>(new HttpUpstream(std::make_unique<Impl>(
      std::move(config), std::move(options), std::move(*ep), std::move(headers))));
}

HttpUpstream::HttpUpstream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpUpstream::~HttpUpstream() { Stop(); }

void HttpUpstream::Start() {
  Impl& m = *impl_;
  std::lock_guard lifecycle(m.lifecycle_mu);
  {
    std::lock_guard lock(m.mu);
    if (m.started || m.stopping) return;
    m.started = true;
  }
  m.work.emplace(m.ioc.get_executor());
  m.Spawn(m.Supervise());
  m.Spawn(m.Sweep());
  m.thread = std::thread([&m] { m.ioc.run(); });
}

void HttpUpstream::Stop() {
  Impl& m = *impl_;
  std::lock_guard lifecycle(m.lifecycle_mu);
  bool started;
  {
    std::lock_guard lock(m.mu);
    if (m.stopped) return;
    m.stopping = true;
    started = m.started;
  }
  if (started) {
    asio::post(m.ioc, [&m] { m.ShutDown(); });
    if (m.thread.joinable()) m.thread.join();
  } else {
    m.FailAll("the gateway is shutting down");
  }
  std::lock_guard lock(m.mu);
  m.stopped = true;
}

int64_t HttpUpstream::Call(const std::string& method, json::value params, UpstreamCallback done) {
  Impl& m = *impl_;
  std::unique_lock lk(m.mu);
  if (m.stopping) {
    lk.unlock();
    done(UnavailableError("the gateway is shutting down"));
    return 0;
  }
  if (!m.ready && m.waiting.size() >= m.options.max_waiting) {
    lk.unlock();
    done(UnavailableError(m.prefix + "is not ready and too many requests are waiting"));
    return 0;
  }
  int64_t id = m.next_id++;
  json::object req{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = std::move(params);
  m.pending[id] =
      Impl::Pending{std::move(req), std::move(done), Clock::now() + m.options.request_timeout};
  bool now = m.ready && m.started;
  if (!now) m.waiting.push_back(id);
  lk.unlock();
  if (now) asio::post(m.ioc, [&m, id] { m.Launch(id); });
  return id;
}

void HttpUpstream::Cancel(int64_t id, const std::string& reason) {
  Impl& m = *impl_;
  Impl::Pending p;
  {
    std::lock_guard lock(m.mu);
    auto it = m.pending.find(id);
    if (it == m.pending.end()) return;
    p = std::move(it->second);
    m.pending.erase(it);
    std::erase(m.waiting, id);
    if (p.sent && !m.stopping) {
      asio::post(m.ioc, [&m, id, reason, use = p.use] {
        m.CloseUse(use);
        m.SendCancelled(id, reason);
      });
    }
  }
  p.done(UnavailableError("cancelled: " + reason));
}

void HttpUpstream::Notify(const std::string& method, json::value params) {
  Impl& m = *impl_;
  json::object n{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) n["params"] = std::move(params);
  std::lock_guard lock(m.mu);
  if (!m.ready || m.stopping) return;
  asio::post(m.ioc,
             [&m, body = json::serialize(n), method] { m.Spawn(m.SendMessage(body, method)); });
}

const std::string& HttpUpstream::name() const { return impl_->config.name; }

bool HttpUpstream::ready() const {
  std::lock_guard lock(impl_->mu);
  return impl_->ready;
}

int64_t HttpUpstream::handshakes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->handshakes;
}

}  // namespace custody::mcp
