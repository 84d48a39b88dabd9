// In-process tests of Server and HttpClient over loopback (port 0).
#include "http/server.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/utf8.h"
#include "http/client.h"
#include "http/testing/self_signed.h"

namespace custody::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

class FakeAuth : public Authenticator {
 public:
  Result<Principal> Authenticate(std::string_view token) override {
    if (token == "good-admin") return Principal{"t1", "admin"};
    if (token == "good-reader") return Principal{"t2", "reader"};
    return UnauthenticatedError("unknown token");
  }
};

struct Fixture {
  explicit Fixture(ServerOptions o = {}) {
    o.port = 0;
    o.threads = 2;
    Route echo;
    echo.method = "POST";
    echo.pattern = "/echo";
    echo.content_type = "application/json";
    echo.handler = [](Request& r, Responder respond) { respond(Response::Json(200, r.body)); };
    EXPECT_TRUE(router.Add(echo).ok());
    Route later;  // answers from another thread, after the handler returned
    later.method = "GET";
    later.pattern = "/later/{n}";
    later.handler = [](Request& r, Responder respond) {
      std::thread([n = r.params["n"], respond] {
        respond(Response::Text(200, "later " + n));
      }).detach();
    };
    EXPECT_TRUE(router.Add(later).ok());
    Route admin;
    admin.method = "POST";
    admin.pattern = "/admin";
    admin.auth = AuthRequirement::AnyOf({"admin"});
    admin.handler = [](Request& r, Responder respond) {
      respond(Response::Text(200, "hello " + r.principal->id));
    };
    EXPECT_TRUE(router.Add(admin).ok());
    Route sse;
    sse.method = "GET";
    sse.pattern = "/events";
    sse.handler = [](Request&, Responder respond) {
      Response r;
      r.sse = [](std::shared_ptr<SseWriter> w) {
        std::thread([w] {
          for (int i = 0; i < 3; ++i)
            w->Send("tick", "n=" + std::to_string(i) + "\nend", std::to_string(i));
          w->Close();
        }).detach();
      };
      respond(std::move(r));
    };
    EXPECT_TRUE(router.Add(sse).ok());
    server = std::make_unique<Server>(
        o, router, &auth,
        [this](const RequestRecord& rec) {
          std::lock_guard<std::mutex> lock(mu);
          routes.push_back(std::string(rec.route));
        },
        clock, random);
    Status st = server->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  BlockingHttpClient Client(ClientOptions o = {}) {
    return BlockingHttpClient("127.0.0.1", server->port(), o);
  }

  SystemClock clock;
  SystemRandom random;
  FakeAuth auth;
  Router router;
  std::mutex mu;
  std::vector<std::string> routes;  // guarded by mu
  std::unique_ptr<Server> server;
};

ClientRequest Post(std::string target, std::string body, std::string ct = "application/json") {
  ClientRequest r;
  r.method = "POST";
  r.target = std::move(target);
  r.body = std::move(body);
  if (!ct.empty()) r.headers.Set("content-type", ct);
  return r;
}

ClientRequest Get(std::string target) {
  ClientRequest r;
  r.target = std::move(target);
  return r;
}

// Reads from a raw socket until `pred(data)` holds or the peer closes.
std::string ReadUntil(tcp::socket& s, const std::function<bool(const std::string&)>& pred) {
  std::string data;
  char buf[4096];
  boost::system::error_code ec;
  while (!pred(data)) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    data.append(buf, n);
  }
  return data;
}

size_t Count(const std::string& s, std::string_view needle) {
  size_t n = 0;
  for (size_t i = s.find(needle); i != std::string::npos; i = s.find(needle, i + 1)) ++n;
  return n;
}

TEST(Server, KeepAliveEchoAndRequestIds) {
  Fixture f;
  auto c = f.Client();
  for (int i = 0; i < 3; ++i) {
    auto r = c.Send(Post("/echo", "{\"i\":" + std::to_string(i) + "}"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"i\":" + std::to_string(i) + "}");
    EXPECT_EQ(r->headers.Get("x-request-id").value_or("").size(), 36u);
  }
  ClientRequest req = Get("/later/7");
  req.headers.Set("X-Request-ID", "caller-id-1");
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "later 7");
  EXPECT_EQ(r->headers.Get("x-request-id").value_or(""), "caller-id-1");
  req.headers.Set("X-Request-ID", "bad id with spaces");
  r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->headers.Get("x-request-id").value_or(""), "bad id with spaces");
}

// An answer from another thread is sent by that thread (plain TCP, few requests waiting): one
// larger than the socket takes at once leaves the rest to the connection, which writes it before
// reading the next request; a HEAD answer keeps its length and has no body.
TEST(Server, AnswersFromAnotherThreadArriveWholeAndInOrder) {
  Fixture f;
  // More than a send buffer (4 MiB at most here), and than Beast's default body limit (8 MB),
  // which the client replaces by its own (64 MiB).
  const std::string big(8 * 1024 * 1024 + 7, 'x');
  Route bulk;
  bulk.method = "GET";
  bulk.pattern = "/bulk";
  bulk.handler = [&big](Request&, Responder respond) {
    std::thread([&big, respond] { respond(Response::Text(200, big)); }).detach();
  };
  ASSERT_TRUE(f.router.Add(bulk).ok());
  auto c = f.Client();
  for (int i = 0; i < 3; ++i) {
    auto r = c.Send(Get("/bulk"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.size(), big.size());
    EXPECT_TRUE(r->body == big);
    auto small = c.Send(Get("/later/" + std::to_string(i)));
    ASSERT_TRUE(small.ok()) << small.status().ToString();
    EXPECT_EQ(small->body, "later " + std::to_string(i));
  }
  // HEAD (served by the GET route) over a raw socket, as the client would wait for a body, then
  // a GET after it.
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
  asio::write(s, asio::buffer(std::string("HEAD /later/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /later/2 HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got = ReadUntil(s, [](const std::string& d) { return d.find("later 2") != d.npos; });
  EXPECT_EQ(Count(got, "HTTP/1.1 200 OK"), 2u) << got;
  EXPECT_EQ(Count(got, "Content-Length: 7\r\n"), 2u) << got;
  EXPECT_EQ(got.find("later 1"), std::string::npos) << got;
  EXPECT_NE(got.find("later 2"), std::string::npos) << got;
}

TEST(Server, NotFoundMethodNotAllowedAndContentType) {
  Fixture f;
  auto c = f.Client();
  auto r = c.Send(Get("/nope"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("\"code\":\"not_found\""), std::string::npos);
  r = c.Send(Get("/echo"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->headers.Get("allow").value_or(""), "POST");
  r = c.Send(Post("/echo", "{}", "text/plain"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 415);
  r = c.Send(Post("/echo", "{}", "Application/JSON; charset=utf-8"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(Server, AuthenticationAndRoles) {
  Fixture f;
  auto c = f.Client();
  auto r = c.Send(Post("/admin", "", ""));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(
      r->headers.Get("www-authenticate").value_or("").starts_with("Bearer realm=\"custody\""));
  ClientRequest req = Post("/admin", "", "");
  req.headers.Set("authorization", "Bearer wrong");
  r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  req.headers.Set("authorization", "Bearer good-reader");
  r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("permission_denied"), std::string::npos);
  req.headers.Set("authorization", "bearer good-admin");
  r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello t1");
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  Fixture f;
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
  std::string reqs;
  // The first answer comes from another thread later; the second is immediate.
  reqs += "GET /later/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  reqs +=
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 5\r\n\r\n[1,2]";
  reqs += "GET /later/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(reqs));
  std::string all = ReadUntil(s, [](const std::string&) { return false; });
  size_t a = all.find("later 1"), b = all.find("[1,2]"), d = all.find("later 3");
  ASSERT_NE(a, std::string::npos) << all;
  ASSERT_NE(b, std::string::npos) << all;
  ASSERT_NE(d, std::string::npos) << all;
  EXPECT_LT(a, b);
  EXPECT_LT(b, d);
  EXPECT_EQ(Count(all, "HTTP/1.1 200"), 3u);
}

TEST(Server, OversizedBodiesAndHeadersAreRefused) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  o.max_header_bytes = 2000;
  Fixture f(o);
  auto c = f.Client();
  auto r = c.Send(Post("/echo", "[" + std::string(5000, ' ') + "]"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("invalid_argument"), std::string::npos);
  ClientRequest big = Get("/later/1");
  big.headers.Set("x-big", std::string(4000, 'a'));
  r = c.Send(big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 431);
  // Chunked bodies are limited too.
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
  std::string chunked =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "190\r\n" + std::string(400, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  asio::write(s, asio::buffer(chunked));
  std::string resp =
      ReadUntil(s, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 413")) << resp;
  // The server still answers others.
  r = f.Client().Send(Post("/echo", "{}"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(Server, MalformedRequestGets400) {
  Fixture f;
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
  asio::write(s, asio::buffer(std::string("GARBAGE\x01 / HTTP/9\r\n\r\n")));
  std::string resp = ReadUntil(s, [](const std::string&) { return false; });
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 400")) << resp;
  EXPECT_NE(resp.find("\"request_id\""), std::string::npos);
}

// Raw bytes outside ASCII in a target are refused before any route sees them, and whatever an
// error message quotes, the error body is JSON.
TEST(Server, NonAsciiTargetsAreRefusedAndErrorBodiesStayJson) {
  Fixture f;
  for (std::string target : {std::string("/later/\xff"), std::string("/later/\xc3\xa9")}) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
    asio::write(
        s, asio::buffer("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    std::string resp = ReadUntil(s, [](const std::string&) { return false; });
    EXPECT_TRUE(resp.starts_with("HTTP/1.1 400")) << resp;
    std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
    EXPECT_TRUE(IsValidUtf8(body)) << body;
    EXPECT_NE(body.find("printable ASCII"), std::string::npos) << body;
  }
  // Percent-encoded, the same bytes reach the route.
  auto c = f.Client();
  auto r = c.Send(Get("/later/%FF"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "later %FF");
  // An error message quoting invalid UTF-8 still gives a JSON body.
  std::string b = ErrorBody(NotFoundError("no trace \xff\xfe here"), "rid");
  EXPECT_TRUE(IsValidUtf8(b)) << b;
  EXPECT_NE(b.find("no trace \xEF\xBF\xBD\xEF\xBF\xBD here"), std::string::npos) << b;
}

// Two credentials in one request: which is meant is a guess, so neither is taken.
TEST(Server, TwoAuthorizationHeadersAreRefused) {
  Fixture f;
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
  asio::write(s, asio::buffer(std::string("POST /admin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                          "Authorization: Bearer good-admin\r\n"
                                          "authorization: Bearer wrong\r\n"
                                          "Connection: close\r\n\r\n")));
  std::string resp = ReadUntil(s, [](const std::string&) { return false; });
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 400")) << resp;
  EXPECT_NE(resp.find("more than one Authorization header"), std::string::npos) << resp;
  // One is fine.
  ClientRequest req = Post("/admin", "", "");
  req.headers.Set("authorization", "Bearer good-admin");
  auto c = f.Client();
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(Server, SlowLorisIsDroppedWhileOthersAreServed) {
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  Fixture f(o);
  asio::io_context io;
  std::vector<tcp::socket> slow;
  for (int i = 0; i < 8; ++i) {
    slow.emplace_back(io);
    slow.back().connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
    asio::write(slow.back(), asio::buffer(std::string("GET /later/1 HTTP/1.1\r\nHost: x\r\n")));
  }
  // Others are served while the slow ones hold their connections open.
  auto c = f.Client();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Send(Post("/echo", "{}"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
  // Each slow client gets a 408 once its header deadline passes, then the connection closes.
  for (auto& s : slow) {
    std::string resp = ReadUntil(s, [](const std::string&) { return false; });
    EXPECT_TRUE(resp.starts_with("HTTP/1.1 408")) << resp;
  }
}

TEST(Server, ServerSentEvents) {
  Fixture f;
  auto c = f.Client();
  std::vector<SseEvent> events;
  auto r = c.Stream(Get("/events"), [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers.Get("content-type").value_or(""), "text/event-stream");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].event, "tick");
  EXPECT_EQ(events[1].id, "1");
  EXPECT_EQ(events[1].data, "n=1\nend");
  // Each event is bounded by max_response_bytes, for a long-lived stream too: an event larger
  // than that ends the stream with an error instead of growing without end.
  ClientOptions tiny;
  tiny.max_response_bytes = 4;
  auto small = f.Client(tiny);
  int seen = 0;
  auto big = small.Stream(Get("/events"), [&](const SseEvent&) {
    ++seen;
    return true;
  });
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(big.status().message().find("too large"), std::string::npos) << big.status().ToString();
}

TEST(Client, ExchangeReadsAJsonAnswerWholeOverKeepAlive) {
  Fixture f;
  auto c = f.Client();
  int events = 0;
  for (int i = 0; i < 2; ++i) {
    auto r = c.Exchange(Post("/echo", "{\"i\":" + std::to_string(i) + "}"), [&](const SseEvent&) {
      ++events;
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(r->event_stream);
    EXPECT_EQ(r->body, "{\"i\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(events, 0);
  // A non-2xx answer is a result too, read the same way.
  auto r = c.Exchange(Get("/nope"), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("not_found"), std::string::npos);
}

TEST(Client, ExchangeDeliversAnEventStreamEventByEvent) {
  Fixture f;
  auto c = f.Client();
  std::vector<SseEvent> events;
  auto r = c.Exchange(Get("/events"), [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->event_stream);
  EXPECT_TRUE(r->body.empty());
  ASSERT_EQ(events.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].event, "tick");
    EXPECT_EQ(events[i].id, std::to_string(i));
    EXPECT_EQ(events[i].data, "n=" + std::to_string(i) + "\nend");
  }
  // The same client goes on with a JSON answer (on a new connection).
  auto j = c.Exchange(Post("/echo", "[1]"), nullptr);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->body, "[1]");
}

TEST(Client, ExchangeStopsReadingWhenTheCallbackSaysSo) {
  Fixture f;
  auto c = f.Client();
  std::vector<std::string> ids;
  auto r = c.Exchange(Get("/events"), [&](const SseEvent& e) {
    ids.push_back(e.id);
    return false;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->event_stream);
  EXPECT_EQ(ids, std::vector<std::string>{"0"});
  auto j = c.Exchange(Post("/echo", "[2]"), nullptr);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->body, "[2]");
}

TEST(Client, ExchangeRefusesAnOversizedBodyOrEvent) {
  Fixture f;
  ClientOptions small;
  small.max_response_bytes = 16;
  auto c = f.Client(small);
  auto r = c.Exchange(Post("/echo", "[\"" + std::string(100, 'x') + "\"]"), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  int events = 0;
  ClientOptions tiny;
  tiny.max_response_bytes = 4;
  auto big = f.Client(tiny);
  auto e = big.Exchange(Get("/events"), [&](const SseEvent&) {
    ++events;
    return true;
  });
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(e.status().message().find("too large"), std::string::npos) << e.status().ToString();
  EXPECT_EQ(events, 0);
  // Within the bound the same client is fine.
  auto ok = c.Exchange(Post("/echo", "[3]"), nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body, "[3]");
}

// Producers may keep an SSE writer or a Responder after the server is gone (CI once caught a
// use-after-free here): using them then must be a harmless no-op, whatever the interleaving.
TEST(Server, StreamProducersAndRespondersMayOutliveTheServer) {
  for (int round = 0; round < 20; ++round) {
    std::promise<std::shared_ptr<SseWriter>> writer_promise;
    std::promise<Responder> responder_promise;
    std::atomic<bool> stop{false};
    std::thread producer;
    {
      Fixture f;
      Route forever;
      forever.method = "GET";
      forever.pattern = "/forever";
      forever.handler = [&](Request&, Responder respond) {
        Response r;
        r.sse = [&](std::shared_ptr<SseWriter> w) { writer_promise.set_value(w); };
        respond(std::move(r));
      };
      ASSERT_TRUE(f.router.Add(forever).ok());
      Route never;
      never.method = "GET";
      never.pattern = "/never";
      never.handler = [&](Request&, Responder respond) {
        responder_promise.set_value(std::move(respond));
      };
      ASSERT_TRUE(f.router.Add(never).ok());
      asio::io_context io;
      tcp::socket s1(io), s2(io);
      s1.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
      s2.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
      asio::write(s1, asio::buffer(std::string("GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")));
      asio::write(s2, asio::buffer(std::string("GET /never HTTP/1.1\r\nHost: x\r\n\r\n")));
      auto writer = writer_promise.get_future().get();
      auto respond = responder_promise.get_future().get();
      producer = std::thread([&stop, writer, respond] {
        while (!stop.load()) {
          writer->Send("tick", "x", "");
          respond(Response::Text(200, "late"));
        }
        // After the server is gone: both are no-ops.
        EXPECT_FALSE(writer->Send("tick", "x", ""));
        respond(Response::Text(200, "later still"));
        writer->Close();
      });
      ReadUntil(s1,
                [](const std::string& d) { return d.find("event: tick") != std::string::npos; });
    }  // the server is destroyed while the producer is still sending
    stop = true;
    producer.join();
  }
}

TEST(Server, GracefulShutdownFinishesInFlightRequests) {
  std::promise<void> entered;
  std::shared_ptr<Responder> held = std::make_shared<Responder>();
  Fixture f;
  Route hold;
  hold.method = "GET";
  hold.pattern = "/hold";
  // Registered after Start(): only safe here because no request has been routed yet.
  hold.handler = [&](Request&, Responder respond) {
    *held = std::move(respond);
    entered.set_value();
  };
  ASSERT_TRUE(f.router.Add(hold).ok());
  std::optional<Result<ClientResponse>> got;
  std::thread client([&] { got.emplace(f.Client().Send(Get("/hold"))); });
  entered.get_future().wait();
  std::thread stopper([&] { f.server->Shutdown(); });
  // New connections are refused once shutdown begins (poll, bounded); the held request still
  // completes.
  bool refused = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       !refused && std::chrono::steady_clock::now() < deadline;) {
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()}, ec);
    refused = static_cast<bool>(ec);
  }
  EXPECT_TRUE(refused);
  (*held)(Response::Text(200, "done"));
  stopper.join();
  client.join();
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ((*got)->body, "done");
  EXPECT_EQ((*got)->headers.Get("connection").value_or(""), "close");
}

TEST(Server, AddressInUseIsAnErrorAndDestructionDoesNotHang) {
  Fixture f;
  ServerOptions o;
  o.port = f.server->port();
  Server second(o, f.router, nullptr, nullptr, f.clock, f.random);
  Status st = second.Start();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  ServerOptions bad;
  bad.host = "not-an-ip";
  Server third(bad, f.router, nullptr, nullptr, f.clock, f.random);
  EXPECT_EQ(third.Start().code(), StatusCode::kInvalidArgument);
}

// A self-signed P-256 certificate for `host` (an IP address or a DNS name), made with the
// OpenSSL API.
void MakeSelfSigned(const std::string& cert_path, const std::string& key_path,
                    const std::string& host = "127.0.0.1") {
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  ASSERT_TRUE(http::testing::WriteSelfSignedCertificate(cert_path, key_path, host,
                                                        (not_ip ? "DNS:" : "IP:") + host));
}

TEST(Server, Tls) {
  auto dir = std::filesystem::temp_directory_path() / ("custody_tls_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  MakeSelfSigned(cert, key);
  ServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  Fixture f(o);
  ASSERT_TRUE(f.server->tls());
  ClientOptions co;
  co.tls = true;
  co.ca_file = cert;
  auto c = f.Client(co);
  for (int i = 0; i < 2; ++i) {
    auto r = c.Send(Post("/echo", "[true]"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "[true]");
  }
  // A client that does not trust the certificate fails the handshake.
  ClientOptions tls_only;
  tls_only.tls = true;
  auto untrusting = f.Client(tls_only);
  auto bad = untrusting.Send(Get("/later/1"));
  EXPECT_FALSE(bad.ok());
  // Plain HTTP to a TLS port gets no HTTP answer.
  auto plain = f.Client();
  auto p = plain.Send(Get("/later/1"));
  EXPECT_TRUE(!p.ok() || p->status != 200);
  std::filesystem::remove_all(dir);
}

// Close() while an Exchange reads an event stream over TLS (where the pending read still uses
// the stream object) fails that Exchange; the same client then serves the next request.
TEST(Client, CloseDuringAnExchangeFailsItAndTheClientGoesOn) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_tls_close_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  MakeSelfSigned(cert, key);
  std::mutex writers_mu;
  std::vector<std::shared_ptr<SseWriter>> writers;  // guarded by writers_mu
  ServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  Fixture f(o);
  Route forever;
  forever.method = "GET";
  forever.pattern = "/forever";
  // Registered after Start(): only safe here because no request has been routed yet.
  forever.handler = [&](Request&, Responder respond) {
    Response r;
    r.sse = [&](std::shared_ptr<SseWriter> w) {
      w->Send("tick", "first", "");
      std::lock_guard lock(writers_mu);
      writers.push_back(std::move(w));  // never closed: the stream stays open
    };
    respond(std::move(r));
  };
  ASSERT_TRUE(f.router.Add(forever).ok());
  ClientOptions co;
  co.tls = true;
  co.ca_file = cert;
  for (int round = 0; round < 3; ++round) {
    asio::io_context io;
    HttpClient client(io.get_executor(), "127.0.0.1", f.server->port(), co);
    std::optional<Result<ClientResponse>> streamed, after;
    int events = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          streamed.emplace(co_await client.Exchange(Get("/forever"), [&](const SseEvent&) {
            ++events;
            asio::post(io, [&] { client.Close(); });
            return true;
          }));
          after.emplace(co_await client.Exchange(Post("/echo", "[4]"), nullptr));
        },
        asio::detached);
    io.run();
    EXPECT_EQ(events, 1);
    ASSERT_TRUE(streamed);
    ASSERT_FALSE(streamed->ok());
    EXPECT_EQ(streamed->status().code(), StatusCode::kUnavailable);
    ASSERT_TRUE(after);
    ASSERT_TRUE(after->ok()) << after->status().ToString();
    EXPECT_EQ((*after)->body, "[4]");
  }
  std::filesystem::remove_all(dir);
}

// connect_addresses: the client connects to the address it was given and never resolves the
// host (here a name no resolver knows), which still names the server in the Host header, in SNI
// and in the certificate check.
TEST(Client, ConnectAddressesReplaceResolutionButTheHostNameIsStillVerified) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_tls_addr_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  MakeSelfSigned(cert, key, "metadata.test");
  ServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  Fixture f(o);
  Route host;
  host.method = "GET";
  host.pattern = "/host";
  // Registered after Start(): only safe here because no request has been routed yet.
  host.handler = [](Request& r, Responder respond) {
    respond(Response::Text(200, std::string(r.headers.Get("host").value_or(""))));
  };
  ASSERT_TRUE(f.router.Add(host).ok());
  ClientOptions co;
  co.tls = true;
  co.ca_file = cert;
  co.connect_addresses = {"127.0.0.1"};
  BlockingHttpClient named("metadata.test", f.server->port(), co);
  auto r = named.Send(Get("/host"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "metadata.test:" + std::to_string(f.server->port()));

  // The certificate is checked against the host name, not the address connected to.
  BlockingHttpClient other("other.test", f.server->port(), co);
  EXPECT_FALSE(other.Send(Get("/host")).ok());
  // Without connect_addresses the name is resolved, and .test names never resolve.
  ClientOptions resolving = co;
  resolving.connect_addresses.clear();
  BlockingHttpClient unresolved("metadata.test", f.server->port(), resolving);
  auto u = unresolved.Send(Get("/host"));
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("cannot resolve"), std::string::npos);
  // A connect address that is not an IP address is refused before any connection.
  ClientOptions bad = co;
  bad.connect_addresses = {"localhost"};
  BlockingHttpClient invalid("metadata.test", f.server->port(), bad);
  EXPECT_EQ(invalid.Send(Get("/host")).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

// A body over max_response_bytes is refused, and IsResponseTooLarge tells that refusal apart
// from other failures.
TEST(Client, ResponseLargerThanTheLimitIsRecognised) {
  Fixture f;
  ClientOptions small;
  small.max_response_bytes = 4;
  auto c = f.Client(small);
  auto big = c.Send(Post("/echo", "[true,true]"));
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(IsResponseTooLarge(big.status())) << big.status().ToString();
  auto fits = c.Send(Post("/echo", "[1]"));
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(fits->body, "[1]");
  // Nobody listening: unavailable, but not "too large".
  uint16_t port = f.server->port();
  f.server->Shutdown();
  auto gone = BlockingHttpClient("127.0.0.1", port, small).Send(Get("/later/1"));
  ASSERT_FALSE(gone.ok());
  EXPECT_FALSE(IsResponseTooLarge(gone.status()));
}

}  // namespace
}  // namespace custody::http
