// Server: the HTTP/1.1 server (Boost.Beast over Asio, one C++20 coroutine per connection).
//
// - Keep-alive; pipelined requests are answered in order (a connection reads its next request
//   only after the previous response is written).
// - Limits: header bytes (431), body bytes (413, also when Content-Length announces too much),
//   a deadline for the whole header and another for the body (408, then the connection closes;
//   an idle keep-alive connection is just closed). A slow client holds only its own coroutine.
// - Every response carries X-Request-ID (a sane caller-supplied one, else a UUIDv7). Errors use
//   the one JSON shape of http.h. Auth is checked per route before the handler runs.
// - Optional TLS from PEM certificate and key files.
// - Shutdown(): stop accepting, close idle connections, let in-flight requests finish (bounded by
//   shutdown_timeout), then stop the worker threads.
//
// Thread-safe. The Router, Authenticator, Clock and Random must outlive the Server.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/random.h"
#include "common/status.h"
#include "http/http.h"

namespace custody::http {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IP literal
  uint16_t port = 8750;            // 0: any free port (see Server::port())
  int threads = 0;                 // 0: std::thread::hardware_concurrency()
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds shutdown_timeout{30000};
  std::string tls_cert_file;  // PEM chain; TLS is on when both files are set
  std::string tls_key_file;   // PEM private key
};

class Server {
 public:
  Server(ServerOptions options, const Router& router, Authenticator* authenticator,
         RequestObserver observer, const Clock& clock, Random& random);
  ~Server();  // Shutdown() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the worker threads. Unavailable if the address is in use,
  // InvalidArgument for a bad address or unreadable TLS files.
  Status Start();
  // The bound port (the real one when options.port was 0).
  uint16_t port() const;
  bool tls() const;
  int threads() const;
  // Graceful stop; blocks until done. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::http
