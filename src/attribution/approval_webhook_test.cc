// WebhookSender against a real HTTP receiver on loopback (port 0) that checks every delivery the
// way a Standard Webhooks library does, with its own HMAC (OpenSSL's EVP_MAC, not the sender's
// code): the signature over "<id>.<timestamp>.<body>", the id kept across retries, the
// timestamp of the attempt.
#include "attribution/approval_webhook.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/logger.h"
#include "common/mutex.h"
#include "common/random.h"
#include "http/server.h"

namespace custody::attribution {
namespace {

using std::chrono::milliseconds;

// A secret as an operator writes it, and its key (the base64 of 32 bytes "0123…").
constexpr std::string_view kKeyBytes = "0123456789abcdef0123456789abcdef";
std::string SecretText(std::string_view key = kKeyBytes) { return "whsec_" + Base64Encode(key); }

// HMAC-SHA256 through EVP_MAC, base64: the receiver's own computation.
std::string ReceiverMac(std::string_view key, std::string_view content) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  bool ok = ctx != nullptr &&
            EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                         params) == 1 &&
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(content.data()),
                           content.size()) == 1 &&
            EVP_MAC_final(ctx, out, &out_len, sizeof out) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) return "";
  return Base64Encode(std::span<const uint8_t>(out, out_len));
}

// Every warn line the ErrorReporter writes, as "msg site message".
class CapturingLogger final : public Logger {
 public:
  bool Enabled(LogLevel) const override { return true; }
  void Log(LogLevel, std::string_view msg, std::initializer_list<LogField> fields) override {
    std::string line(msg);
    for (const LogField& f : fields) {
      if (const auto* s = std::get_if<std::string_view>(&f.value)) line += " " + std::string(*s);
    }
    MutexLock lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::string Text() const {
    MutexLock lock(mu_);
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> lines_ GUARDED_BY(mu_);
};

// One delivery as the receiver saw it.
struct Delivery {
  std::string id, timestamp, signature, content_type, body;
  bool signature_valid = false;
};

// A webhook endpoint at POST /hooks/approvals: it verifies each delivery with `key`, records
// it, and answers the next status of `answers` (then 200), or 401 to a bad signature as a
// Standard Webhooks receiver does. With `hold` set, it keeps the responders until Release().
class Receiver {
 public:
  explicit Receiver(std::string key, std::vector<int> answers = {}, bool hold = false)
      : key_(std::move(key)), answers_(std::move(answers)), hold_(hold) {
    http::Route r;
    r.method = "POST";
    r.pattern = "/hooks/approvals";
    r.handler = [this](http::Request& req, http::Responder respond) {
      Delivery d;
      d.id = std::string(req.headers.Get("webhook-id").value_or(""));
      d.timestamp = std::string(req.headers.Get("webhook-timestamp").value_or(""));
      d.signature = std::string(req.headers.Get("webhook-signature").value_or(""));
      d.content_type = std::string(req.headers.Get("content-type").value_or(""));
      d.body = req.body;
      std::string expected = "v1," + ReceiverMac(key_, d.id + "." + d.timestamp + "." + d.body);
      // The header may carry several space-separated signatures; any one valid will do.
      for (size_t pos = 0; pos <= d.signature.size();) {
        size_t end = std::min(d.signature.find(' ', pos), d.signature.size());
        if (d.signature.substr(pos, end - pos) == expected) d.signature_valid = true;
        pos = end + 1;
      }
      int status = 401;
      MutexLock lock(mu_);
      if (d.signature_valid) {
        status = next_ < answers_.size() ? answers_[next_++] : 200;
      }
      deliveries_.push_back(d);
      arrived_.NotifyAll();
      if (hold_) {
        held_.push_back(respond);
        return;
      }
      lock.Unlock();
      respond(http::Response::Text(status, "ok"));
    };
    EXPECT_TRUE(router_.Add(r).ok());
    http::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<http::Server>(o, router_, nullptr, nullptr, clock_, random_);
    Status st = server_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  ~Receiver() { server_->Shutdown(); }

  std::string Url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hooks/approvals";
  }
  std::vector<Delivery> deliveries() const {
    MutexLock lock(mu_);
    return deliveries_;
  }
  // Waits for `n` deliveries (bounded, so a broken sender fails the test instead of hanging).
  bool WaitFor(size_t n) {
    MutexLock lock(mu_);
    return arrived_.WaitFor(mu_, std::chrono::seconds(20),
                            [&]() REQUIRES(mu_) { return deliveries_.size() >= n; });
  }
  void Release() {
    std::vector<http::Responder> held;
    {
      MutexLock lock(mu_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& r : held) r(http::Response::Text(200, "ok"));
  }

 private:
  const std::string key_;
  mutable Mutex mu_;
  CondVar arrived_;
  std::vector<int> answers_ GUARDED_BY(mu_);
  size_t next_ GUARDED_BY(mu_) = 0;
  bool hold_ GUARDED_BY(mu_);
  std::vector<Delivery> deliveries_ GUARDED_BY(mu_);
  std::vector<http::Responder> held_ GUARDED_BY(mu_);
  SystemClock clock_;
  SystemRandom random_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
};

struct WebhookSenderTest : ::testing::Test {
  CapturingLogger log;
  ErrorReporter errors{log};
  FakeClock clock{TimePoint(std::chrono::seconds(1'765'000'000))};

  WebhookOptions Options(const std::string& url) {
    WebhookOptions o;
    o.url = url;
    o.secret = std::string(kKeyBytes);
    o.allow_loopback_http = true;
    o.first_backoff = milliseconds(1);  // the doubling is the same; the test need not wait
    o.timeout = milliseconds(5000);
    return o;
  }
  std::unique_ptr<WebhookSender> Make(WebhookOptions o) {
    auto s = WebhookSender::Create(std::move(o), clock, errors);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // The reported text must never carry the secret, in any form an operator could paste.
  void ExpectNoSecret() {
    std::string text = log.Text();
    EXPECT_EQ(text.find(kKeyBytes), std::string::npos) << text;
    EXPECT_EQ(text.find(Base64Encode(kKeyBytes)), std::string::npos) << text;
    EXPECT_EQ(text.find("whsec_"), std::string::npos) << text;
  }
};

// The example of the specification's reference libraries (standard-webhooks, svix): a receiver
// written against them accepts what we send.
TEST(WebhookSignature, MatchesTheReferenceExample) {
  auto key = ParseWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(
      WebhookSignature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // And an independent HMAC agrees on any input.
  EXPECT_EQ(WebhookSignature(kKeyBytes, "apr_1", 42, "{}"),
            "v1," + ReceiverMac(kKeyBytes, "apr_1.42.{}"));
}

TEST(WebhookSecret, IsWhsecBase64OfTwentyFourToSixtyFourBytes) {
  auto key = ParseWebhookSecret(" " + SecretText() + "\n");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, kKeyBytes);
  EXPECT_TRUE(ParseWebhookSecret("whsec_" + Base64Encode(std::string(24, 'k'))).ok());
  EXPECT_TRUE(ParseWebhookSecret("whsec_" + Base64Encode(std::string(64, 'k'))).ok());
  for (std::string bad :
       {Base64Encode(kKeyBytes), "whsec_" + Base64Encode(std::string(23, 'k')),
        "whsec_" + Base64Encode(std::string(65, 'k')), std::string("whsec_not*base64"),
        std::string("whsec_"), std::string("")}) {
    auto r = ParseWebhookSecret(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    if (bad.size() > 6) {
      EXPECT_EQ(r.status().message().find(bad.substr(6)), std::string::npos);
    }
  }
}

TEST(WebhookSecret, FileReadableByOthersIsRefusedNamingItsMode) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_webhook_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "webhook.secret").string();
  std::ofstream(path) << SecretText() << "\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto r = ReadWebhookSecretFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("webhook.secret has mode 0644"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find(dir.string()), std::string::npos) << "no absolute path";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  r = ReadWebhookSecretFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, kKeyBytes);

  std::ofstream(path) << "hunter2hunter2hunter2hunter2\n";  // no whsec_ prefix
  r = ReadWebhookSecretFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("webhook.secret"), std::string::npos);
  EXPECT_EQ(r.status().message().find("hunter2"), std::string::npos) << r.status().message();
  EXPECT_EQ(ReadWebhookSecretFile((dir / "missing").string()).status().code(),
            StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST_F(WebhookSenderTest, UrlMustBeHttpsOrLoopbackHttpWhenAllowed) {
  for (std::string bad : {"http://hooks.example.com/x", "ftp://127.0.0.1/x", "127.0.0.1:80/x",
                          "https://user:pw@hooks.example.com/x", "https:///x",
                          "http://127.0.0.1.example.com/x", "http://[::2]/x"}) {
    auto s = WebhookSender::Create(Options(bad), clock, errors);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message().find("pw"), std::string::npos);
  }
  WebhookOptions o = Options("http://127.0.0.1:9/x");
  o.allow_loopback_http = false;
  EXPECT_FALSE(WebhookSender::Create(o, clock, errors).ok());
  for (std::string good : {"https://hooks.example.com/x?team=ops", "http://127.0.0.1:9/x",
                           "http://[::1]:9/x", "http://localhost:9"}) {
    EXPECT_TRUE(WebhookSender::Create(Options(good), clock, errors).ok()) << good;
  }
  o = Options("https://hooks.example.com/x");
  o.secret.clear();
  EXPECT_FALSE(WebhookSender::Create(o, clock, errors).ok());
  o = Options("https://hooks.example.com/x");
  o.max_attempts = 0;
  EXPECT_FALSE(WebhookSender::Create(o, clock, errors).ok());
}

TEST_F(WebhookSenderTest, DeliveryIsSignedAsTheSpecificationSays) {
  Receiver receiver{std::string(kKeyBytes)};
  auto sender = Make(Options(receiver.Url()));
  ASSERT_NE(sender, nullptr);
  std::string body = R"({"type":"approval.requested","data":{"id":"apr_1"}})";
  sender->Send("apr_1", body);
  ASSERT_TRUE(sender->WaitIdle(milliseconds(20000)));
  auto got = receiver.deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].signature_valid) << got[0].signature;
  EXPECT_EQ(got[0].id, "apr_1");
  EXPECT_EQ(got[0].timestamp, "1765000000");  // the injected clock, in seconds
  EXPECT_EQ(got[0].body, body);
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(sender->stats().delivered, 1u);
  EXPECT_EQ(sender->stats().attempts, 1u);
  EXPECT_EQ(errors.Count(kWebhookErrorSite), 0u);
}

TEST_F(WebhookSenderTest, ServerErrorsAreRetriedUnderTheSameIdAndEachAttemptIsSignedAnew) {
  Receiver receiver{std::string(kKeyBytes), {500, 503}};
  auto sender = Make(Options(receiver.Url()));
  ASSERT_NE(sender, nullptr);
  sender->Send("apr_retry", R"({"n":1})");
  ASSERT_TRUE(receiver.WaitFor(1));
  clock.Advance(std::chrono::seconds(7));  // the retries carry their own time
  ASSERT_TRUE(sender->WaitIdle(milliseconds(20000)));
  auto got = receiver.deliveries();
  ASSERT_EQ(got.size(), 3u);
  for (const Delivery& d : got) {
    EXPECT_EQ(d.id, "apr_retry");
    EXPECT_TRUE(d.signature_valid) << d.signature;
  }
  EXPECT_EQ(got[2].timestamp, "1765000007");
  auto st = sender->stats();
  EXPECT_EQ(st.delivered, 1u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.attempts, 3u);
  EXPECT_EQ(errors.Count(kWebhookErrorSite), 0u);
}

TEST_F(WebhookSenderTest, DeadUrlIsReportedAfterMaxAttemptsWithoutTheSecret) {
  // A port nothing listens on: bound, then closed.
  uint16_t port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(
        io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  WebhookOptions o = Options("http://127.0.0.1:" + std::to_string(port) + "/hook");
  o.max_attempts = 3;
  auto sender = Make(o);
  ASSERT_NE(sender, nullptr);
  sender->Send("apr_dead", "{}");
  ASSERT_TRUE(sender->WaitIdle(milliseconds(20000)));
  auto st = sender->stats();
  EXPECT_EQ(st.attempts, 3u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.delivered, 0u);
  EXPECT_EQ(errors.Count(kWebhookErrorSite), 1u);
  std::string text = log.Text();
  EXPECT_NE(text.find("approval notification apr_dead not delivered after 3 attempts"),
            std::string::npos)
      << text;
  ExpectNoSecret();
}

TEST_F(WebhookSenderTest, WrongSecretIsRejectedByTheReceiver) {
  Receiver receiver{"another key entirely, 32 bytes!!"};
  WebhookOptions o = Options(receiver.Url());
  o.max_attempts = 2;
  auto sender = Make(o);
  ASSERT_NE(sender, nullptr);
  sender->Send("apr_forged", R"({"approve":true})");
  ASSERT_TRUE(sender->WaitIdle(milliseconds(20000)));
  auto got = receiver.deliveries();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].signature_valid);
  EXPECT_EQ(sender->stats().failed, 1u);
  EXPECT_NE(log.Text().find("apr_forged not delivered after 2 attempts: HTTP 401"),
            std::string::npos)
      << log.Text();
  ExpectNoSecret();
}

TEST_F(WebhookSenderTest, SendNeverWaitsAndAFullQueueDropsAndReports) {
  Receiver receiver{std::string(kKeyBytes), {}, /*hold=*/true};
  WebhookOptions o = Options(receiver.Url());
  o.max_queue = 1;
  auto sender = Make(o);
  ASSERT_NE(sender, nullptr);
  sender->Send("apr_a", "{}");
  ASSERT_TRUE(receiver.WaitFor(1));  // apr_a is in flight, its answer held
  sender->Send("apr_b", "{}");       // queued
  sender->Send("apr_c", "{}");       // over the bound: returns at once, dropped
  EXPECT_EQ(sender->stats().dropped, 1u);
  EXPECT_NE(log.Text().find("approval notification apr_c dropped: 1 notifications are already "
                            "waiting"),
            std::string::npos)
      << log.Text();
  sender->Send("bad id", "{}");
  EXPECT_EQ(sender->stats().dropped, 2u);
  receiver.Release();
  ASSERT_TRUE(sender->WaitIdle(milliseconds(20000)));
  auto got = receiver.deliveries();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, "apr_a");  // in order
  EXPECT_EQ(got[1].id, "apr_b");
  EXPECT_EQ(sender->stats().delivered, 2u);
}

TEST_F(WebhookSenderTest, DestroyingTheSenderAbandonsAndReportsWhatIsPending) {
  Receiver receiver{std::string(kKeyBytes), {}, /*hold=*/true};
  auto sender = Make(Options(receiver.Url()));
  ASSERT_NE(sender, nullptr);
  sender->Send("apr_1", "{}");
  ASSERT_TRUE(receiver.WaitFor(1));
  sender->Send("apr_2", "{}");
  EXPECT_FALSE(sender->WaitIdle(milliseconds(1)));
  sender.reset();  // returns although apr_1's answer never came
  EXPECT_EQ(errors.Count(kWebhookErrorSite), 1u);
  EXPECT_NE(log.Text().find("2 approval notification(s) abandoned"), std::string::npos)
      << log.Text();
  receiver.Release();
}

}  // namespace
}  // namespace custody::attribution
