// Client: a small HTTP/1.1 client over one keep-alive connection (Boost.Beast, C++20
// coroutines), with optional TLS and Server-Sent Events reading. The MCP gateway uses it to reach
// upstream servers; tests use it to talk to `custody serve`.
//
// HttpClient is not thread-safe: one coroutine at a time per instance. It reconnects when the
// server closed the connection. BlockingHttpClient wraps one in its own io_context for callers
// outside a coroutine (tests, CLI tools).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/http.h"

namespace custody::http {

struct ClientOptions {
  bool tls = false;
  bool verify_peer = true;                   // with tls: verify the certificate chain and host name
  std::string ca_file;                       // PEM trust anchors; default: the system store
  std::chrono::milliseconds timeout{30000};  // per request (connect + write + read)
  size_t max_response_bytes = 64 * 1024 * 1024;
  // When set, the client connects to these IP addresses (literals, tried in order) and never
  // resolves `host`, which still names the server: the Host header, TLS SNI and the
  // certificate's host name check. For callers that resolved and vetted the addresses
  // themselves (no second lookup that DNS rebinding could answer differently).
  std::vector<std::string> connect_addresses;
};

// Whether `status` is a client's refusal of a response body larger than max_response_bytes.
bool IsResponseTooLarge(const Status& status);

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  Headers headers;
  std::string body;
  std::optional<std::chrono::milliseconds> timeout;  // overrides ClientOptions::timeout
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  bool event_stream = false;  // the body was read as events (they went to on_event): body empty
};

struct SseEvent {
  std::string event;  // "message" when the stream did not name it
  std::string data;
  std::string id;
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor ex, std::string host, uint16_t port,
             ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Unavailable for connection and I/O failures (including timeouts); any HTTP status is a
  // successful result.
  boost::asio::awaitable<Result<ClientResponse>> Send(ClientRequest request);
  // Sends `request` and reads a text/event-stream response, calling `on_event` per event until
  // the stream ends or `on_event` returns false. Returns the response head (body empty).
  // max_response_bytes bounds each event (Unavailable "too large"), not the stream.
  boost::asio::awaitable<Result<ClientResponse>> Stream(
      ClientRequest request, std::function<bool(const SseEvent&)> on_event);
  // Sends `request` and reads the response as its Content-Type says. A text/event-stream body
  // goes to `on_event`, event by event, until the stream ends or `on_event` returns false; the
  // head comes back with event_stream set, and the timeout bounds only what precedes the body.
  // Any other body is read whole, within the timeout. max_response_bytes bounds that body, or
  // each event. A kept-alive connection that the server closed before answering is reopened
  // once; the request is never sent again after the server began to answer.
  boost::asio::awaitable<Result<ClientResponse>> Exchange(
      ClientRequest request, std::function<bool(const SseEvent&)> on_event);
  // Closes the connection; the next request opens a new one. An operation in progress fails
  // with Unavailable: only its socket is closed here (a pending TLS operation still uses the
  // stream object), and the stream is destroyed once that operation has returned. The client
  // itself must outlive every operation.
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BlockingHttpClient {
 public:
  BlockingHttpClient(std::string host, uint16_t port, ClientOptions options = {});
  ~BlockingHttpClient();
  Result<ClientResponse> Send(ClientRequest request);
  Result<ClientResponse> Stream(ClientRequest request,
                                std::function<bool(const SseEvent&)> on_event);
  Result<ClientResponse> Exchange(ClientRequest request,
                                  std::function<bool(const SseEvent&)> on_event);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::http
