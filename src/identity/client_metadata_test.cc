// ClientMetadataFetcher against real local servers: HTTPS (a certificate for client.test, which
// the test's resolver maps to 127.0.0.1) and plain HTTP on loopback (the development switch).
// Plus the pure rules: address classes, client_id URLs, documents and cache lifetimes.
#include "identity/client_metadata.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "common/random.h"
#include "http/server.h"
#include "http/testing/self_signed.h"

namespace custody::identity {
namespace {

using std::chrono::seconds;

// A self-signed P-256 certificate whose subjectAltName is `san` (OpenSSL's syntax).
void MakeCertificate(const std::string& cert_path, const std::string& key_path,
                     const std::string& san) {
  ASSERT_TRUE(http::testing::WriteSelfSignedCertificate(cert_path, key_path, "client.test", san));
}

std::string Document(const std::string& client_id, const std::string& extra = "") {
  return R"({"client_id":")" + client_id +
         R"(","client_name":"Example Tool","redirect_uris":["https://app.example/callback"])" +
         extra + "}";
}

// A document server: GET /{name} answers what Set(name, …) said, counting requests per name.
class DocumentServer {
 public:
  explicit DocumentServer(bool tls) : tls_(tls) {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_cimd_" + std::to_string(::getpid()) + "_" + std::to_string(++serial_));
    std::filesystem::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    http::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    o.shutdown_timeout = std::chrono::milliseconds(2000);
    if (tls) {
      std::string key = (dir_ / "key.pem").string();
      MakeCertificate(cert_, key, "DNS:client.test,IP:127.0.0.1");
      o.tls_cert_file = cert_;
      o.tls_key_file = key;
    }
    http::Route route;
    route.method = "GET";
    route.pattern = "/{name}";
    route.handler = [this](http::Request& r, http::Responder respond) {
      std::unique_lock lock(mu_);
      std::string name = r.params["name"];
      ++hits_[name];
      if (held_names_.count(name) != 0) {
        held_.emplace_back(name, std::move(respond));
        return;
      }
      auto it = answers_.find(name);
      http::Response resp =
          it == answers_.end() ? http::Response::Text(404, "not found") : it->second();
      lock.unlock();
      respond(std::move(resp));
    };
    EXPECT_TRUE(router_.Add(route).ok());
    server_ = std::make_unique<http::Server>(o, router_, nullptr, nullptr, clock_, random_);
    Status st = server_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  ~DocumentServer() {
    std::vector<std::pair<std::string, http::Responder>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [name, r] : held) r(http::Response::Text(503, "gone"));
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  // The URL of document `name`: https://client.test:PORT/name, or http://127.0.0.1:PORT/name.
  std::string Url(const std::string& name) const {
    return (tls_ ? "https://client.test:" : "http://127.0.0.1:") + std::to_string(server_->port()) +
           "/" + name;
  }
  uint16_t port() const { return server_->port(); }
  const std::string& cert() const { return cert_; }

  // `name` answers 200 with `body` (as JSON) and the given headers.
  void Set(const std::string& name, std::string body,
           std::vector<std::pair<std::string, std::string>> headers = {},
           std::string content_type = "application/json", int status = 200) {
    std::lock_guard lock(mu_);
    answers_[name] = [=] {
      http::Response r = http::Response::Text(status, body, content_type);
      for (const auto& [k, v] : headers) r.headers.Set(k, v);
      return r;
    };
  }
  // A valid document for the URL of `name`.
  void SetDocument(const std::string& name,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    Set(name, Document(Url(name)), std::move(headers));
  }
  // `name` never answers (until the server goes).
  void Hold(const std::string& name) {
    std::lock_guard lock(mu_);
    held_names_.insert(name);
  }
  // `name` answers again as Set said, also the requests held so far.
  void Release(const std::string& name) {
    std::vector<std::pair<std::string, http::Responder>> answer;
    std::function<http::Response()> make;
    {
      std::lock_guard lock(mu_);
      held_names_.erase(name);
      make = answers_.at(name);
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->first == name) {
          answer.push_back(std::move(*it));
          it = held_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& [n, r] : answer) r(make());
  }
  int hits(const std::string& name) {
    std::lock_guard lock(mu_);
    return hits_[name];
  }

 private:
  static inline int serial_ = 0;
  bool tls_;
  std::filesystem::path dir_;
  std::string cert_;
  SystemClock clock_;
  SystemRandom random_;
  http::Router router_;
  std::mutex mu_;
  std::map<std::string, std::function<http::Response()>> answers_;  // guarded by mu_
  std::map<std::string, int> hits_;                                 // guarded by mu_
  std::set<std::string> held_names_;                                // guarded by mu_
  std::vector<std::pair<std::string, http::Responder>> held_;       // guarded by mu_
  std::unique_ptr<http::Server> server_;
};

// Options for fetching from `server`: its certificate trusted, client.test resolving to
// 127.0.0.1, loopback addresses allowed (the server is on loopback).
ClientMetadataOptions OptionsFor(const DocumentServer& server, const Clock& clock) {
  ClientMetadataOptions o;
  o.clock = &clock;
  o.ca_file = server.cert();
  o.allow_loopback_addresses = true;
  o.resolve = [](const std::string& host) -> Result<std::vector<std::string>> {
    if (host == "client.test") return std::vector<std::string>{"127.0.0.1"};
    return NotFoundError("unknown host");
  };
  return o;
}

void ExpectRefused(const Result<ClientMetadata>& r, StatusCode code, std::string_view words) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
}

// --- Fetching from real servers ---------------------------------------------------------

TEST(ClientMetadataFetch, GoodDocumentOverHttps) {
  DocumentServer server(/*tls=*/true);
  FakeClock clock;
  std::string url = server.Url("tool.json");
  server.Set(
      "tool.json",
      Document(url, R"(,"client_uri":"https://app.example","logo_uri":"https://app.example/l.png",
                 "scope":"github/read","grant_types":["authorization_code","refresh_token"],
                 "response_types":["code"],"token_endpoint_auth_method":"private_key_jwt",
                 "jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]},
                 "software_id":"ignored")"),
      {{"cache-control", "max-age=300"}});
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  auto m = fetcher.Fetch(url);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->client_id, url);
  EXPECT_EQ(m->client_name, "Example Tool");
  EXPECT_EQ(m->redirect_uris, std::vector<std::string>{"https://app.example/callback"});
  EXPECT_EQ(m->client_uri, "https://app.example");
  EXPECT_EQ(m->logo_uri, "https://app.example/l.png");
  EXPECT_EQ(m->scope, "github/read");
  EXPECT_EQ(m->grant_types, (std::vector<std::string>{"authorization_code", "refresh_token"}));
  EXPECT_EQ(m->response_types, std::vector<std::string>{"code"});
  EXPECT_EQ(m->token_endpoint_auth_method, "private_key_jwt");
  EXPECT_NE(m->jwks.find("\"kty\":\"EC\""), std::string::npos);
  EXPECT_EQ(m->fetched_at, clock.Now());
  EXPECT_EQ(m->expires_at, clock.Now() + seconds(300));
  EXPECT_EQ(server.hits("tool.json"), 1);
}

TEST(ClientMetadataFetch, AsyncFormAnswersOnceAndConcurrentRequestsShareOneFetch) {
  DocumentServer server(true);
  FakeClock clock;
  server.SetDocument("shared.json");
  server.Hold("shared.json");
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, good = 0;
  for (int i = 0; i < 3; ++i) {
    fetcher.FetchAsync(server.Url("shared.json"), [&](Result<ClientMetadata> r) {
      std::lock_guard lock(mu);
      ++answered;
      if (r.ok()) ++good;
      cv.notify_all();
    });
  }
  // All three are waiting (the server holds the document back), on one fetch.
  server.Release("shared.json");
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return answered == 3; });
  EXPECT_EQ(good, 3);
  EXPECT_EQ(server.hits("shared.json"), 1);
  lock.unlock();
  // Once cached, the callback runs before FetchAsync returns.
  bool inline_answer = false;
  fetcher.FetchAsync(server.Url("shared.json"),
                     [&](Result<ClientMetadata> r) { inline_answer = r.ok(); });
  EXPECT_TRUE(inline_answer);
}

TEST(ClientMetadataFetch, ConcurrentFetchesAreBounded) {
  DocumentServer server(true);
  FakeClock clock;
  server.SetDocument("a.json");
  server.SetDocument("b.json");
  server.Hold("a.json");
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.max_concurrent_fetches = 1;
  ClientMetadataFetcher fetcher(o);
  std::promise<Result<ClientMetadata>> a;
  fetcher.FetchAsync(server.Url("a.json"),
                     [&](Result<ClientMetadata> r) { a.set_value(std::move(r)); });
  ExpectRefused(fetcher.Fetch(server.Url("b.json")), StatusCode::kUnavailable,
                "too many client metadata documents are being fetched");
  EXPECT_EQ(server.hits("b.json"), 0);
  server.Release("a.json");
  auto got = a.get_future().get();
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(fetcher.Fetch(server.Url("b.json")).ok());  // room again
}

TEST(ClientMetadataFetch, ClientIdMustEqualTheUrlExactly) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  server.Set("other.json", Document("https://client.test:" + std::to_string(server.port()) +
                                    "/someone-else.json"));
  ExpectRefused(fetcher.Fetch(server.Url("other.json")), StatusCode::kInvalidArgument,
                "client_id does not match");
  // The same URL spelled with a trailing slash is another URL (simple string comparison).
  server.Set("slash.json", Document(server.Url("slash.json") + "/"));
  ExpectRefused(fetcher.Fetch(server.Url("slash.json")), StatusCode::kInvalidArgument,
                "does not match");
  server.Set("none.json", R"({"redirect_uris":["https://app.example/cb"]})");
  ExpectRefused(fetcher.Fetch(server.Url("none.json")), StatusCode::kInvalidArgument,
                "has no client_id");
}

TEST(ClientMetadataFetch, DocumentLargerThanTheLimitIsRefused) {
  DocumentServer server(true);
  FakeClock clock;
  std::string url = server.Url("big.json");
  server.Set("big.json", Document(url, R"(,"padding":")" + std::string(6000, 'x') + "\""));
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  ExpectRefused(fetcher.Fetch(url), StatusCode::kInvalidArgument, "larger than 5120 bytes");
  // The limit is an option.
  ClientMetadataOptions roomy = OptionsFor(server, clock);
  roomy.max_document_bytes = 8192;
  ClientMetadataFetcher fits(roomy);
  EXPECT_TRUE(fits.Fetch(url).ok());
}

TEST(ClientMetadataFetch, ServerTooSlowHitsTheTimeLimit) {
  DocumentServer server(true);
  FakeClock clock;
  server.Hold("slow.json");
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.timeout = std::chrono::milliseconds(2000);  // ample for a loopback TLS fetch under load
  ClientMetadataFetcher fetcher(o);
  ExpectRefused(fetcher.Fetch(server.Url("slow.json")), StatusCode::kUnavailable,
                "not fetched within 2000 ms");
  EXPECT_EQ(server.hits("slow.json"), 1);
}

TEST(ClientMetadataFetch, NotFoundIsAnErrorAndErrorsAreNotCached) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  ExpectRefused(fetcher.Fetch(server.Url("missing.json")), StatusCode::kInvalidArgument,
                "answered HTTP 404");
  ExpectRefused(fetcher.Fetch(server.Url("missing.json")), StatusCode::kInvalidArgument,
                "answered HTTP 404");
  EXPECT_EQ(server.hits("missing.json"), 2);
  // Once the document exists it is served at once: the failure was not remembered.
  server.SetDocument("missing.json");
  EXPECT_TRUE(fetcher.Fetch(server.Url("missing.json")).ok());
}

TEST(ClientMetadataFetch, NotJsonIsRefused) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  server.Set("html.json", "<html><body>hello</body></html>", {}, "text/html");
  ExpectRefused(fetcher.Fetch(server.Url("html.json")), StatusCode::kInvalidArgument,
                "not served as JSON");
  server.Set("broken.json", R"({"client_id": "https://client.test/broken.json",)");
  ExpectRefused(fetcher.Fetch(server.Url("broken.json")), StatusCode::kInvalidArgument,
                "not valid JSON");
  server.Set("array.json", R"(["not", "an", "object"])");
  ExpectRefused(fetcher.Fetch(server.Url("array.json")), StatusCode::kInvalidArgument,
                "not an object");
  // A document that breaks a rule is not cached either.
  std::string url = server.Url("secret.json");
  server.Set("secret.json", Document(url, R"(,"token_endpoint_auth_method":"client_secret_post")"),
             {{"cache-control", "max-age=3600"}});
  ExpectRefused(fetcher.Fetch(url), StatusCode::kInvalidArgument, "token_endpoint_auth_method");
  ExpectRefused(fetcher.Fetch(url), StatusCode::kInvalidArgument, "token_endpoint_auth_method");
  EXPECT_EQ(server.hits("secret.json"), 2);
}

TEST(ClientMetadataFetch, UnreachableOrUntrustedServerIsUnavailable) {
  FakeClock clock;
  DocumentServer server(true);
  uint16_t closed_port = 0;
  std::string url;
  {
    DocumentServer gone(true);
    closed_port = gone.port();
    url = gone.Url("tool.json");
  }
  // Nobody listens there any more.
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  auto r = fetcher.Fetch(url);
  ExpectRefused(r, StatusCode::kUnavailable, "could not be fetched");
  EXPECT_EQ(r.status().message().find(std::to_string(closed_port)), std::string::npos)
      << "no internal detail: " << r.status().message();
  // A certificate nobody vouches for (the system store does not know the test's own).
  server.SetDocument("tool.json");
  ClientMetadataOptions untrusting = OptionsFor(server, clock);
  untrusting.ca_file.clear();
  ClientMetadataFetcher strict(untrusting);
  ExpectRefused(strict.Fetch(server.Url("tool.json")), StatusCode::kUnavailable,
                "connection or TLS failure");
  // The certificate must name the client_id's host: other.test resolves to the same server,
  // whose certificate names client.test and 127.0.0.1 only.
  ClientMetadataOptions other = OptionsFor(server, clock);
  other.resolve = [](const std::string&) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"127.0.0.1"};
  };
  ClientMetadataFetcher misnamed(other);
  ExpectRefused(
      misnamed.Fetch("https://other.test:" + std::to_string(server.port()) + "/tool.json"),
      StatusCode::kUnavailable, "connection or TLS failure");
}

TEST(ClientMetadataFetch, RedirectsAreNotFollowed) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  server.SetDocument("target.json");
  server.Set("moved.json", "", {{"location", server.Url("target.json")}}, "text/plain", 302);
  ExpectRefused(fetcher.Fetch(server.Url("moved.json")), StatusCode::kInvalidArgument,
                "redirect (HTTP 302); redirects are not followed");
  EXPECT_EQ(server.hits("moved.json"), 1);
  EXPECT_EQ(server.hits("target.json"), 0);
}

// A PNG's signature and the start of its IHDR chunk: what CheckLogoImage looks at.
const std::string kPng = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) + std::string(40, 'p');

TEST(ClientMetadataFetch, LogosAreImagesOfFourTypesWithinTheSizeLimitAndNeverRedirected) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.max_logo_bytes = 1024;
  ClientMetadataFetcher fetcher(o);
  server.Set("logo.png", kPng, {}, "image/png");
  auto logo = fetcher.FetchLogo(server.Url("logo.png"));
  ASSERT_TRUE(logo.ok()) << logo.status().ToString();
  EXPECT_EQ(logo->content_type, "image/png");
  EXPECT_EQ(logo->bytes, kPng);

  auto refused = [&](const std::string& name, std::string_view words) {
    auto r = fetcher.FetchLogo(server.Url(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
  };
  server.Set("logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>x()</script></svg>", {},
             "image/svg+xml");
  refused("logo.svg", "not served as image/png, image/jpeg, image/gif or image/webp");
  server.Set("page.png", "<html><script>x()</script></html>", {}, "image/png");
  refused("page.png", "not the image/png it claims");
  server.Set("big.png", kPng + std::string(2048, 'p'), {}, "image/png");
  refused("big.png", "larger than 1024 bytes");
  server.Set("moved.png", "", {{"location", server.Url("logo.png")}}, "text/plain", 302);
  refused("moved.png", "HTTP 302");
  refused("missing.png", "HTTP 404");
  EXPECT_EQ(server.hits("logo.png"), 1) << "the redirect was not followed";
  // The document's address rules: an http URL or a non-public host is not fetched at all.
  EXPECT_FALSE(
      fetcher.FetchLogo("http://client.test:" + std::to_string(server.port()) + "/logo.png").ok());
  o.allow_loopback_addresses = false;
  ClientMetadataFetcher strict(o);
  EXPECT_FALSE(strict.FetchLogo(server.Url("logo.png")).ok());
  EXPECT_EQ(server.hits("logo.png"), 1) << "a loopback host is refused before any connection";
}

TEST(ClientMetadataRules, LogoImages) {
  EXPECT_EQ(*CheckLogoImage("image/png", kPng), "image/png");
  EXPECT_EQ(*CheckLogoImage("IMAGE/PNG; charset=binary", kPng), "image/png");
  EXPECT_EQ(*CheckLogoImage("image/jpeg", "\xff\xd8\xff\xe0rest"), "image/jpeg");
  EXPECT_EQ(*CheckLogoImage("image/gif", "GIF89a..."), "image/gif");
  EXPECT_EQ(*CheckLogoImage("image/gif", "GIF87a..."), "image/gif");
  EXPECT_EQ(*CheckLogoImage("image/webp", std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)), "image/webp");
  for (const auto& [type, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"image/svg+xml", "<svg/>"},
           {"text/html", "<html>"},
           {"", kPng},
           {"image/jpg", "\xff\xd8\xff"},
           {"image/png", "GIF89a"},
           {"image/jpeg", kPng},
           {"image/webp", std::string("RIFF\x10\0\0\0WAVE", 12)},
           {"image/png", ""}}) {
    EXPECT_FALSE(CheckLogoImage(type, bytes).ok()) << type;
  }
}

TEST(ClientMetadataFetch, PlainHttpOnlyOnLoopbackWithTheDevelopmentSwitch) {
  DocumentServer server(/*tls=*/false);
  FakeClock clock;
  server.SetDocument("dev.json");
  std::string url = server.Url("dev.json");  // http://127.0.0.1:PORT/dev.json

  ClientMetadataOptions strict;
  strict.clock = &clock;
  ClientMetadataFetcher production(strict);
  ExpectRefused(production.Fetch(url), StatusCode::kInvalidArgument, "must be an https URL");
  EXPECT_EQ(server.hits("dev.json"), 0);

  ClientMetadataOptions dev;
  dev.clock = &clock;
  dev.allow_loopback_http = true;  // and nothing else: no allow_loopback_addresses
  ClientMetadataFetcher development(dev);
  auto m = development.Fetch(url);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->client_id, url);
  EXPECT_EQ(server.hits("dev.json"), 1);

  // localhost, through the system resolver, which must give loopback addresses only.
  std::string named = "http://localhost:" + std::to_string(server.port()) + "/named.json";
  server.Set("named.json", Document(named));
  auto n = development.Fetch(named);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->client_id, named);

  // A "localhost" that resolves elsewhere is not fetched over http, whatever else is allowed.
  ClientMetadataOptions odd = dev;
  odd.allow_private_addresses = true;
  odd.resolve = [](const std::string&) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"10.0.0.1"};
  };
  ClientMetadataFetcher odd_fetcher(odd);
  ExpectRefused(odd_fetcher.Fetch("http://localhost:8080/c.json"), StatusCode::kInvalidArgument,
                "a private address");
  // Even with the switch, http to a host that is not loopback is refused before any lookup.
  ExpectRefused(development.Fetch("http://client.example/dev.json"), StatusCode::kInvalidArgument,
                "must be an https URL");
  // And the switch does not open https to loopback addresses.
  DocumentServer tls(true);
  tls.SetDocument("x.json");
  ClientMetadataOptions dev_tls = dev;
  dev_tls.ca_file = tls.cert();
  ClientMetadataFetcher development_tls(dev_tls);
  std::string literal = "https://127.0.0.1:" + std::to_string(tls.port()) + "/x.json";
  ExpectRefused(development_tls.Fetch(literal), StatusCode::kInvalidArgument,
                "resolves to a loopback address");
}

TEST(ClientMetadataFetch, NonPublicAddressesAreRefusedBeforeAnyConnection) {
  DocumentServer server(true);
  FakeClock clock;
  server.SetDocument("tool.json");
  std::string literal = "https://127.0.0.1:" + std::to_string(server.port()) + "/tool.json";
  server.Set("tool.json", Document(literal));

  ClientMetadataOptions strict = OptionsFor(server, clock);
  strict.allow_loopback_addresses = false;
  ClientMetadataFetcher fetcher(strict);
  ExpectRefused(fetcher.Fetch(literal), StatusCode::kInvalidArgument,
                "resolves to a loopback address, which is not allowed");
  // A name that resolves to loopback is refused the same way.
  ExpectRefused(fetcher.Fetch(server.Url("tool.json")), StatusCode::kInvalidArgument,
                "loopback address");
  EXPECT_EQ(server.hits("tool.json"), 0);

  // The option lets the same fetch through (the certificate names 127.0.0.1 too).
  ClientMetadataFetcher allowed(OptionsFor(server, clock));
  auto ok = allowed.Fetch(literal);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(server.hits("tool.json"), 1);

  // Names resolving to other non-public addresses. One bad address among good ones is enough
  // to refuse: the connection could go to any of them.
  std::map<std::string, std::vector<std::string>> dns = {
      {"private.test", {"10.1.2.3"}},
      {"mixed.test", {"93.184.215.14", "192.168.1.10"}},
      {"metadata.test", {"169.254.169.254"}},
      {"ula.test", {"fc00::5"}},
      {"v6loop.test", {"::1"}},
      {"mapped.test", {"::ffff:10.0.0.1"}},
      {"nothing.test", {}},
  };
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.allow_loopback_addresses = false;
  o.resolve = [&dns](const std::string& host) -> Result<std::vector<std::string>> {
    return dns.at(host);
  };
  ClientMetadataFetcher named(o);
  ExpectRefused(named.Fetch("https://private.test/c.json"), StatusCode::kInvalidArgument,
                "a private address");
  ExpectRefused(named.Fetch("https://mixed.test/c.json"), StatusCode::kInvalidArgument,
                "a private address");
  ExpectRefused(named.Fetch("https://metadata.test/c.json"), StatusCode::kInvalidArgument,
                "a link-local address");
  ExpectRefused(named.Fetch("https://ula.test/c.json"), StatusCode::kInvalidArgument,
                "a private address");
  ExpectRefused(named.Fetch("https://v6loop.test/c.json"), StatusCode::kInvalidArgument,
                "a loopback address");
  ExpectRefused(named.Fetch("https://mapped.test/c.json"), StatusCode::kInvalidArgument,
                "a private address");
  ExpectRefused(named.Fetch("https://nothing.test/c.json"), StatusCode::kUnavailable,
                "could not be resolved");
  ExpectRefused(named.Fetch("https://[fe80::1]/c.json"), StatusCode::kInvalidArgument,
                "a link-local address");
  // allow_private_addresses opens private ranges, never link-local ones.
  o.allow_private_addresses = true;
  o.allow_loopback_addresses = true;
  ClientMetadataFetcher lenient(o);
  ExpectRefused(lenient.Fetch("https://metadata.test/c.json"), StatusCode::kInvalidArgument,
                "a link-local address");
}

// A host whose name service does not answer costs its own fetch the time limit, and holds up
// no other fetch meanwhile (each lookup runs on a thread of its own).
TEST(ClientMetadataFetch, SlowNameLookupHitsTheTimeLimitAndHoldsUpNobody) {
  DocumentServer server(true);
  FakeClock clock;
  server.SetDocument("tool.json");
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.timeout = std::chrono::milliseconds(2000);  // ample for a loopback TLS fetch under load
  o.resolve = [released](const std::string& host) -> Result<std::vector<std::string>> {
    if (host == "stuck.test") released.wait();  // until the test is over
    return std::vector<std::string>{"127.0.0.1"};
  };
  {
    ClientMetadataFetcher fetcher(o);
    std::promise<Result<ClientMetadata>> stuck;
    fetcher.FetchAsync("https://stuck.test/c.json",
                       [&](Result<ClientMetadata> r) { stuck.set_value(std::move(r)); });
    auto good = fetcher.Fetch(server.Url("tool.json"));  // while stuck.test is being looked up
    EXPECT_TRUE(good.ok()) << good.status().ToString();
    ExpectRefused(stuck.get_future().get(), StatusCode::kUnavailable,
                  "could not be resolved within 2000 ms");
  }
  release->set_value();  // the abandoned lookup finishes after its fetcher is gone: harmless
}

TEST(ClientMetadataFetch, CacheFollowsMaxAgeWithinBounds) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataFetcher fetcher(OptionsFor(server, clock));
  server.SetDocument("fresh.json", {{"cache-control", "public, max-age=300"}});
  std::string url = server.Url("fresh.json");
  ASSERT_TRUE(fetcher.Fetch(url).ok());
  ASSERT_TRUE(fetcher.Fetch(url).ok());
  EXPECT_EQ(server.hits("fresh.json"), 1);  // the second came from the cache
  clock.Advance(seconds(299));
  ASSERT_TRUE(fetcher.Fetch(url).ok());
  EXPECT_EQ(server.hits("fresh.json"), 1);
  clock.Advance(seconds(2));
  ASSERT_TRUE(fetcher.Fetch(url).ok());
  EXPECT_EQ(server.hits("fresh.json"), 2);  // expired: fetched again

  // no-store: every Fetch goes to the server.
  server.SetDocument("nostore.json", {{"cache-control", "no-store"}});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fetcher.Fetch(server.Url("nostore.json")).ok());
  EXPECT_EQ(server.hits("nostore.json"), 3);

  // max-age=5 is raised to the 60 s floor.
  server.SetDocument("short.json", {{"cache-control", "max-age=5"}});
  ASSERT_TRUE(fetcher.Fetch(server.Url("short.json")).ok());
  clock.Advance(seconds(30));
  ASSERT_TRUE(fetcher.Fetch(server.Url("short.json")).ok());
  EXPECT_EQ(server.hits("short.json"), 1);
  clock.Advance(seconds(31));
  ASSERT_TRUE(fetcher.Fetch(server.Url("short.json")).ok());
  EXPECT_EQ(server.hits("short.json"), 2);

  // A year is cut to the 24 h ceiling.
  server.SetDocument("long.json", {{"cache-control", "max-age=31536000"}});
  auto m = fetcher.Fetch(server.Url("long.json"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->expires_at - m->fetched_at, seconds(24 * 3600));
  clock.Advance(seconds(24 * 3600 + 1));
  ASSERT_TRUE(fetcher.Fetch(server.Url("long.json")).ok());
  EXPECT_EQ(server.hits("long.json"), 2);

  // Expires counts from the response's Date.
  server.SetDocument("expires.json", {{"date", "Sun, 06 Dec 2026 10:00:00 GMT"},
                                      {"expires", "Sun, 06 Dec 2026 10:10:00 GMT"}});
  auto e = fetcher.Fetch(server.Url("expires.json"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->expires_at - e->fetched_at, seconds(600));
}

TEST(ClientMetadataFetch, CacheHoldsABoundedNumberOfDocuments) {
  DocumentServer server(true);
  FakeClock clock;
  ClientMetadataOptions o = OptionsFor(server, clock);
  o.max_cache_entries = 2;
  ClientMetadataFetcher fetcher(o);
  for (const char* name : {"a.json", "b.json", "c.json"}) server.SetDocument(name);
  ASSERT_TRUE(fetcher.Fetch(server.Url("a.json")).ok());
  ASSERT_TRUE(fetcher.Fetch(server.Url("b.json")).ok());
  ASSERT_TRUE(fetcher.Fetch(server.Url("a.json")).ok());  // a is now the most recently used
  ASSERT_TRUE(fetcher.Fetch(server.Url("c.json")).ok());  // evicts b
  ASSERT_TRUE(fetcher.Fetch(server.Url("a.json")).ok());
  ASSERT_TRUE(fetcher.Fetch(server.Url("b.json")).ok());
  EXPECT_EQ(server.hits("a.json"), 1);
  EXPECT_EQ(server.hits("b.json"), 2);
  EXPECT_EQ(server.hits("c.json"), 1);
}

// --- The rules, without a network ------------------------------------------------------

TEST(ClientMetadataRules, AddressClasses) {
  auto is = [](std::string_view ip, AddressClass want) {
    auto c = ClassifyAddress(ip);
    ASSERT_TRUE(c.ok()) << ip;
    EXPECT_EQ(*c, want) << ip << " is " << AddressClassName(*c);
  };
  is("8.8.8.8", AddressClass::kPublic);
  is("93.184.215.14", AddressClass::kPublic);
  is("2606:4700:4700::1111", AddressClass::kPublic);
  is("127.0.0.1", AddressClass::kLoopback);
  is("127.255.0.9", AddressClass::kLoopback);
  is("::1", AddressClass::kLoopback);
  is("10.0.0.1", AddressClass::kPrivate);
  is("172.16.0.1", AddressClass::kPrivate);
  is("172.31.255.255", AddressClass::kPrivate);
  is("172.32.0.1", AddressClass::kPublic);
  is("192.168.0.1", AddressClass::kPrivate);
  is("100.64.0.1", AddressClass::kPrivate);
  is("fc00::1", AddressClass::kPrivate);
  is("fd12:3456::1", AddressClass::kPrivate);
  is("169.254.169.254", AddressClass::kLinkLocal);
  is("fe80::1", AddressClass::kLinkLocal);
  is("::ffff:10.0.0.1", AddressClass::kPrivate);
  is("::ffff:127.0.0.1", AddressClass::kLoopback);
  is("::ffff:8.8.8.8", AddressClass::kPublic);
  is("64:ff9b::a9fe:a9fe", AddressClass::kLinkLocal);  // NAT64 of 169.254.169.254
  is("0.0.0.0", AddressClass::kSpecial);
  is("::", AddressClass::kSpecial);
  is("224.0.0.1", AddressClass::kSpecial);
  is("255.255.255.255", AddressClass::kSpecial);
  is("192.0.2.1", AddressClass::kSpecial);
  is("198.18.0.1", AddressClass::kSpecial);
  is("ff02::1", AddressClass::kSpecial);
  is("2001:db8::1", AddressClass::kSpecial);
  is("2002:a00:1::1", AddressClass::kSpecial);  // 6to4 of 10.0.0.1
  is("2001::1", AddressClass::kSpecial);        // Teredo
  is("fec0::1", AddressClass::kSpecial);
  EXPECT_FALSE(ClassifyAddress("client.example").ok());
  EXPECT_FALSE(ClassifyAddress("10.0.0.256").ok());
}

TEST(ClientMetadataRules, ClientIdUrls) {
  auto ok = [](std::string_view url) {
    Status st = ValidateClientIdUrl(url, false);
    EXPECT_TRUE(st.ok()) << url << ": " << st.ToString();
  };
  auto bad = [](std::string_view url, std::string_view words, bool dev = false) {
    Status st = ValidateClientIdUrl(url, dev);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << url;
    EXPECT_NE(st.message().find(words), std::string::npos) << url << ": " << st.ToString();
  };
  ok("https://client.example/metadata.json");
  ok("https://client.example:8443/a/b?version=2");
  ok("https://client.example/");
  ok("https://[2001:4860::1]/c");
  bad("https://client.example", "must contain a path");
  bad("https://client.example?x=1", "must contain a path");
  bad("https://user:pass@client.example/c", "userinfo");
  bad("https://client.example/c#frag", "fragment");
  bad("https://client.example/c#", "fragment");
  bad("https://client.example/a/../c", ". or ..");
  bad("https://client.example/./c", ". or ..");
  bad("https://client.example/a/%2e%2E/c", ". or ..");
  bad("ftp://client.example/c", "must be an https URL");
  bad("HTTPS://client.example/c", "must be an https URL");
  bad("client-123", "must be an https URL");
  bad("http://client.example/c", "must be an https URL");
  bad("http://127.0.0.1:8080/c", "must be an https URL");  // without the switch
  EXPECT_TRUE(ValidateClientIdUrl("http://127.0.0.1:8080/c", true).ok());
  EXPECT_TRUE(ValidateClientIdUrl("http://[::1]:8080/c", true).ok());
  EXPECT_TRUE(ValidateClientIdUrl("http://localhost:8080/c", true).ok());
  bad("http://10.0.0.1/c", "must be an https URL", true);
  bad("http://client.example/c", "must be an https URL", true);
  bad("https://client.example/a b", "spaces");
  bad("https://cli_ent.example/c", "invalid host name");
  bad("https://client.example:0/c", "invalid port");
  bad("https://client.example:99999/c", "invalid port");
  bad("https:///c", "");
  bad("https://client.example/" + std::string(3000, 'a'), "longer than");
  EXPECT_TRUE(IsClientIdUrl("https://client.example/c"));
  EXPECT_FALSE(IsClientIdUrl("planner"));
}

TEST(ClientMetadataRules, Documents) {
  const std::string id = "https://client.example/c.json";
  auto parse = [&](const std::string& body) {
    return ParseClientMetadataDocument(id, body, false);
  };
  auto refused = [&](const std::string& body, std::string_view words) {
    ExpectRefused(parse(body), StatusCode::kInvalidArgument, words);
  };
  // Defaults.
  auto m = parse(R"({"client_id":")" + id + R"(","redirect_uris":["https://a.example/cb"]})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->token_endpoint_auth_method, "none");
  EXPECT_EQ(m->grant_types, std::vector<std::string>{"authorization_code"});
  EXPECT_EQ(m->response_types, std::vector<std::string>{"code"});
  EXPECT_TRUE(m->client_name.empty());

  // Redirect URIs: https, http on loopback, private-use schemes (RFC 8252).
  auto with_redirects = [&](const std::string& list) {
    return R"({"client_id":")" + id + R"(","redirect_uris":)" + list + "}";
  };
  EXPECT_TRUE(parse(with_redirects(R"(["https://a.example/cb","http://127.0.0.1:7777/cb",
      "http://[::1]/cb","http://localhost:3000/cb","com.example.app:/oauth2redirect"])"))
                  .ok());
  refused(with_redirects("[]"), "redirect_uris must be a non-empty array");
  refused(with_redirects(R"("https://a.example/cb")"), "non-empty array");
  refused(with_redirects("[7]"), "redirect_uris[0] must be a string");
  refused(with_redirects(R"(["http://a.example/cb"])"), "allowed only for a loopback host");
  refused(with_redirects(R"(["https://a.example/cb","javascript:alert%281%29"])"),
          "redirect_uris[1] must use https");
  refused(with_redirects(R"(["data:text/html,hi"])"), "private-use scheme");
  refused(with_redirects(R"(["/relative/cb"])"), "not an absolute URI");
  refused(with_redirects(R"(["https://a.example/cb#x"])"), "fragment");
  refused(with_redirects(R"(["https:/cb"])"), "must name a host");
  refused(R"({"client_id":")" + id + R"("})", "has no redirect_uris");

  // No shared secrets; keys public only, from one source.
  std::string base = R"({"client_id":")" + id + R"(","redirect_uris":["https://a.example/cb"])";
  refused(base + R"(,"token_endpoint_auth_method":"client_secret_basic"})",
          "must be none or private_key_jwt");
  refused(base + R"(,"token_endpoint_auth_method":"client_secret_jwt"})",
          "must be none or private_key_jwt");
  refused(base + R"(,"client_secret":"hunter2"})", "must not contain a client secret");
  refused(base + R"(,"client_secret_expires_at":0})", "must not contain a client secret");
  refused(base + R"(,"token_endpoint_auth_method":"private_key_jwt"})",
          "neither jwks nor jwks_uri");
  refused(base + R"(,"jwks":{"keys":[{"kty":"EC","d":"secret"}]}})", "public keys only");
  refused(base + R"(,"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}})", "public keys only");
  refused(base + R"(,"jwks":[1]})", "must be a JWK set");
  refused(base + R"(,"jwks":{"keys":[]},"jwks_uri":"https://a.example/jwks"})",
          "both jwks and jwks_uri");
  refused(base + R"(,"jwks_uri":"http://a.example/jwks"})", "jwks_uri must be an https URL");
  auto pk = parse(base + R"(,"token_endpoint_auth_method":"private_key_jwt",
      "jwks_uri":"https://a.example/jwks.json"})");
  ASSERT_TRUE(pk.ok()) << pk.status().ToString();
  EXPECT_EQ(pk->jwks_uri, "https://a.example/jwks.json");
  // No secret ever appears in an error.
  auto secret = parse(base + R"(,"client_secret":"hunter2"})");
  EXPECT_EQ(secret.status().message().find("hunter2"), std::string::npos);

  // Wrong types.
  refused(base + R"(,"client_name":42})", "client_name must be a string");
  refused(base + R"(,"scope":["a"]})", "scope must be a string");
  refused(base + R"(,"grant_types":"authorization_code"})", "grant_types must be an array");
  refused(base + R"(,"response_types":[1]})", "response_types must hold strings");
  refused(base + R"(,"token_endpoint_auth_method":5})",
          "token_endpoint_auth_method must be a string");
  refused(base + R"(,"logo_uri":"javascript:alert%281%29"})", "logo_uri must be an https URL");
  refused(base + R"(,"client_uri":"http://a.example"})", "client_uri must be an https URL");
  refused(R"({"client_id":42,"redirect_uris":["https://a.example/cb"]})", "has no client_id");
  refused("", "not valid JSON");
  refused("{\"client_id\":\"" + id + "\"", "not valid JSON");
  refused("{\"client_id\":\"\xff\"}", "not valid JSON");  // invalid UTF-8
}

TEST(ClientMetadataRules, CacheLifetimes) {
  ClientMetadataOptions o;
  FakeClock clock;
  TimePoint now = clock.Now();
  auto lifetime = [&](std::vector<std::pair<std::string, std::string>> headers) {
    http::Headers h;
    for (auto& [k, v] : headers) h.Add(k, v);
    return CacheLifetime(h, now, o).count();
  };
  EXPECT_EQ(lifetime({}), 300);  // no caching headers: the default
  EXPECT_EQ(lifetime({{"cache-control", "max-age=600"}}), 600);
  EXPECT_EQ(lifetime({{"cache-control", "public, max-age=\"600\""}}), 600);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=10"}}), 60);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=999999999"}}), 24 * 3600);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=0"}}), 0);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=abc"}}), 0);
  EXPECT_EQ(lifetime({{"cache-control", "no-store"}}), 0);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=600, no-cache"}}), 0);
  EXPECT_EQ(lifetime({{"cache-control", "max-age=600"}, {"cache-control", "no-store"}}), 0);
  // max-age wins over Expires.
  EXPECT_EQ(
      lifetime({{"cache-control", "max-age=600"}, {"expires", "Thu, 01 Jan 1970 00:00:00 GMT"}}),
      600);
  EXPECT_EQ(lifetime({{"date", "Sun, 06 Dec 2026 10:00:00 GMT"},
                      {"expires", "Sun, 06 Dec 2026 12:00:00 GMT"}}),
            7200);
  EXPECT_EQ(lifetime({{"expires", "0"}}), 0);  // invalid: already expired
  EXPECT_EQ(lifetime({{"date", "Sun, 06 Dec 2026 10:00:00 GMT"},
                      {"expires", "Sun, 06 Dec 2026 09:00:00 GMT"}}),
            0);
  // Without Date, Expires counts from now.
  EXPECT_EQ(lifetime({{"expires", "Tue, 14 Nov 2023 23:13:20 GMT"}}), 3600);  // now + 1 h
}

}  // namespace
}  // namespace custody::identity
