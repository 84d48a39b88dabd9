#include "mcp/http_upstream.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "common/json_parse.h"
#include "common/mutex.h"
#include "http/client.h"
#include "mcp/upstream_era.h"

namespace custody::mcp {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
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

}  // namespace

struct HttpUpstream::Impl {
  struct Pending {
    json::object request;
    UpstreamCallback done;
    Clock::time_point deadline;
    bool sent = false;     // a POST carried it: cancelling must tell the server
    bool retried = false;  // the one retry after a 404 (session expired) was used
    uint64_t use = 0;      // serial of the connection use carrying it
    // The Txn-Token of each POST of it, minted for that POST (RequestExtras).
    TxnTokenSource txn_token;
  };

  Impl(UpstreamConfig c, UpstreamOptions o, Endpoint ep, HeaderList h)
      : config(std::move(c)),
        options(std::move(o)),
        endpoint(std::move(ep)),
        headers(std::move(h)),
        prefix("upstream " + config.name + " ") {}

  const UpstreamConfig config;
  const UpstreamOptions options;
  const Endpoint endpoint;
  const HeaderList headers;  // configured, ${VAR} expanded: credentials, never logged
  const std::string prefix;  // "upstream NAME "

  // Declared before every I/O object so that those are destroyed first.
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;

  // Used on the io thread only.
  asio::steady_timer wake{ioc};                // the supervisor's: "initialize needed" and backoff
  asio::steady_timer listen{ioc};              // the GET stream's backoff
  asio::steady_timer sweep{ioc};               // deadlines
  std::map<http::HttpClient*, uint64_t> busy;  // each connection in use: serial of its use
  std::vector<std::unique_ptr<http::HttpClient>> idle;
  uint64_t next_use = 1;
  uint64_t generation = 0;  // bumped by each completed handshake
  bool need_init = true;
  bool get_unsupported = false;  // the server answered the GET stream with 405
  std::string session_id;        // Mcp-Session-Id issued at initialize ("" if none)
  std::string version;           // negotiated protocol version
  uint64_t listen_use = 0;       // the modern listen stream's connection use (0: none open)
  bool relisten = false;         // the listen stream was closed to open it with a new filter

  // 2026-07-28 (upstream_era.h): whether server/discover said so at the last handshake.
  ModernEra era{options};
  std::atomic<bool> modern{false};

  Mutex lifecycle_mu;  // serialises Start and Stop

  mutable Mutex mu ACQUIRED_AFTER(lifecycle_mu);
  bool started GUARDED_BY(mu) = false;
  bool stopping GUARDED_BY(mu) = false;
  bool stopped GUARDED_BY(mu) = false;  // Stop() completed
  bool ready GUARDED_BY(mu) = false;    // a session is initialized
  int64_t next_id GUARDED_BY(mu) = 1;
  int64_t handshakes GUARDED_BY(mu) = 0;
  std::string init_error GUARDED_BY(mu);                           // why the last handshake failed
  std::set<std::string, std::less<>> capabilities GUARDED_BY(mu);  // the server's, declared
  std::map<int64_t, Pending> pending GUARDED_BY(mu);               // every request not yet answered
  std::deque<int64_t> waiting GUARDED_BY(mu);                      // ids waiting for the handshake

  void Log(LogLevel level, const std::string& message) const {
    LogUpstream(options, level, config.name, message);
  }
  bool Stopping() const {
    MutexLock lock(mu);
    return stopping;
  }

  template <class A>
  void Spawn(A&& awaitable) {
    asio::co_spawn(ioc, std::forward<A>(awaitable), [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        Log(LogLevel::kError, std::string("internal error: ") + ex.what());
      } catch (...) {
        Log(LogLevel::kError, "internal error");
      }
    });
  }

  // A request to the server's URL with the configured headers. A POST carries a JSON-RPC
  // message; `timeout` bounds connect, send, the response head and a JSON answer.
  // A modern upstream gets the revision's headers instead of a session: the version, and for
  // `message` (the JSON-RPC request in `body`) Mcp-Method and Mcp-Name.
  http::ClientRequest Request(std::string method, bool with_session, std::string body,
                              std::chrono::milliseconds timeout,
                              const json::object* message = nullptr) const {
    http::ClientRequest r;
    r.method = std::move(method);
    r.target = endpoint.target;
    for (const auto& [k, v] : headers) r.headers.Add(k, v);
    if (r.method == "POST") {
      r.headers.Add("Content-Type", "application/json");
      r.headers.Add("Accept", "application/json, text/event-stream");
    } else if (r.method == "GET") {
      r.headers.Add("Accept", "text/event-stream");
    }
    if (with_session && modern) {
      r.headers.Add("MCP-Protocol-Version", std::string(kModernProtocol));
      if (message) {
        if (const json::value* m = message->if_contains("method"); m && m->is_string()) {
          r.headers.Add("Mcp-Method", std::string(m->get_string()));
        }
        if (auto name = McpNameHeader(*message)) r.headers.Add("Mcp-Name", *name);
      }
    } else if (with_session) {
      if (!version.empty()) r.headers.Add("MCP-Protocol-Version", version);
      if (!session_id.empty()) r.headers.Add("Mcp-Session-Id", session_id);
    }
    r.body = std::move(body);
    r.timeout = timeout;
    return r;
  }

  std::unique_ptr<http::HttpClient> NewClient(size_t max_bytes) {
    http::ClientOptions o;
    o.tls = endpoint.tls;
    o.verify_peer = true;
    o.ca_file = config.ca_file;
    o.max_response_bytes = max_bytes;
    return std::make_unique<http::HttpClient>(ioc.get_executor(), endpoint.host, endpoint.port,
                                              std::move(o));
  }
  // A kept-alive connection from the pool, or a new one; `use` (0: none) lets Cancel find it.
  std::unique_ptr<http::HttpClient> Acquire(uint64_t use) {
    std::unique_ptr<http::HttpClient> c;
    if (!idle.empty()) {
      c = std::move(idle.back());
      idle.pop_back();
    } else {
      c = NewClient(options.max_line_bytes);
    }
    busy[c.get()] = use;
    return c;
  }
  void Release(std::unique_ptr<http::HttpClient> c, bool keep) {
    busy.erase(c.get());
    if (keep && idle.size() < kMaxIdleConnections && !Stopping()) idle.push_back(std::move(c));
  }
  // Abandons the exchange carrying `use`: its connection is closed, so it fails at once.
  void CloseUse(uint64_t use) {
    if (use == 0) return;
    for (auto& [c, u] : busy) {
      if (u == use) c->Close();
    }
  }

  // Runs the callback of `id` (once) unless it already ran.
  bool Finish(int64_t id, Result<json::object> r) {
    UpstreamCallback done;
    {
      MutexLock lock(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return false;
      done = std::move(it->second.done);
      pending.erase(it);
      std::erase(waiting, id);
    }
    era.Forget(id);
    done(std::move(r));
    return true;
  }

  void FailAll(const std::string& why) {
    std::vector<UpstreamCallback> failed;
    {
      MutexLock lock(mu);
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
    json::value v = ParseJson(data, ec);
    if (ec || !v.is_object()) {
      Log(LogLevel::kWarn, "ignored a message that is not a JSON-RPC object");
      return false;
    }
    json::object& o = v.get_object();
    if (modern && o.contains("method") && !o.contains("id") && !ModernEra::Inbound(o)) {
      return false;
    }
    auto send = [this](std::string text) {
      Spawn(SendMessage(std::move(text), "a reply to a server request"));
    };
    if (HandleServerMessage(o, want, send, options)) return false;
    auto idit = o.find("id");
    if (want == 0 || idit == o.end() || !idit->value().is_int64() ||
        idit->value().get_int64() != want) {
      return false;
    }
    o.erase("id");
    o.erase("jsonrpc");
    if (answer) answer->emplace(std::move(o));
    return true;
  }

  // A JSON answer: one message, or (as some servers send notifications before the response
  // in a JSON body) several, one per line.
  void DispatchBody(std::string_view body, int64_t want, std::optional<json::object>* answer) {
    // "}\n{" cannot occur inside one JSON value: only between two messages.
    if (body.find("}\n{") == std::string_view::npos &&
        body.find("}\r\n{") == std::string_view::npos) {
      Dispatch(body, want, answer);
      return;
    }
    while (!body.empty()) {
      size_t nl = body.find('\n');
      std::string_view line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      if (line.find_first_not_of(" \r\t") != std::string_view::npos) Dispatch(line, want, answer);
    }
  }

  // A notification or a reply to a server request: POST, expect 202.
  asio::awaitable<void> SendMessage(std::string body, std::string what) {
    if (Stopping()) co_return;
    auto conn = Acquire(0);
    auto r =
        co_await conn->Exchange(Request("POST", true, std::move(body), kNotifyTimeout), nullptr);
    if (!r.ok()) {
      if (!Stopping()) Log(LogLevel::kWarn, "cannot send " + what + ": " + r.status().message());
    } else if (r->status < 200 || r->status >= 300) {
      Log(LogLevel::kWarn, what + " answered HTTP " + std::to_string(r->status));
    }
    Release(std::move(conn), r.ok());
  }

  void SendCancelled(int64_t id, const std::string& reason) {
    if (modern) return;  // 2026-07-28: closing the request's stream is the cancellation
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
      MutexLock lock(mu);
      ready = false;
    }
    Log(LogLevel::kWarn, why + "; initializing again");
    wake.cancel();
  }

  void Launch(int64_t id) {
    {
      MutexLock lock(mu);
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
    std::optional<json::object> sent;  // a modern upstream's request as sent
    std::optional<json::object> local;
    TxnTokenSource txn_source;
    bool changed = false;
    {
      MutexLock lock(mu);
      auto it = pending.find(id);
      if (it == pending.end() || stopping) co_return;
      if (modern) {
        local = era.Local(it->second.request, &changed);
        if (!local) {
          era.Shape(it->second.request);
          sent = it->second.request;
        }
      }
      if (!local) {
        it->second.sent = true;
        it->second.use = use;
        body = json::serialize(it->second.request);
        txn_source = it->second.txn_token;
      }
    }
    if (local) {
      Finish(id, std::move(*local));
      if (changed) Relisten();
      co_return;
    }
    // Minted for this POST, outside the lock: a retry or an input_required round answered
    // minutes after the first POST still carries a valid token.
    auto txn_token = TxnTokenForSend(txn_source, "upstream " + config.name);
    if (!txn_token.ok()) {
      Finish(id, txn_token.status());
      co_return;
    }
    uint64_t gen = generation;
    bool had_session = !session_id.empty();
    auto conn = Acquire(use);
    std::optional<json::object> answer;
    http::ClientRequest post =
        Request("POST", true, std::move(body), options.request_timeout + std::chrono::seconds(1),
                sent ? &*sent : nullptr);
    if (!txn_token->empty()) post.headers.Add(kTxnTokenHeader, std::move(*txn_token));
    auto r = co_await conn->Exchange(
        std::move(post), [&](const http::SseEvent& e) { return !Dispatch(e.data, id, &answer); });
    bool still;
    {
      MutexLock lock(mu);
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
    // A 2026-07-28 server answers some errors with HTTP 400 and the JSON-RPC error (-32021,
    // -32602, -32020): that is its answer, not a transport failure.
    if (!r->event_stream && !answer && !r->body.empty() &&
        ((r->status >= 200 && r->status < 300) || (sent && r->status >= 400 && r->status < 500))) {
      DispatchBody(r->body, id, &answer);
    }
    Release(std::move(conn), true);
    if (r->status == 404 && had_session) {
      bool retry = false;
      {
        MutexLock lock(mu);
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
    if ((r->status < 200 || r->status >= 300) && !(answer && sent)) {
      Finish(id, UnavailableError(prefix + "answered HTTP " + std::to_string(r->status)));
      co_return;
    }
    if (answer && sent) {
      Answered(era.OnAnswer(id, *sent, std::move(*answer)));
    } else if (answer) {
      Finish(id, std::move(*answer));
    } else {
      Finish(id, UnavailableError(prefix + "ended its answer without a response to the request"));
    }
  }

  // What a modern upstream's answer (or a client's answer to its input request) leads to.
  void Answered(ModernEra::Step step) {
    step = ModernEra::Deliver(std::move(step), options);
    switch (step.kind) {
      case ModernEra::Step::kFinal:
        Finish(step.call, std::move(step.answer));
        break;
      case ModernEra::Step::kRetry: {
        {
          MutexLock lock(mu);
          auto it = pending.find(step.call);
          if (it == pending.end() || stopping) break;
          it->second.request = std::move(step.request);
          it->second.sent = false;
          it->second.use = 0;
        }
        asio::post(ioc, [this, id = step.call] { Launch(id); });
        break;
      }
      case ModernEra::Step::kAsk:  // delivered: Deliver returns kWait for it
      case ModernEra::Step::kWait:
        break;
    }
  }

  // Only from the io thread: the resource subscriptions changed; the listen stream is opened
  // again with the new filter.
  void Relisten() {
    relisten = true;
    CloseUse(listen_use);
    listen.cancel();
  }

  // POST server/discover. True (and a modern session: version, capabilities) when the server
  // serves 2026-07-28; false when it answers anything else; an error when it cannot be reached.
  asio::awaitable<Result<bool>> Discover() {
    int64_t id;
    {
      MutexLock lock(mu);
      id = next_id++;
    }
    http::ClientRequest request =
        Request("POST", false, DiscoverRequest(id), options.request_timeout);
    request.headers.Add("MCP-Protocol-Version", std::string(kModernProtocol));
    request.headers.Add("Mcp-Method", "server/discover");
    auto conn = Acquire(0);
    std::optional<json::object> answer;
    auto r = co_await conn->Exchange(std::move(request), [&](const http::SseEvent& e) {
      return !Dispatch(e.data, id, &answer);
    });
    if (!r.ok()) {
      Release(std::move(conn), false);
      co_return r.status();
    }
    Release(std::move(conn), true);
    if (!r->event_stream && !answer && !r->body.empty()) Dispatch(r->body, id, &answer);
    if (r->status < 200 || r->status >= 300 || !answer) co_return false;
    auto caps = ModernCapabilities(*answer);
    if (!caps) co_return false;
    session_id.clear();
    version = std::string(kModernProtocol);
    {
      MutexLock lock(mu);
      capabilities = std::move(*caps);
    }
    co_return true;
  }

  // server/discover first (unless the configuration says the server is 2025-era), then
  // initialize if the server is not modern.
  asio::awaitable<Status> Handshake() {
    modern = false;
    if (config.protocol != "2025") {
      auto d = co_await Discover();
      if (!d.ok()) co_return d.status();
      if (*d) {
        modern = true;
        co_return OkStatus();
      }
      if (config.protocol == std::string(kModernProtocol)) {
        co_return UnavailableError("server/discover did not show a server of MCP " +
                                   std::string(kModernProtocol));
      }
    }
    co_return co_await Initialize();
  }

  // A modern upstream's subscriptions/listen stream: list changes and the subscribed
  // resources' updates, with the filter of the moment. Reopened when it ends and whenever the
  // resource subscriptions change.
  asio::awaitable<void> ModernListen(uint64_t gen) {
    auto backoff = options.min_backoff;
    for (;;) {
      if (Stopping() || gen != generation) co_return;
      relisten = false;
      std::set<std::string, std::less<>> caps;
      int64_t id;
      {
        MutexLock lock(mu);
        caps = capabilities;
        id = next_id++;
      }
      auto request = era.ListenRequest(id, caps);
      if (!request) {  // nothing to listen to until a resource is subscribed
        listen.expires_at(Clock::time_point::max());
        co_await listen.async_wait(kTuple);
        continue;
      }
      uint64_t use = next_use++;
      listen_use = use;
      auto conn = Acquire(use);
      auto opened = Clock::now();
      auto r = co_await conn->Exchange(
          Request("POST", true, json::serialize(*request), std::chrono::seconds(30), &*request),
          [this](const http::SseEvent& e) {
            Dispatch(e.data, 0, nullptr);
            return true;
          });
      Release(std::move(conn), false);
      listen_use = 0;
      if (Stopping() || gen != generation) co_return;
      if (relisten) {
        backoff = options.min_backoff;
        continue;
      }
      if (!r.ok()) {
        RequestReinit(gen, prefix + "is unreachable (" + r.status().message() + ")");
        co_return;
      }
      if (r->status < 200 || r->status >= 300) {
        Log(LogLevel::kWarn, "subscriptions/listen answered HTTP " + std::to_string(r->status) +
                                 "; list changes and resource updates will not be relayed");
        co_return;
      }
      if (Clock::now() - opened > std::chrono::seconds(10)) backoff = options.min_backoff;
      listen.expires_after(backoff);
      co_await listen.async_wait(kTuple);
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }

  // POST initialize, then notifications/initialized. On success session_id and version hold
  // the new session.
  asio::awaitable<Status> Initialize() {
    int64_t init_id;
    {
      MutexLock lock(mu);
      init_id = next_id++;
    }
    const std::string init = InitializeRequest(init_id, options);
    session_id.clear();
    version.clear();
    auto conn = Acquire(0);
    std::optional<json::object> answer;
    auto r = co_await conn->Exchange(
        Request("POST", false, init, options.request_timeout),
        [&](const http::SseEvent& e) { return !Dispatch(e.data, init_id, &answer); });
    if (!r.ok()) {
      Release(std::move(conn), false);
      co_return r.status();
    }
    Release(std::move(conn), true);
    if (r->status < 200 || r->status >= 300) {
      co_return UnavailableError("initialize answered HTTP " + std::to_string(r->status));
    }
    if (!r->event_stream && !answer) Dispatch(r->body, init_id, &answer);
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
    std::string new_session(r->headers.Get("mcp-session-id").value_or(""));
    if (HasControlOrSpace(new_session) ||
        std::any_of(new_session.begin(), new_session.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
      co_return UnavailableError("initialize answered with an invalid Mcp-Session-Id");
    }
    session_id = new_session;
    version = std::string(pv->get_string());
    {
      MutexLock lock(mu);
      capabilities = CapabilityNames(result->as_object());
    }
    auto conn2 = Acquire(0);
    auto n = co_await conn2->Exchange(
        Request("POST", true, R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                options.request_timeout),
        nullptr);
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
      Status st = co_await Handshake();
      if (Stopping()) co_return;
      if (st.ok()) {
        need_init = false;
        backoff = options.min_backoff;
        ++generation;
        std::deque<int64_t> launch;
        {
          MutexLock lock(mu);
          ready = true;
          ++handshakes;
          init_error.clear();
          launch.swap(waiting);
        }
        Log(LogLevel::kInfo, "initialized: protocol " + version +
                                 (session_id.empty() ? ", no session id" : ", session id issued"));
        for (int64_t id : launch) Spawn(Post(id));
        if (modern) {
          Spawn(ModernListen(generation));
        } else if (!get_unsupported) {
          Spawn(Listen(generation));
        }
        continue;
      }
      {
        MutexLock lock(mu);
        init_error = st.message();
      }
      // (The URL is not logged: a path or query may carry a credential.)
      Log(LogLevel::kWarn, "cannot initialize: " + st.message() + "; retrying in " +
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
      auto r = co_await conn->Exchange(Request("GET", true, "", std::chrono::seconds(30)),
                                       [this](const http::SseEvent& e) {
                                         Dispatch(e.data, 0, nullptr);
                                         return true;
                                       });
      Release(std::move(conn), false);
      if (Stopping() || gen != generation) co_return;
      if (!r.ok()) {
        RequestReinit(gen, prefix + "is unreachable (" + r.status().message() + ")");
        co_return;
      }
      if (r->status == 405 || (r->status >= 200 && r->status < 300 && !r->event_stream)) {
        get_unsupported = true;
        Log(LogLevel::kDebug, "offers no server-to-client stream (GET answered HTTP " +
                                  std::to_string(r->status) + ")");
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
        Log(LogLevel::kWarn, "GET stream answered HTTP " + std::to_string(r->status));
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
        MutexLock lock(mu);
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
        era.Forget(id);
        if (p.sent) {
          CloseUse(p.use);
          SendCancelled(id, "timed out at the Custody gateway");
        }
        p.done(UnavailableError(prefix + "did not answer in time" + (p.sent ? "" : not_ready)));
      }
    }
  }

  asio::awaitable<void> DeleteSession(std::string sid) {
    // (The session is already cleared: it goes explicitly.)
    http::ClientRequest request = Request("DELETE", false, "", kDeleteTimeout);
    if (!version.empty()) request.headers.Add("MCP-Protocol-Version", version);
    request.headers.Add("Mcp-Session-Id", sid);
    auto client = NewClient(64 * 1024);
    auto r = co_await client->Exchange(std::move(request), nullptr);
    if (!r.ok()) {
      Log(LogLevel::kInfo, "could not end the session: " + r.status().message());
    } else if (r->status >= 300 && r->status != 405) {
      Log(LogLevel::kInfo, "ending the session answered HTTP " + std::to_string(r->status));
    }
  }

  // On the io thread, once: everything in flight fails, every connection is abandoned, every
  // timer is cancelled, so each coroutine ends and run() returns.
  void ShutDown() {
    FailAll("the gateway is shutting down");
    wake.cancel();
    listen.cancel();
    sweep.cancel();
    for (auto& [c, use] : busy) c->Close();
    idle.clear();
    {
      MutexLock lock(mu);
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
      "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id",     "txn-token"};
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
  MutexLock lifecycle(m.lifecycle_mu);
  {
    MutexLock lock(m.mu);
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
  MutexLock lifecycle(m.lifecycle_mu);
  bool started;
  {
    MutexLock lock(m.mu);
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
  MutexLock lock(m.mu);
  m.stopped = true;
}

int64_t HttpUpstream::Call(const std::string& method, json::value params, RequestExtras extras,
                           UpstreamCallback done) {
  PlaceTxnTokenMeta(params, "");  // the token goes in the header, never in the body
  Impl& m = *impl_;
  MutexLock lk(m.mu);
  if (m.stopping) {
    lk.Unlock();
    done(UnavailableError("the gateway is shutting down"));
    return 0;
  }
  if (!m.ready && m.waiting.size() >= m.options.max_waiting) {
    lk.Unlock();
    done(UnavailableError(m.prefix + "is not ready and too many requests are waiting"));
    return 0;
  }
  int64_t id = m.next_id++;
  json::object req{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = std::move(params);
  Impl::Pending& p = m.pending[id];
  p.request = std::move(req);
  p.done = std::move(done);
  p.deadline = Clock::now() + m.options.request_timeout;
  p.txn_token = std::move(extras.txn_token);  // called at each POST
  bool now = m.ready && m.started;
  if (!now) m.waiting.push_back(id);
  lk.Unlock();
  if (now) asio::post(m.ioc, [&m, id] { m.Launch(id); });
  return id;
}

void HttpUpstream::Cancel(int64_t id, const std::string& reason) {
  Impl& m = *impl_;
  Impl::Pending p;
  {
    MutexLock lock(m.mu);
    auto it = m.pending.find(id);
    if (it == m.pending.end()) return;
    p = std::move(it->second);
    m.pending.erase(it);
    std::erase(m.waiting, id);
    m.era.Forget(id);
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
  MutexLock lock(m.mu);
  // 2026-07-28 has no client notifications over HTTP (a cancellation closes the stream).
  if (!m.ready || m.stopping || m.modern) return;
  asio::post(m.ioc,
             [&m, body = json::serialize(n), method] { m.Spawn(m.SendMessage(body, method)); });
}

void HttpUpstream::Respond(const json::value& id, json::object answer) {
  Impl& m = *impl_;
  if (m.modern) {  // an answer to one of the input requests of an input_required result
    if (auto step = m.era.OnRespond(id, std::move(answer))) m.Answered(std::move(*step));
    return;
  }
  MutexLock lock(m.mu);
  if (!m.ready || m.stopping) return;
  asio::post(m.ioc, [&m, body = ResponseText(id, std::move(answer))] {
    m.Spawn(m.SendMessage(body, "a reply to a server request"));
  });
}

const std::string& HttpUpstream::name() const { return impl_->config.name; }

bool HttpUpstream::ready() const {
  MutexLock lock(impl_->mu);
  return impl_->ready;
}

bool HttpUpstream::HasCapability(std::string_view name) const {
  MutexLock lock(impl_->mu);
  return impl_->capabilities.contains(name);
}

bool HttpUpstream::modern() const { return impl_->modern; }

int64_t HttpUpstream::handshakes() const {
  MutexLock lock(impl_->mu);
  return impl_->handshakes;
}

}  // namespace custody::mcp
