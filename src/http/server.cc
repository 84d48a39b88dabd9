#include "http/server.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/uuid.h"
#include "http/request_authenticator.h"

namespace custody::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Strand = asio::strand<asio::io_context::executor_type>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

tcp::socket& Lowest(tcp::socket& s) { return s; }
const boost::system::error_category& ParseCategory() {
  return bhttp::make_error_code(bhttp::error::bad_method).category();
}
tcp::socket& Lowest(asio::ssl::stream<tcp::socket>& s) { return s.next_layer(); }

// The per-connection I/O state. Shared with the deadline timer's handler so that a late timer
// callback never touches a destroyed socket. Everything here runs on the connection's strand.
template <class Stream>
struct ConnIo {
  template <class... Args>
  ConnIo(Strand strand, Args&&... args)
      : stream(std::forward<Args>(args)...), timer(strand), wake(strand) {}
  Stream stream;
  asio::steady_timer timer;  // deadline for the current read or write
  asio::steady_timer wake;   // wakes an SSE writer loop
  uint64_t generation = 0;   // invalidates deadline callbacks that were already queued
  bool timed_out = false;
  bool idle = false;  // waiting for a request header: may be closed by Shutdown()
  bool stop = false;  // Shutdown() asked this connection to finish
};

template <class Stream>
void Arm(const std::shared_ptr<ConnIo<Stream>>& io, std::chrono::milliseconds d) {
  uint64_t gen = ++io->generation;
  io->timed_out = false;
  io->timer.expires_after(d);
  io->timer.async_wait([io, gen](error_code ec) {
    if (ec || gen != io->generation) return;
    io->timed_out = true;
    error_code ignored;
    Lowest(io->stream).cancel(ignored);
  });
}

template <class Stream>
void Disarm(const std::shared_ptr<ConnIo<Stream>>& io) {
  ++io->generation;
  io->timer.cancel();
}

std::string MediaType(std::string_view content_type) {
  std::string_view v = content_type.substr(0, content_type.find(';'));
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class SseWriterImpl final : public SseWriter, public std::enable_shared_from_this<SseWriterImpl> {
 public:
  using WakeFn = std::function<void()>;
  explicit SseWriterImpl(WakeFn wake) : wake_(std::move(wake)) {}

  bool Send(std::string_view event, std::string_view data, std::string_view id) override {
    return Push(FormatSseEvent(event, data, id));
  }
  bool Comment(std::string_view text) override { return Push(": " + std::string(text) + "\n\n"); }
  void Close() override {
    {
      MutexLock lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    Wake();
  }
  // Called by the connection when the stream ends. After it returns, no producer thread touches
  // the connection's executor again, so the server may be destroyed while producers still hold
  // the writer.
  void Detach() {
    MutexLock lock(wake_mu_);
    wake_ = nullptr;
  }
  bool closed() const override {
    MutexLock lock(mu_);
    return closed_;
  }
  void OnPeerGone(std::function<void()> f) override {
    MutexLock lock(mu_);
    on_gone_ = std::move(f);
  }
  // The connection saw the peer close (or fail) while the stream was open.
  void PeerGone() {
    std::function<void()> f;
    {
      MutexLock lock(mu_);
      if (closed_) return;
      closed_ = true;
      f = std::move(on_gone_);
    }
    Wake();
    if (f) f();
  }
  // Takes what is queued; `closed` reports whether the stream should end after it.
  std::string Take(bool* closed) {
    MutexLock lock(mu_);
    std::string out;
    for (auto& s : queue_) out += s;
    queue_.clear();
    *closed = closed_;
    return out;
  }

 private:
  bool Push(std::string chunk) {
    {
      MutexLock lock(mu_);
      if (closed_) return false;
      queue_.push_back(std::move(chunk));
    }
    Wake();
    return true;
  }
  void Wake() {
    MutexLock lock(wake_mu_);
    if (wake_) wake_();
  }
  Mutex wake_mu_;
  WakeFn wake_ GUARDED_BY(wake_mu_);  // null once detached
  mutable Mutex mu_;
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  std::function<void()> on_gone_ GUARDED_BY(mu_);
};

// Hands a handler's answer to its connection. Deliver() and Clear() are serialized, so once
// Clear() returns no other thread is inside the delivery function.
class Mailbox {
 public:
  using DeliverFn = std::function<void(Response)>;
  void Set(DeliverFn fn) {
    MutexLock lock(mu_);
    fn_ = std::move(fn);
  }
  void Deliver(Response r) {
    MutexLock lock(mu_);
    if (fn_) fn_(std::move(r));
  }
  void Clear() {
    DeliverFn old;
    {
      MutexLock lock(mu_);
      old.swap(fn_);
    }
  }

 private:
  Mutex mu_;
  DeliverFn fn_ GUARDED_BY(mu_);  // null once cleared
};

// Waits for an asynchronous handler's Responder, which may be called from any thread.
struct PendingResponse {
  explicit PendingResponse(asio::any_io_executor ex) : timer(ex) {
    timer.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer timer;
  // Touched only on the connection's strand.
  std::optional<Response> response;
  std::optional<std::string> direct_rest;  // set when the answer was sent by the responder
  size_t direct_bytes = 0;
};

// The HTTP/1.1 message a Response is sent as (the body moved out of `resp`). One function for
// both ways an answer is written, so they cannot differ.
bhttp::response<bhttp::string_body> WireResponse(Response& resp, unsigned version, bool keep_alive,
                                                 bool head_only, const std::string& request_id) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(resp.status), version};
  for (const auto& [k, v] : resp.headers.entries()) res.set(k, v);
  res.set("x-request-id", request_id);
  res.keep_alive(keep_alive);
  size_t len = resp.body.size();
  res.body() = head_only ? std::string() : std::move(resp.body);
  res.prepare_payload();
  if (head_only) res.content_length(len);
  return res;
}

std::string Serialize(bhttp::response<bhttp::string_body>& res) {
  std::string out;
  bhttp::response_serializer<bhttp::string_body> sr{res};
  error_code ec;
  while (!sr.is_done() && !ec) {
    sr.next(ec, [&](error_code&, const auto& buffers) {
      size_t n = 0;
      for (auto b : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      sr.consume(n);
    });
  }
  return out;
}

// A plain-TCP connection's socket, lent to Dispatch for the one request it is answering. When
// an asynchronous handler answers on another thread (the ledger's sequencer after a durable
// commit, say), the responder sends the answer from that thread at once, instead of posting it
// to the connection's strand and waking the worker thread to write it first: on the 2-vCPU VM
// that hop (epoll_ctl on the eventfd, a thread wake-up) cost an authorize call at one client
// 6-98 us of its p50 on tmpfs, more in its tail (docs/PERFORMANCE.md, #16). Nothing else touches
// the socket meanwhile: the connection's coroutine is parked waiting for the answer, and reads
// only after it; the socket stays open until the mailbox is cleared.
struct DirectWrite {
  int fd = -1;
  unsigned version = 11;
  bool keep_alive = false;
  bool head_only = false;
  std::string request_id;
};

// Answers are sent by the responder only while at most this many requests wait for an
// asynchronous answer in the whole server: with more, the thread that answers them (one
// sequencer for a whole batch) would spend its time in send() that the workers can do in
// parallel, and latency is queueing anyway.
constexpr int kDirectWriteMaxWaiting = 2;

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, const Router& r, Authenticator* a, RequestObserver obs, const Clock& clock,
       Random& random)
      : options(std::move(o)),
        router(r),
        authenticator(a),
        observer(std::move(obs)),
        ids(clock, random),
        thread_count(options.threads > 0
                         ? options.threads
                         : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
        iocs(MakeContexts(thread_count)),
        acceptor_strand(asio::make_strand(*iocs.front())),
        acceptor(acceptor_strand) {}

  ServerOptions options;
  const Router& router;
  Authenticator* authenticator;
  RequestObserver observer;
  UuidV7Generator ids;
  int thread_count;
  // Declared before the io_context: destroying it destroys unfinished session coroutines,
  // whose guards still use these.
  Mutex mu;
  CondVar cv;
  uint64_t next_conn_id GUARDED_BY(mu) = 0;
  std::map<uint64_t, std::function<void()>> stoppers GUARDED_BY(mu);  // posts to the strand
  size_t active GUARDED_BY(mu) = 0;
  bool shut_down GUARDED_BY(mu) = false;
  std::atomic<int> waiting_async{0};  // requests whose handler has not answered yet
  // Read by responders on any thread until the io_contexts are destroyed, hence declared here.
  std::atomic<bool> stopping{false};
  std::optional<asio::ssl::context> ssl;
  // One io_context per worker thread, each run by that thread alone: a connection stays on the
  // thread that accepted it (round robin), so a request and its response never hop between
  // workers. One shared io_context run by N threads wakes a second thread for work the first
  // would have done next (epoll thread -> handler thread), which cost ~0.2 ms per request on a
  // 2-vCPU VM (docs/PERFORMANCE.md, gateway overhead).
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  size_t next_ioc = 0;  // touched only on the acceptor's strand
  Strand acceptor_strand;
  tcp::acceptor acceptor;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  uint16_t bound_port = 0;
  std::atomic<bool> started{false};
  std::atomic<bool> running{false};  // Start() succeeded: worker threads are running

  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < n; ++i) v.push_back(std::make_unique<asio::io_context>(1));
    return v;
  }
  asio::io_context& NextContext() { return *iocs[next_ioc++ % iocs.size()]; }

  asio::awaitable<void> Accept();
  template <class Stream>
  asio::awaitable<void> Session(std::shared_ptr<ConnIo<Stream>> io, std::string remote);
  template <class Stream>
  asio::awaitable<void> Lingering(std::shared_ptr<ConnIo<Stream>> io);
  // `direct`, when set, lets the answer be written by the responder's thread (DirectWrite); it
  // is then returned with `*sent` holding what is still to be written (usually nothing) and
  // `*sent_bytes` the size of the whole message.
  asio::awaitable<Response> Dispatch(Request& req, const Route** route_out,
                                     const DirectWrite* direct, std::optional<std::string>* sent,
                                     size_t* sent_bytes);
  void Finish(uint64_t id) {
    MutexLock lock(mu);
    stoppers.erase(id);
    --active;
    cv.NotifyAll();
  }
};

namespace {

// What every request must satisfy before it is routed. A target is ASCII (RFC 9112 3.2; other
// bytes are percent-encoded), so nothing a route echoes of it can break a JSON answer; and a
// request carries one credential: with two Authorization headers, which one is meant is a guess
// that a proxy and Custody could make differently.
Status CheckRequestHead(const Request& req) {
  if (req.path.empty() || req.path[0] != '/') {
    return InvalidArgumentError("request target must be an absolute path");
  }
  for (char ch : req.target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F) {
      return InvalidArgumentError(
          "request target must be printable ASCII (percent-encode other bytes)");
    }
  }
  int authorization = 0;
  for (const auto& [name, value] : req.headers.entries()) {
    if (beast::iequals(name, "authorization")) ++authorization;
  }
  if (authorization > 1) return InvalidArgumentError("more than one Authorization header");
  return OkStatus();
}

}  // namespace

asio::awaitable<void> Server::Impl::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(NextContext()), kTuple);
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      continue;  // e.g. the peer reset before accept; EMFILE clears as connections close
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::string remote;
    auto ep = socket.remote_endpoint(ignored);
    if (!ignored) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    Strand strand = socket.get_executor();
    if (ssl) {
      auto io =
          std::make_shared<ConnIo<asio::ssl::stream<tcp::socket>>>(strand, std::move(socket), *ssl);
      asio::co_spawn(strand, Session(io, remote), asio::detached);
    } else {
      auto io = std::make_shared<ConnIo<tcp::socket>>(strand, std::move(socket));
      asio::co_spawn(strand, Session(io, remote), asio::detached);
    }
  }
}

asio::awaitable<Response> Server::Impl::Dispatch(Request& req, const Route** route_out,
                                                 const DirectWrite* direct,
                                                 std::optional<std::string>* sent,
                                                 size_t* sent_bytes) {
  Router::Match m = router.Find(req.method, req.path);
  if (!m.route) {
    if (m.path_matched) {
      std::string allow;
      for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
      Response r = ErrorResponse(InvalidArgumentError("method " + req.method + " not allowed here"),
                                 req.request_id, 405);
      r.headers.Set("allow", allow);
      co_return r;
    }
    co_return ErrorResponse(NotFoundError("no such route"), req.request_id);
  }
  const Route& route = *m.route;
  *route_out = &route;
  req.params = std::move(m.params);
  if (route.auth.required) {
    std::optional<std::string_view> token = BearerToken(req.headers);
    // Without a bearer token, another credential the authenticator knows may do (the console's
    // session cookie with its CSRF header, http/request_authenticator.h).
    std::optional<Result<Principal>> other;
    if (!token) {
      if (auto* ra = dynamic_cast<RequestAuthenticator*>(authenticator)) {
        other = ra->AuthenticateOther(req);
      }
      if (!other) {
        co_return ErrorResponse(UnauthenticatedError("a bearer token is required"), req.request_id);
      }
    }
    if (!authenticator) {
      co_return ErrorResponse(UnauthenticatedError("authentication is not configured"),
                              req.request_id);
    }
    Result<Principal> p = other ? std::move(*other) : authenticator->Authenticate(*token);
    if (!p.ok()) co_return ErrorResponse(p.status(), req.request_id);
    if (!route.auth.roles.empty() && std::find(route.auth.roles.begin(), route.auth.roles.end(),
                                               p->role) == route.auth.roles.end()) {
      req.principal = *p;
      co_return ErrorResponse(
          PermissionDeniedError("role \"" + p->role + "\" may not call this route"),
          req.request_id);
    }
    req.principal = std::move(*p);
  }
  if (!route.content_type.empty() &&
      (req.method == "POST" || req.method == "PUT" || req.method == "PATCH")) {
    std::optional<std::string_view> ct = req.headers.Get("content-type");
    if (!ct || MediaType(*ct) != route.content_type) {
      co_return ErrorResponse(InvalidArgumentError("Content-Type must be " + route.content_type),
                              req.request_id, 415);
    }
  }
  auto ex = co_await asio::this_coro::executor;
  auto pending = std::make_shared<PendingResponse>(ex);
  // A Responder may outlive its connection and even the server, and may be called from any
  // thread. It holds only the Mailbox; the connection empties the mailbox when it stops waiting,
  // so no handler thread touches the io_context afterwards (calling it then is a no-op).
  auto mailbox = std::make_shared<Mailbox>();
  {
    std::weak_ptr<PendingResponse> weak = pending;
    std::shared_ptr<const DirectWrite> target =
        direct ? std::make_shared<const DirectWrite>(*direct) : nullptr;
    // Mailbox::Deliver serializes calls: `answered` needs no lock. A second call is ignored.
    mailbox->Set([this, weak, ex, target, answered = false](Response r) mutable {
      if (answered) return;
      answered = true;
      std::optional<std::string> rest;
      size_t bytes = 0;
      if (target && !r.sse &&
          waiting_async.load(std::memory_order_relaxed) <= kDirectWriteMaxWaiting) {
        // A server that is stopping closes the connection after this answer, and says so.
        auto res = WireResponse(r, target->version, target->keep_alive && !stopping,
                                target->head_only, target->request_id);
        std::string wire = Serialize(res);
        // Never blocks: what the socket does not take now, the strand writes (with its timeout).
        ssize_t n = ::send(target->fd, wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) n = 0;  // EAGAIN, or an error the strand's write meets again and reports
        bytes = wire.size();
        rest = wire.substr(static_cast<size_t>(n));
      }
      asio::post(ex, [weak, r = std::move(r), rest = std::move(rest), bytes]() mutable {
        auto pending = weak.lock();
        if (!pending || pending->response) return;  // gone
        pending->response = std::move(r);
        pending->direct_rest = std::move(rest);
        pending->direct_bytes = bytes;
        pending->timer.cancel();
      });
    });
  }
  struct ClearOnExit {
    Mailbox* m;
    ~ClearOnExit() { m->Clear(); }
  } clear_on_exit{mailbox.get()};
  struct Waiting {
    std::atomic<int>* n;
    explicit Waiting(std::atomic<int>* c) : n(c) { n->fetch_add(1, std::memory_order_relaxed); }
    ~Waiting() { n->fetch_sub(1, std::memory_order_relaxed); }
  } waiting{&waiting_async};
  Responder respond = [mailbox](Response r) { mailbox->Deliver(std::move(r)); };
  try {
    route.handler(req, std::move(respond));
  } catch (const std::exception& e) {
    co_return ErrorResponse(InternalError("handler failed"), req.request_id);
  }
  while (!pending->response) {
    co_await pending->timer.async_wait(kTuple);
  }
  if (pending->direct_rest) {
    *sent = std::move(pending->direct_rest);
    *sent_bytes = pending->direct_bytes;
  }
  co_return std::move(*pending->response);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Lingering(std::shared_ptr<ConnIo<Stream>> io) {
  // After an error answer the client may still be sending a body we did not read; closing at
  // once would make the kernel send RST and could destroy our answer before the client reads
  // it. So: half-close, then drain (bounded) until the peer closes.
  error_code ec;
  Lowest(io->stream).shutdown(tcp::socket::shutdown_send, ec);
  Arm(io, std::chrono::milliseconds(2000));
  std::vector<char> sink(64 * 1024);
  size_t drained = 0;
  while (drained < 16 * 1024 * 1024) {
    auto [rec, n] = co_await Lowest(io->stream).async_read_some(asio::buffer(sink), kTuple);
    if (rec) break;
    drained += n;
  }
  Disarm(io);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Session(std::shared_ptr<ConnIo<Stream>> io,
                                            std::string remote) {
  uint64_t conn_id;
  {
    MutexLock lock(mu);
    conn_id = next_conn_id++;
    ++active;
    auto ex = io->timer.get_executor();
    std::weak_ptr<ConnIo<Stream>> weak = io;
    stoppers[conn_id] = [ex, weak] {
      asio::post(ex, [weak] {
        auto io = weak.lock();
        if (!io) return;
        io->stop = true;
        if (io->idle) {
          error_code ignored;
          Lowest(io->stream).cancel(ignored);
        }
        io->wake.cancel();
      });
    };
  }
  struct Guard {
    Impl* impl;
    uint64_t id;
    ~Guard() { impl->Finish(id); }
  } guard{this, conn_id};

  if constexpr (std::is_same_v<Stream, asio::ssl::stream<tcp::socket>>) {
    Arm(io, options.header_timeout);
    auto [ec] = co_await io->stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    Disarm(io);
    if (ec) co_return;
  }

  beast::flat_buffer buffer;
  for (;;) {
    if (io->stop || stopping) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    io->idle = true;
    Arm(io, options.header_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(io->stream, buffer, parser, kTuple);
    Disarm(io);
    io->idle = false;
    auto started = std::chrono::steady_clock::now();
    std::string request_id;
    auto fail_and_close = [&](Status st, int http_status) -> Response {
      if (request_id.empty()) request_id = ids.NextString();
      Response r = ErrorResponse(st, request_id, http_status);
      return r;
    };
    std::optional<Response> early;
    if (ec) {
      if (io->timed_out) {
        if (buffer.size() == 0 && !parser.got_some()) break;  // idle keep-alive: just close
        early = fail_and_close(InvalidArgumentError("request header not received in time"), 408);
      } else if (ec == bhttp::error::header_limit) {
        early = fail_and_close(InvalidArgumentError("request header too large"), 431);
      } else if (ec == bhttp::error::body_limit) {
        early = fail_and_close(InvalidArgumentError("request body too large"), 413);
      } else if (ec.category() == ParseCategory() && ec != bhttp::error::end_of_stream &&
                 ec != bhttp::error::partial_message) {
        early = fail_and_close(InvalidArgumentError("malformed HTTP request"), 400);
      } else {
        break;  // peer closed, reset, or we were stopped while idle
      }
    }
    if (!early) {
      if (auto h = parser.get().find("x-request-id");
          h != parser.get().end() && IsSaneRequestId(std::string_view(h->value()))) {
        request_id = std::string(h->value());
      } else {
        request_id = ids.NextString();
      }
      auto cl = parser.content_length();
      if (cl && *cl > options.max_body_bytes) {
        early = fail_and_close(InvalidArgumentError("request body too large"), 413);
      }
    }
    if (!early && !parser.is_done()) {
      if (auto e = parser.get().find(bhttp::field::expect);
          e != parser.get().end() && beast::iequals(e->value(), "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        Arm(io, options.write_timeout);
        auto [wec, wn] = co_await asio::async_write(io->stream, asio::buffer(kContinue), kTuple);
        Disarm(io);
        if (wec) break;
      }
      Arm(io, options.body_timeout);
      auto [bec, bn] = co_await bhttp::async_read(io->stream, buffer, parser, kTuple);
      Disarm(io);
      if (bec) {
        if (io->timed_out) {
          early = fail_and_close(InvalidArgumentError("request body not received in time"), 408);
        } else if (bec == bhttp::error::body_limit) {
          early = fail_and_close(InvalidArgumentError("request body too large"), 413);
        } else if (bec.category() == ParseCategory() && bec != bhttp::error::end_of_stream &&
                   bec != bhttp::error::partial_message) {
          early = fail_and_close(InvalidArgumentError("malformed HTTP request body"), 400);
        } else {
          break;
        }
      }
    }

    Request req;
    const Route* route = nullptr;
    Response resp;
    std::optional<std::string> sent;  // the answer went out from the responder's thread: the rest
    size_t sent_bytes = 0;
    bool keep_alive = false;
    unsigned version = 11;
    uint64_t request_bytes = 0;
    if (early) {
      resp = std::move(*early);
      req.method = parser.is_header_done() ? std::string(parser.get().method_string()) : "";
    } else {
      auto& m = parser.get();
      version = m.version();
      keep_alive = m.keep_alive();
      req.method = std::string(m.method_string());
      req.target = std::string(m.target());
      size_t q = req.target.find('?');
      req.path = req.target.substr(0, q);
      if (q != std::string::npos) req.query = req.target.substr(q + 1);
      for (const auto& f : m) req.headers.Add(std::string(f.name_string()), std::string(f.value()));
      req.body = std::move(m.body());
      request_bytes = req.body.size();
      req.request_id = request_id;
      req.remote = remote;
      if (Status bad = CheckRequestHead(req); !bad.ok()) {
        resp = ErrorResponse(bad, request_id);
      } else {
        std::optional<DirectWrite> direct;
        if constexpr (std::is_same_v<Stream, tcp::socket>) {
          direct.emplace();
          direct->fd = io->stream.native_handle();
          direct->version = version;
          direct->keep_alive = keep_alive;
          direct->head_only = req.method == "HEAD";
          direct->request_id = request_id;
        }
        resp = co_await Dispatch(req, &route, direct ? &*direct : nullptr, &sent, &sent_bytes);
      }
    }
    if (io->stop || stopping) keep_alive = false;
    if (early) keep_alive = false;

    uint64_t response_bytes = 0;
    bool write_failed = false;
    if (resp.sse && !early) {
      bhttp::response<bhttp::empty_body> head{bhttp::status::ok, version};
      for (const auto& [k, v] : resp.headers.entries()) head.set(k, v);
      head.set(bhttp::field::content_type, "text/event-stream");
      head.set(bhttp::field::cache_control, "no-cache");
      head.set("x-request-id", request_id);
      head.keep_alive(false);
      bhttp::response_serializer<bhttp::empty_body> sr{head};
      Arm(io, options.write_timeout);
      auto [hec, hn] = co_await bhttp::async_write_header(io->stream, sr, kTuple);
      Disarm(io);
      resp.status = 200;
      if (!hec) {
        std::weak_ptr<ConnIo<Stream>> weak = io;
        auto ex = io->timer.get_executor();
        auto writer = std::make_shared<SseWriterImpl>([weak, ex] {
          asio::post(ex, [weak] {
            if (auto io = weak.lock()) io->wake.cancel();
          });
        });
        struct DetachOnExit {
          SseWriterImpl* w;
          ~DetachOnExit() { w->Detach(); }
        } detach_on_exit{writer.get()};
        resp.sse(writer);
        // The peer is not expected to send anything on an event stream: a read that ends means
        // it went away, and the stream ends now rather than at the next failed write. (Plain TCP
        // only: over TLS a read beside the stream's writes and its shutdown is not attempted,
        // and a peer that left is noticed at the next write.)
        if constexpr (std::is_same_v<Stream, tcp::socket>) {
          asio::co_spawn(
              io->timer.get_executor(),
              [io, writer]() -> asio::awaitable<void> {
                char byte;
                auto [rec, rn] =
                    co_await io->stream.async_read_some(asio::buffer(&byte, 1), kTuple);
                if (rec || rn == 0) writer->PeerGone();
              },
              asio::detached);
        }
        for (;;) {
          bool closed = false;
          std::string chunk = writer->Take(&closed);
          if (!chunk.empty()) {
            Arm(io, options.write_timeout);
            auto [wec, wn] = co_await asio::async_write(io->stream, asio::buffer(chunk), kTuple);
            Disarm(io);
            response_bytes += wn;
            if (wec) break;
            continue;
          }
          if (closed || io->stop || stopping) break;
          io->wake.expires_at(asio::steady_timer::time_point::max());
          co_await io->wake.async_wait(kTuple);
        }
        writer->Close();
      }
      keep_alive = false;
    } else if (sent) {
      if (!sent->empty()) {
        Arm(io, options.write_timeout);
        auto [wec, wn] = co_await asio::async_write(io->stream, asio::buffer(*sent), kTuple);
        Disarm(io);
        write_failed = static_cast<bool>(wec);
      }
      response_bytes = write_failed ? 0 : sent_bytes;
      // An answer sent just before the server began stopping said the connection stays open; it
      // closes after it all the same, as any keep-alive connection may.
    } else {
      auto res = WireResponse(resp, version, keep_alive, req.method == "HEAD", request_id);
      Arm(io, options.write_timeout);
      auto [wec, wn] = co_await bhttp::async_write(io->stream, res, kTuple);
      Disarm(io);
      response_bytes = wn;
      write_failed = static_cast<bool>(wec);
    }
    if (observer) {
      RequestRecord rec;
      rec.method = req.method;
      rec.route = route ? std::string_view(route->pattern) : std::string_view("unmatched");
      rec.status = resp.status;
      rec.latency = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - started);
      rec.request_id = request_id;
      rec.remote = remote;
      rec.principal = req.principal ? std::string_view(req.principal->id) : std::string_view();
      rec.request_bytes = request_bytes;
      rec.response_bytes = response_bytes;
      observer(rec);
    }
    if (write_failed) break;
    if (early) {
      co_await Lingering(io);
      break;
    }
    if (!keep_alive) break;
  }
  error_code ignored;
  if constexpr (std::is_same_v<Stream, asio::ssl::stream<tcp::socket>>) {
    Arm(io, std::chrono::milliseconds(1000));
    co_await io->stream.async_shutdown(kTuple);
    Disarm(io);
  }
  Lowest(io->stream).shutdown(tcp::socket::shutdown_both, ignored);
  Lowest(io->stream).close(ignored);
}

Server::Server(ServerOptions options, const Router& router, Authenticator* authenticator,
               RequestObserver observer, const Clock& clock, Random& random)
    : impl_(std::make_unique<Impl>(std::move(options), router, authenticator, std::move(observer),
                                   clock, random)) {}

Server::~Server() { Shutdown(); }

Status Server::Start() {
  Impl& s = *impl_;
  if (s.started.exchange(true)) return FailedPreconditionError("server already started");
  try {
    if (!s.options.tls_cert_file.empty() || !s.options.tls_key_file.empty()) {
      if (s.options.tls_cert_file.empty() || s.options.tls_key_file.empty()) {
        return InvalidArgumentError("TLS needs both a certificate and a key file");
      }
      s.ssl.emplace(asio::ssl::context::tls_server);
      s.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1);
      error_code ec;
      s.ssl->use_certificate_chain_file(s.options.tls_cert_file, ec);
      if (ec) return InvalidArgumentError("cannot load TLS certificate " + s.options.tls_cert_file);
      s.ssl->use_private_key_file(s.options.tls_key_file, asio::ssl::context::pem, ec);
      if (ec) return InvalidArgumentError("cannot load TLS key " + s.options.tls_key_file);
    }
    error_code ec;
    auto address = asio::ip::make_address(s.options.host, ec);
    if (ec) return InvalidArgumentError("listen host must be an IP address: " + s.options.host);
    tcp::endpoint ep(address, s.options.port);
    s.acceptor.open(ep.protocol(), ec);
    if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s.acceptor.bind(ep, ec);
    if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + s.options.host + ":" +
                              std::to_string(s.options.port) + ": " + ec.message());
    }
    s.bound_port = s.acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("cannot start the server: ") + e.what());
  }
  for (auto& ioc : s.iocs) s.work.push_back(asio::make_work_guard(*ioc));
  asio::co_spawn(s.acceptor_strand, s.Accept(), asio::detached);
  for (auto& ioc : s.iocs) s.threads.emplace_back([c = ioc.get()] { c->run(); });
  s.running = true;
  return OkStatus();
}

uint16_t Server::port() const { return impl_->bound_port; }
bool Server::tls() const { return impl_->ssl.has_value(); }
int Server::threads() const { return impl_->thread_count; }

void Server::Shutdown() {
  Impl& s = *impl_;
  {
    MutexLock lock(s.mu);
    if (s.shut_down) return;
    s.shut_down = true;
  }
  s.stopping = true;
  // Only a server whose threads run can close its acceptor on the acceptor's strand; one whose
  // Start() failed has nothing to drain.
  if (s.running) {
    std::promise<void> closed;
    asio::post(s.acceptor_strand, [&s, &closed] {
      error_code ignored;
      s.acceptor.close(ignored);
      closed.set_value();
    });
    closed.get_future().wait();
  }
  MutexLock lock(s.mu);
  for (auto& [id, stop] : s.stoppers) stop();
  bool drained = s.cv.WaitFor(s.mu, s.options.shutdown_timeout,
                              [&s]() REQUIRES(s.mu) { return s.active == 0; });
  lock.Unlock();
  if (!drained) {
    // In-flight requests did not finish in time: stop anyway. Their sockets close when the
    // io_context is destroyed.
  }
  s.work.clear();
  for (auto& ioc : s.iocs) ioc->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

}  // namespace custody::http
