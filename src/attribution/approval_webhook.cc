#include "attribution/approval_webhook.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <thread>
#include <utility>

#include "common/encoding.h"
#include "common/mutex.h"
#include "crypto/key_file.h"
#include "http/client.h"

namespace custody::attribution {
namespace {

namespace asio = boost::asio;
namespace urls = boost::urls;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSecretPrefix = "whsec_";
// The specification's bounds on a secret's length.
constexpr size_t kMinSecretBytes = 24;
constexpr size_t kMaxSecretBytes = 64;
// Doubling stops here, so a long max_attempts does not wait for days.
constexpr std::chrono::milliseconds kMaxBackoff = std::chrono::hours(1);

struct Endpoint {
  bool https = false;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string target;
};

bool IsLoopback(const urls::url_view& u) {
  if (u.host_type() == urls::host_type::name) {
    std::string host(u.encoded_host());
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return host == "localhost";
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(u.encoded_host_address()), ec);
  return !ec && address.is_loopback();
}

Result<Endpoint> ParseEndpoint(std::string_view url, bool allow_loopback_http) {
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7F) {
      return InvalidArgumentError("webhook url must not contain spaces or control characters");
    }
  }
  auto parsed = urls::parse_uri(url);
  if (!parsed) return InvalidArgumentError("webhook url is not a valid URL");
  const urls::url_view& u = *parsed;
  Endpoint e;
  e.https = u.scheme() == "https";
  if (!e.https && u.scheme() != "http") {
    return InvalidArgumentError("webhook url must be an https URL");
  }
  // A password in the URL would end up in logs; the secret signs, nothing else authenticates.
  if (u.has_userinfo()) return InvalidArgumentError("webhook url must not contain user info");
  switch (u.host_type()) {
    case urls::host_type::name:
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      e.host = std::string(u.encoded_host_address());
      break;
    default:
      return InvalidArgumentError("webhook url must name a host");
  }
  if (e.host.empty()) return InvalidArgumentError("webhook url must name a host");
  // Boost.URL 1.81 reads "http://127.0.0.1.example.com/x" as host 127.0.0.1 and path
  // ".example.com/x"; after an authority a path must begin with "/".
  if (!u.encoded_path().empty() && !u.encoded_path().starts_with('/')) {
    return InvalidArgumentError("webhook url has an invalid host");
  }
  if (!e.https && !(allow_loopback_http && IsLoopback(u))) {
    return InvalidArgumentError("webhook url must be an https URL (http only to a loopback host)");
  }
  e.port = e.https ? 443 : 80;
  if (u.has_port()) {
    if (u.port().empty() || u.port_number() == 0) {
      return InvalidArgumentError("webhook url has an invalid port");
    }
    e.port = u.port_number();
  }
  e.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) e.target += "?" + std::string(u.encoded_query());
  return e;
}

bool IsValidMessageId(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) { return c > 0x20 && c < 0x7F; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::string> ParseWebhookSecret(std::string_view text) {
  text = Trim(text);
  if (!text.starts_with(kSecretPrefix)) {
    return InvalidArgumentError("a webhook secret must be whsec_ followed by base64");
  }
  Result<std::vector<uint8_t>> bytes = Base64Decode(text.substr(kSecretPrefix.size()));
  if (!bytes.ok() || bytes->size() < kMinSecretBytes || bytes->size() > kMaxSecretBytes) {
    if (bytes.ok()) OPENSSL_cleanse(bytes->data(), bytes->size());
    return InvalidArgumentError(
        "a webhook secret must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. "
        "whsec_$(openssl rand -base64 32))");
  }
  std::string key(AsString(*bytes));
  OPENSSL_cleanse(bytes->data(), bytes->size());
  return key;
}

Result<std::string> ReadWebhookSecretFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, crypto::ReadSecretFile(path, "the webhook secret file", 4096));
  const std::string name = std::filesystem::path(path).filename().string();
  Result<std::string> key = ParseWebhookSecret(text);
  OPENSSL_cleanse(text.data(), text.size());
  if (!key.ok()) return key.status().WithContext("webhook secret file " + name);
  return key;
}

std::string WebhookSignature(std::string_view secret, std::string_view msg_id, int64_t timestamp,
                             std::string_view body) {
  std::string content;
  content.reserve(msg_id.size() + body.size() + 24);
  content.append(msg_id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &mac_len);
  return "v1," + Base64Encode(std::span<const uint8_t>(mac, mac_len));
}

struct WebhookSender::Impl {
  Impl(WebhookOptions o, Endpoint e, const Clock& c, ErrorReporter& r)
      : options(std::move(o)),
        endpoint(std::move(e)),
        clock(c),
        errors(r),
        work(asio::make_work_guard(ioc)) {}

  ~Impl() { OPENSSL_cleanse(options.secret.data(), options.secret.size()); }

  struct Message {
    std::string id;
    std::string body;
  };

  WebhookOptions options;  // not changed after construction (the secret is wiped at the end)
  const Endpoint endpoint;
  const Clock& clock;
  ErrorReporter& errors;

  mutable Mutex mu;
  std::deque<Message> queue GUARDED_BY(mu);
  bool draining GUARDED_BY(mu) = false;  // a Drain coroutine runs (or is about to)
  size_t in_flight GUARDED_BY(mu) = 0;   // taken off the queue, not yet settled
  bool stopping GUARDED_BY(mu) = false;
  Stats stats GUARDED_BY(mu);
  CondVar idle;  // signalled when the queue is empty and nothing is in flight

  // Declared last: destroyed first, with any coroutine frame still in it (after the thread
  // stopped), before the members those frames could name.
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // Delivers the queue in order, then ends; Send starts another when it queues into an empty,
  // idle sender. One connection, kept alive between messages of one run.
  asio::awaitable<void> Drain() {
    http::ClientOptions co;
    co.tls = endpoint.https;
    co.ca_file = options.ca_file;
    co.timeout = options.timeout;
    co.max_response_bytes = 64 * 1024;  // the answer's body is not read for anything
    http::HttpClient client(ioc.get_executor(), endpoint.host, endpoint.port, co);
    for (;;) {
      Message m;
      {
        MutexLock lock(mu);
        if (queue.empty() || stopping) {
          draining = false;
          idle.NotifyAll();
          co_return;
        }
        m = std::move(queue.front());
        queue.pop_front();
        ++in_flight;
      }
      Status st = co_await Deliver(client, m);
      {
        MutexLock lock(mu);
        --in_flight;
        if (st.ok()) {
          ++stats.delivered;
        } else {
          ++stats.failed;
        }
      }
      if (!st.ok()) errors.Report(kWebhookErrorSite, st);
    }
  }

  // One message, with its retries.
  asio::awaitable<Status> Deliver(http::HttpClient& client, const Message& m) {
    asio::steady_timer backoff(ioc);
    std::chrono::milliseconds wait = options.first_backoff;
    std::string last;
    for (int attempt = 1;; ++attempt) {
      int64_t now =
          std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
      http::ClientRequest req;
      req.method = "POST";
      req.target = endpoint.target;
      req.headers.Set("content-type", "application/json");
      req.headers.Set("user-agent", "custody");
      req.headers.Set("webhook-id", m.id);
      req.headers.Set("webhook-timestamp", std::to_string(now));
      req.headers.Set("webhook-signature", WebhookSignature(options.secret, m.id, now, m.body));
      req.body = m.body;
      {
        MutexLock lock(mu);
        ++stats.attempts;
      }
      Result<http::ClientResponse> r = co_await client.Send(std::move(req));
      if (r.ok() && r->status >= 200 && r->status < 300) co_return OkStatus();
      last = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message();
      if (!r.ok()) client.Close();  // a fresh connection for the next attempt
      if (attempt >= options.max_attempts) break;
      backoff.expires_after(wait);
      co_await backoff.async_wait(kTuple);
      wait = std::min(wait * 2, kMaxBackoff);
    }
    co_return UnavailableError("approval notification " + m.id + " not delivered after " +
                               std::to_string(options.max_attempts) + " attempt" +
                               (options.max_attempts == 1 ? "" : "s") + ": " + last);
  }
};

WebhookSender::WebhookSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<WebhookSender>> WebhookSender::Create(WebhookOptions options,
                                                             const Clock& clock,
                                                             ErrorReporter& errors) {
  ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(options.url, options.allow_loopback_http));
  if (options.secret.empty()) return InvalidArgumentError("webhook secret must not be empty");
  if (options.max_attempts < 1) {
    return InvalidArgumentError("webhook max_attempts must be at least 1");
  }
  if (options.timeout.count() < 1 || options.first_backoff.count() < 1) {
    return InvalidArgumentError("webhook timeout and first backoff must be at least 1 ms");
  }
  if (options.max_queue < 1) return InvalidArgumentError("webhook max_queue must be at least 1");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(e), clock, errors);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<WebhookSender>(new WebhookSender(std::move(impl)));
}

WebhookSender::~WebhookSender() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  // Stops at once: an attempt waiting on the network or a backoff is not resumed (its
  // coroutine, and the connection in it, go with the io_context).
  impl_->work.reset();
  impl_->ioc.stop();
  impl_->thread.join();
  size_t abandoned = 0;
  {
    MutexLock lock(impl_->mu);
    abandoned = impl_->queue.size() + impl_->in_flight;
    impl_->queue.clear();
  }
  if (abandoned > 0) {
    impl_->errors.Report(kWebhookErrorSite,
                         UnavailableError(std::to_string(abandoned) +
                                          " approval notification(s) abandoned: the webhook "
                                          "sender stopped"));
  }
}

void WebhookSender::Send(std::string msg_id, std::string body) {
  Impl& impl = *impl_;
  Status refused;
  {
    MutexLock lock(impl.mu);
    if (!IsValidMessageId(msg_id)) {
      refused = InvalidArgumentError(
          "approval notification dropped: its message id is empty, longer than 256 bytes, or "
          "has spaces or control characters");
    } else if (impl.stopping) {
      refused = UnavailableError("approval notification " + msg_id +
                                 " dropped: the webhook sender is stopping");
    } else if (impl.queue.size() >= impl.options.max_queue) {
      refused = UnavailableError("approval notification " + msg_id +
                                 " dropped: " + std::to_string(impl.options.max_queue) +
                                 " notifications are already waiting");
    } else {
      impl.queue.push_back({std::move(msg_id), std::move(body)});
      if (impl.draining) return;
      impl.draining = true;
    }
    if (!refused.ok()) ++impl.stats.dropped;
  }
  if (!refused.ok()) {
    impl.errors.Report(kWebhookErrorSite, refused);
    return;
  }
  asio::co_spawn(impl.ioc, impl.Drain(), [&impl](std::exception_ptr e) {
    if (!e) return;
    // Drain catches nothing itself; whatever it threw lost the notifications it held.
    {
      MutexLock lock(impl.mu);
      impl.draining = false;
      impl.stats.failed += impl.in_flight;
      impl.in_flight = 0;
      impl.idle.NotifyAll();
    }
    impl.errors.Report(kWebhookErrorSite, InternalError("the webhook sender failed"));
  });
}

WebhookSender::Stats WebhookSender::stats() const {
  MutexLock lock(impl_->mu);
  return impl_->stats;
}

bool WebhookSender::WaitIdle(std::chrono::milliseconds limit) {
  Impl& impl = *impl_;
  MutexLock lock(impl.mu);
  return impl.idle.WaitFor(impl.mu, limit, [&impl]() REQUIRES(impl.mu) {
    return impl.queue.empty() && impl.in_flight == 0 && !impl.draining;
  });
}

}  // namespace custody::attribution
