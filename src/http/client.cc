#include "http/client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace custody::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Parses SSE lines as they arrive (https://html.spec.whatwg.org/#event-stream-interpretation).
class SseParser {
 public:
  enum class Fed { kMore, kStop, kTooLarge };
  // `max` bounds an event's data and an unterminated line.
  explicit SseParser(size_t max) : max_(max) {}

  Fed Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
    pending_.append(bytes);
    size_t start = 0;
    for (;;) {
      size_t nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (has_data_) {
          SseEvent ev = current_;
          if (ev.event.empty()) ev.event = "message";
          if (!ev.data.empty() && ev.data.back() == '\n') ev.data.pop_back();
          current_ = {};
          has_data_ = false;
          if (!on_event(ev)) {
            pending_.erase(0, start);
            return Fed::kStop;
          }
        }
        current_.event.clear();
        continue;
      }
      if (line[0] == ':') continue;
      size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
      if (field == "data") {
        current_.data.append(value).append("\n");
        has_data_ = true;
        if (current_.data.size() > max_) return Fed::kTooLarge;
      } else if (field == "event") {
        current_.event = std::string(value);
      } else if (field == "id") {
        current_.id = std::string(value);
      }
    }
    pending_.erase(0, start);
    return pending_.size() > max_ ? Fed::kTooLarge : Fed::kMore;
  }

 private:
  size_t max_;
  std::string pending_;
  SseEvent current_;
  bool has_data_ = false;
};

// How a response body is read.
enum class Mode {
  kWhole,          // Send
  kEvents,         // Stream: always as text/event-stream
  kByContentType,  // Exchange
};

bool IsEventStream(std::string_view content_type) {
  constexpr std::string_view kType = "text/event-stream";
  if (content_type.size() < kType.size()) return false;
  for (size_t i = 0; i < kType.size(); ++i) {
    char c = content_type[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kType[i]) return false;
  }
  return true;
}

// The words IsResponseTooLarge looks for (one place writes them, one reads them).
constexpr std::string_view kTooLarge = "the response is larger than the client's limit";

bool IsStale(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

struct HttpClient::Impl {
  using OnEvent = std::function<bool(const SseEvent&)>;

  Impl(asio::any_io_executor e, std::string h, uint16_t p, ClientOptions o)
      : ex(e), host(std::move(h)), port(p), options(std::move(o)), timer(e), resolver(e) {}
  asio::any_io_executor ex;
  std::string host;
  uint16_t port;
  ClientOptions options;
  asio::steady_timer timer;
  tcp::resolver resolver;
  std::optional<asio::ssl::context> ssl_ctx;  // set only once fully configured
  std::unique_ptr<tcp::socket> plain;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  bool timed_out = false;
  uint64_t armed = 0;   // serial of the current deadline (a stale expiry must not cancel)
  bool busy = false;    // an operation is in progress: the stream objects must stay
  bool closed = false;  // Close() was called during the current operation

  tcp::socket& Lowest() { return tls ? tls->next_layer() : *plain; }
  bool connected() const {
    return (plain && plain->is_open()) || (tls && tls->next_layer().is_open());
  }
  std::string HostPort() const {
    bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }

  void Arm(std::chrono::milliseconds timeout) {
    timed_out = false;
    uint64_t serial = ++armed;
    timer.expires_after(timeout);
    timer.async_wait([this, serial](error_code ec) {
      if (ec || serial != armed) return;
      timed_out = true;
      error_code ignored;
      resolver.cancel();
      if (plain) plain->cancel(ignored);
      if (tls) tls->next_layer().cancel(ignored);
    });
  }
  void Disarm() {
    ++armed;
    timer.cancel();
  }

  // Closes the socket only; the objects go in Reset, when no operation refers to them.
  void CloseSocket() {
    error_code ignored;
    resolver.cancel();
    if (plain) plain->close(ignored);
    if (tls) tls->next_layer().close(ignored);
  }
  void Reset() {
    CloseSocket();
    plain.reset();
    tls.reset();
    buffer.clear();
  }
  void Close() {
    if (busy) {
      closed = true;
      CloseSocket();
    } else {
      Reset();
    }
  }

  Status IoError(std::string_view what, const error_code& ec) {
    Reset();
    if (closed) return UnavailableError("the connection to " + HostPort() + " was closed");
    if (ec == bhttp::error::body_limit) {
      return UnavailableError(std::string(what) + " " + HostPort() + ": " + std::string(kTooLarge));
    }
    return UnavailableError(std::string(what) + " " + HostPort() + ": " +
                            (timed_out ? std::string("timed out") : ec.message()));
  }

  Status MakeTlsContext() {
    if (ssl_ctx) return OkStatus();
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (options.verify_peer) {
      error_code ec;
      if (!options.ca_file.empty()) {
        ctx.load_verify_file(options.ca_file, ec);
      } else {
        ctx.set_default_verify_paths(ec);
      }
      if (ec) {
        return InvalidArgumentError((options.ca_file.empty()
                                         ? std::string("cannot load the system CA store")
                                         : "cannot load CA file " + options.ca_file) +
                                    ": " + ec.message());
      }
      ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
      ctx.set_verify_mode(asio::ssl::verify_none);
    }
    ssl_ctx.emplace(std::move(ctx));
    return OkStatus();
  }

  asio::awaitable<Status> Connect() {
    if (connected()) co_return OkStatus();
    Reset();
    if (options.tls) {
      Status st = MakeTlsContext();
      if (!st.ok()) co_return st;
    }
    // The endpoints: the caller's vetted addresses, else what the host name resolves to.
    std::vector<tcp::endpoint> endpoints;
    for (const std::string& a : options.connect_addresses) {
      error_code aec;
      asio::ip::address address = asio::ip::make_address(a, aec);
      if (aec) co_return InvalidArgumentError("connect address is not an IP address: " + a);
      endpoints.emplace_back(address, port);
    }
    if (endpoints.empty()) {
      auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kTuple);
      if (rec || closed) co_return IoError("cannot resolve", rec);
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    if (options.tls) {
      tls = std::make_unique<asio::ssl::stream<tcp::socket>>(ex, *ssl_ctx);
      if (options.verify_peer) {
        tls->set_verify_callback(asio::ssl::host_name_verification(host));
      }
      error_code not_ip;
      asio::ip::make_address(host, not_ip);
      if (not_ip) SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());  // SNI: names only
    } else {
      plain = std::make_unique<tcp::socket>(ex);
    }
    auto [cec, ep] = co_await asio::async_connect(Lowest(), endpoints, kTuple);
    if (cec || closed) co_return IoError("cannot connect to", cec);
    error_code ignored;
    Lowest().set_option(tcp::no_delay(true), ignored);
    if (tls) {
      auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kTuple);
      if (hec || closed) co_return IoError("TLS handshake failed with", hec);
    }
    co_return OkStatus();
  }

  // One request and its response on the open connection. `stale` tells whether the server had
  // closed a kept-alive connection before it saw the request (so sending again is safe).
  template <class S>
  asio::awaitable<Result<ClientResponse>> RoundTrip(S& stream, ClientRequest& request, Mode mode,
                                                    const OnEvent* on_event, bool* stale) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(request.method), request.target,
                                           11};
    if (req.method() == bhttp::verb::unknown) req.method_string(request.method);
    req.set(bhttp::field::host, HostPort());
    for (const auto& [k, v] : request.headers.entries()) req.set(k, v);
    req.body() = std::move(request.body);
    req.keep_alive(true);
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
    if (wec || closed) {
      *stale = true;
      co_return IoError("cannot send to", wec);
    }

    bhttp::response_parser<bhttp::empty_body> head;
    // Beast's own default (8 MB) would refuse a larger Content-Length while reading the head;
    // the client's limit is checked just below instead.
    head.body_limit(boost::none);
    if (request.method == "HEAD") head.skip(true);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, head, kTuple);
    if (hec || closed) {
      *stale = IsStale(hec);
      co_return IoError("cannot read the response from", hec);
    }
    ClientResponse out;
    out.status = head.get().result_int();
    for (const auto& f : head.get()) {
      out.headers.Add(std::string(f.name_string()), std::string(f.value()));
    }
    out.event_stream =
        mode == Mode::kEvents ||
        (mode == Mode::kByContentType && IsEventStream(head.get()[bhttp::field::content_type]));

    if (!out.event_stream) {
      // (The Content-Length was parsed with the head: check it here; chunks are checked as read.)
      auto length = head.content_length();
      if (length && !head.is_done() && *length > options.max_response_bytes) {
        co_return IoError("cannot read the response from", bhttp::error::body_limit);
      }
      bhttp::response_parser<bhttp::string_body> parser(std::move(head));
      parser.body_limit(options.max_response_bytes);
      if (!parser.is_done()) {
        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
        if (rec || closed) co_return IoError("cannot read the response from", rec);
      }
      out.body = std::move(parser.get().body());
      if (!parser.get().keep_alive()) Reset();
      co_return out;
    }

    // An event stream lasts as long as it must (Stream has its own, long timeout).
    if (mode == Mode::kByContentType) Disarm();
    bhttp::response_parser<bhttp::buffer_body> parser(std::move(head));
    parser.body_limit(boost::none);
    // Events are handed on as they come, so only each event (and an unterminated line) is
    // bounded, in every mode: a stream may last for ever, one event may not grow for ever.
    SseParser sse(options.max_response_bytes);
    char chunk[8192];
    auto fed = SseParser::Fed::kMore;
    while (fed == SseParser::Fed::kMore && !parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, kTuple);
      if (closed) co_return IoError("stream from", ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = sizeof(chunk) - parser.get().body().size;
      if (got) fed = sse.Feed(std::string_view(chunk, got), *on_event);
      if (closed) co_return IoError("stream from", ec);
      if (fed == SseParser::Fed::kTooLarge) {
        Reset();
        co_return UnavailableError("an event from " + HostPort() + " is too large");
      }
      if (ec) {
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
        co_return IoError("stream from", ec);
      }
    }
    Reset();  // an event stream is not reused
    co_return out;
  }

  asio::awaitable<Result<ClientResponse>> Run(ClientRequest request, Mode mode,
                                              const OnEvent* on_event) {
    struct Busy {
      explicit Busy(Impl* i) : impl(i) {
        impl->busy = true;
        impl->closed = false;
      }
      ~Busy() { impl->busy = false; }
      Impl* impl;
    } busy_while_running(this);
    auto timeout = request.timeout.value_or(options.timeout);
    for (int attempt = 0;; ++attempt) {
      bool reused = connected();
      Arm(timeout);
      Status st = co_await Connect();
      if (!st.ok()) {
        Disarm();
        co_return st;
      }
      ClientRequest copy = request;
      bool stale = false;
      // (No co_await inside ?: — GCC 12 miscompiles that.)
      std::optional<Result<ClientResponse>> r;
      if (tls) {
        r.emplace(co_await RoundTrip(*tls, copy, mode, on_event, &stale));
      } else {
        r.emplace(co_await RoundTrip(*plain, copy, mode, on_event, &stale));
      }
      Disarm();
      // One retry when a kept-alive connection turned out to be closed by the server. Send
      // retries after any failure on a reused connection (as it always did); Exchange only
      // when the server cannot have seen the request; an event stream never.
      bool retry = reused && attempt == 0 && !timed_out && !closed &&
                   (mode == Mode::kWhole || (mode == Mode::kByContentType && stale));
      if (r->ok() || !retry) co_return std::move(*r);
    }
  }
};

bool IsResponseTooLarge(const Status& status) {
  return status.code() == StatusCode::kUnavailable &&
         status.message().find(kTooLarge) != std::string::npos;
}

HttpClient::HttpClient(asio::any_io_executor ex, std::string host, uint16_t port,
                       ClientOptions options)
    : impl_(std::make_unique<Impl>(ex, std::move(host), port, std::move(options))) {}
HttpClient::~HttpClient() = default;

asio::awaitable<Result<ClientResponse>> HttpClient::Send(ClientRequest request) {
  co_return co_await impl_->Run(std::move(request), Mode::kWhole, nullptr);
}

asio::awaitable<Result<ClientResponse>> HttpClient::Stream(
    ClientRequest request, std::function<bool(const SseEvent&)> on_event) {
  // Streams may be long: no overall deadline unless the request sets one.
  if (!request.timeout) request.timeout = std::chrono::hours(24 * 365);
  co_return co_await impl_->Run(std::move(request), Mode::kEvents, &on_event);
}

asio::awaitable<Result<ClientResponse>> HttpClient::Exchange(
    ClientRequest request, std::function<bool(const SseEvent&)> on_event) {
  if (!on_event) on_event = [](const SseEvent&) { return true; };
  co_return co_await impl_->Run(std::move(request), Mode::kByContentType, &on_event);
}

void HttpClient::Close() { impl_->Close(); }

struct BlockingHttpClient::Impl {
  Impl(std::string host, uint16_t port, ClientOptions options)
      : client(ioc.get_executor(), std::move(host), port, std::move(options)) {}
  asio::io_context ioc;
  HttpClient client;

  template <class F>
  Result<ClientResponse> RunSync(F make) {
    std::optional<Result<ClientResponse>> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await make()); },
        [&](std::exception_ptr e) {
          if (e && !out) out.emplace(InternalError("client coroutine threw"));
        });
    ioc.restart();
    ioc.run();
    if (!out) return InternalError("client did not complete");
    return std::move(*out);
  }
};

BlockingHttpClient::BlockingHttpClient(std::string host, uint16_t port, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(host), port, std::move(options))) {}
BlockingHttpClient::~BlockingHttpClient() = default;

Result<ClientResponse> BlockingHttpClient::Send(ClientRequest request) {
  return impl_->RunSync([&] { return impl_->client.Send(std::move(request)); });
}

Result<ClientResponse> BlockingHttpClient::Stream(ClientRequest request,
                                                  std::function<bool(const SseEvent&)> on_event) {
  return impl_->RunSync(
      [&] { return impl_->client.Stream(std::move(request), std::move(on_event)); });
}

Result<ClientResponse> BlockingHttpClient::Exchange(ClientRequest request,
                                                    std::function<bool(const SseEvent&)> on_event) {
  return impl_->RunSync(
      [&] { return impl_->client.Exchange(std::move(request), std::move(on_event)); });
}

}  // namespace custody::http
