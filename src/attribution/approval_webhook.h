// WebhookSender: tells the approvers' system about approvals by POSTing JSON to one URL, signed
// as the Standard Webhooks specification says (https://www.standardwebhooks.com/), so any of its
// verifying libraries checks our notifications:
//   webhook-id:        the message id the caller gives (the same on every retry: the receiver
//                      drops duplicates by it)
//   webhook-timestamp: Unix seconds of the attempt (receivers refuse old ones: each retry is
//                      signed anew)
//   webhook-signature: "v1," base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>"))
//   content-type:      application/json
//
// Send() only queues: it runs on the authorize path and never waits for the network. One
// worker thread delivers the queue in order; an attempt that fails to connect, times out or
// gets no 2xx is retried after first_backoff, then twice as long each time (at most an hour),
// up to max_attempts attempts. A notification given up on, dropped because the queue is full, or
// abandoned when the sender is destroyed is reported to the ErrorReporter under
// kWebhookErrorSite, naming its message id, never the secret.
//
// Thread-safe. The Clock and the ErrorReporter must outlive the sender. Destruction stops at
// once: the attempt in progress and the queue are abandoned (and reported).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/status.h"

namespace custody::attribution {

// The ErrorReporter site of undelivered notifications (custody_errors_total{site="…"}).
inline constexpr std::string_view kWebhookErrorSite = "approval.webhook";

struct WebhookOptions {
  std::string url;     // https://…; http:// only with allow_loopback_http and a loopback host
  std::string secret;  // the key's bytes (ParseWebhookSecret); never logged
  std::chrono::milliseconds timeout{5000};  // per attempt: connect, send, answer
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{500};
  std::string ca_file;               // PEM trust anchors for https; empty: the system store
  bool allow_loopback_http = false;  // development and tests
  size_t max_queue = 10000;          // notifications waiting; more are dropped (and reported)
};

// The key of a Standard Webhooks secret, "whsec_" followed by the base64 of 24 to 64 bytes
// (surrounding whitespace ignored). InvalidArgument otherwise; the error never repeats the text.
Result<std::string> ParseWebhookSecret(std::string_view text);
// Reads the secret from a file. FailedPrecondition naming the mode if group or others may read
// or write it (anything beyond 0600); errors name the file by its name only.
Result<std::string> ReadWebhookSecretFile(const std::string& path);
// The webhook-signature header's value for one attempt: "v1,<base64 HMAC-SHA256>".
std::string WebhookSignature(std::string_view secret, std::string_view msg_id, int64_t timestamp,
                             std::string_view body);

class WebhookSender {
 public:
  // InvalidArgument for a URL that is not https (or loopback http when allowed), an empty
  // secret, or limits below one.
  static Result<std::unique_ptr<WebhookSender>> Create(WebhookOptions options, const Clock& clock,
                                                       ErrorReporter& errors);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues `body` (JSON) for delivery under `msg_id` and returns at once. A message id with
  // spaces or control characters, or one past a full queue, is dropped and reported.
  void Send(std::string msg_id, std::string body);

  struct Stats {
    uint64_t delivered = 0;  // answered 2xx
    uint64_t failed = 0;     // given up on after max_attempts
    uint64_t dropped = 0;    // refused by Send (queue full, bad id)
    uint64_t attempts = 0;   // HTTP requests tried, retries included
  };
  Stats stats() const;
  // Waits until every queued notification is delivered or given up on, at most `limit`; false
  // if some are still pending then. For tests and orderly shutdowns.
  bool WaitIdle(std::chrono::milliseconds limit);

 private:
  struct Impl;
  explicit WebhookSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::attribution
