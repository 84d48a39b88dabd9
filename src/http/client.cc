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
  // Returns false once `on_event` asked to stop.
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
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
            return false;
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
      } else if (field == "event") {
        current_.event = std::string(value);
      } else if (field == "id") {
        current_.id = std::string(value);
      }
    }
    pending_.erase(0, start);
    return true;
  }

 private:
  std::string pending_;
  SseEvent current_;
  bool has_data_ = false;
};

}  // namespace

struct HttpClient::Impl {
  Impl(asio::any_io_executor e, std::string h, uint16_t p, ClientOptions o)
      : ex(e), host(std::move(h)), port(p), options(std::move(o)), timer(e) {}
  asio::any_io_executor ex;
  std::string host;
  uint16_t port;
  ClientOptions options;
  asio::steady_timer timer;
  std::optional<asio::ssl::context> ssl_ctx;
  std::unique_ptr<tcp::socket> plain;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  bool timed_out = false;

  tcp::socket& Lowest() { return tls ? tls->next_layer() : *plain; }
  bool connected() const {
    return (plain && plain->is_open()) || (tls && tls->next_layer().is_open());
  }

  void Arm() {
    timed_out = false;
    timer.expires_after(options.timeout);
    timer.async_wait([this](error_code ec) {
      if (ec) return;
      timed_out = true;
      error_code ignored;
      if (plain) plain->cancel(ignored);
      if (tls) tls->next_layer().cancel(ignored);
    });
  }
  void Disarm() { timer.cancel(); }

  void Reset() {
    error_code ignored;
    if (plain) plain->close(ignored);
    if (tls) tls->next_layer().close(ignored);
    plain.reset();
    tls.reset();
    buffer.clear();
  }

  Status IoError(std::string_view what, const error_code& ec) {
    Reset();
    return UnavailableError(std::string(what) + " " + host + ":" + std::to_string(port) + ": " +
                            (timed_out ? std::string("timed out") : ec.message()));
  }

  asio::awaitable<Status> Connect() {
    if (connected()) co_return OkStatus();
    Reset();
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kTuple);
    if (rec) co_return IoError("cannot resolve", rec);
    if (options.tls) {
      if (!ssl_ctx) {
        ssl_ctx.emplace(asio::ssl::context::tls_client);
        error_code ec;
        if (options.verify_peer) {
          if (!options.ca_file.empty()) {
            ssl_ctx->load_verify_file(options.ca_file, ec);
          } else {
            ssl_ctx->set_default_verify_paths(ec);
          }
          if (ec) co_return InvalidArgumentError("cannot load CA file " + options.ca_file);
          ssl_ctx->set_verify_mode(asio::ssl::verify_peer);
        } else {
          ssl_ctx->set_verify_mode(asio::ssl::verify_none);
        }
      }
      tls = std::make_unique<asio::ssl::stream<tcp::socket>>(ex, *ssl_ctx);
      if (options.verify_peer) {
        tls->set_verify_callback(asio::ssl::host_name_verification(host));
      }
      SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());
    } else {
      plain = std::make_unique<tcp::socket>(ex);
    }
    auto [cec, ep] = co_await asio::async_connect(Lowest(), results, kTuple);
    if (cec) co_return IoError("cannot connect to", cec);
    error_code ignored;
    Lowest().set_option(tcp::no_delay(true), ignored);
    if (tls) {
      auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kTuple);
      if (hec) co_return IoError("TLS handshake failed with", hec);
    }
    co_return OkStatus();
  }

  template <class S>
  asio::awaitable<Result<ClientResponse>> Exchange(
      S& stream, ClientRequest& request, const std::function<bool(const SseEvent&)>* on_event) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(request.method), request.target,
                                           11};
    if (req.method() == bhttp::verb::unknown) req.method_string(request.method);
    req.set(bhttp::field::host, host + ":" + std::to_string(port));
    for (const auto& [k, v] : request.headers.entries()) req.set(k, v);
    req.body() = std::move(request.body);
    req.keep_alive(true);
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
    if (wec) co_return IoError("cannot send to", wec);

    ClientResponse out;
    if (!on_event) {
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(options.max_response_bytes);
      if (request.method == "HEAD") parser.skip(true);
      auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (rec) co_return IoError("cannot read the response from", rec);
      auto& res = parser.get();
      out.status = res.result_int();
      for (const auto& f : res)
        out.headers.Add(std::string(f.name_string()), std::string(f.value()));
      out.body = std::move(res.body());
      if (!res.keep_alive()) Reset();
      co_return out;
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (hec) co_return IoError("cannot read the response from", hec);
    out.status = parser.get().result_int();
    for (const auto& f : parser.get()) {
      out.headers.Add(std::string(f.name_string()), std::string(f.value()));
    }
    SseParser sse;
    char chunk[8192];
    bool more = true;
    while (more && !parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, kTuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = sizeof(chunk) - parser.get().body().size;
      if (got) more = sse.Feed(std::string_view(chunk, got), *on_event);
      if (ec) {
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
        co_return IoError("stream from", ec);
      }
    }
    Reset();  // an event stream is not reused
    co_return out;
  }

  asio::awaitable<Result<ClientResponse>> Run(
      ClientRequest request, const std::function<bool(const SseEvent&)>* on_event) {
    // One retry when a kept-alive connection turned out to be closed by the server.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = connected();
      Arm();
      Status st = co_await Connect();
      if (!st.ok()) {
        Disarm();
        co_return st;
      }
      ClientRequest copy = request;
      // (No co_await inside ?: — GCC 12 miscompiles that.)
      std::optional<Result<ClientResponse>> r;
      if (tls) {
        r.emplace(co_await Exchange(*tls, copy, on_event));
      } else {
        r.emplace(co_await Exchange(*plain, copy, on_event));
      }
      Disarm();
      // An event stream's own duration is not bounded by the request timeout.
      if (r->ok() || !reused || timed_out || on_event) co_return std::move(*r);
    }
    co_return UnavailableError("unreachable");
  }
};

HttpClient::HttpClient(asio::any_io_executor ex, std::string host, uint16_t port,
                       ClientOptions options)
    : impl_(std::make_unique<Impl>(ex, std::move(host), port, std::move(options))) {}
HttpClient::~HttpClient() = default;

asio::awaitable<Result<ClientResponse>> HttpClient::Send(ClientRequest request) {
  co_return co_await impl_->Run(std::move(request), nullptr);
}

asio::awaitable<Result<ClientResponse>> HttpClient::Stream(
    ClientRequest request, std::function<bool(const SseEvent&)> on_event) {
  // Streams may be long: no overall deadline beyond connect and the response head.
  auto saved = impl_->options.timeout;
  impl_->options.timeout = std::chrono::hours(24 * 365);
  auto r = co_await impl_->Run(std::move(request), &on_event);
  impl_->options.timeout = saved;
  co_return r;
}

void HttpClient::Close() { impl_->Reset(); }

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

}  // namespace custody::http
