// HttpUpstream: a remote MCP server reached over the Streamable HTTP transport (MCP 2025-06-18):
// every client message is an HTTP POST to one URL, answered with JSON or with an SSE stream.
//
// One io_context on its own thread runs everything: the initialize handshake (retried with
// exponential backoff while the server is unreachable), one POST per request over a small pool
// of keep-alive connections (so many requests are in flight at once, each under a fresh upstream
// id), the optional GET stream for server-initiated notifications, and a 100 ms deadline sweep.
// The session id the server issues (Mcp-Session-Id) and the negotiated MCP-Protocol-Version go
// with every later request; a 404 on a request that carried the session id re-initializes once
// and retries that request once. Requests from the server (on an SSE stream) are answered by
// POST: ping with {}, anything else with method-not-found. Configured headers (the operator's
// credential for this server, with ${VAR} expanded from the environment at construction) go
// with every request; nothing of the agent's is ever sent.
//
// Thread-safe. Callbacks run on the upstream's thread (or, for Call refusals and Cancel, on the
// caller's) and never after Stop() returns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "mcp/upstream.h"

namespace custody::mcp {

class HttpUpstream final : public Upstream {
 public:
  // InvalidArgument for a url that is not http(s)://host[:port][/path], a header value naming an
  // unset ${VAR}, or a header the transport sets itself (never echoes header values).
  static Result<std::unique_ptr<HttpUpstream>> Create(UpstreamConfig config,
                                                      UpstreamOptions options);
  ~HttpUpstream() override;  // Stop()
  HttpUpstream(const HttpUpstream&) = delete;
  HttpUpstream& operator=(const HttpUpstream&) = delete;

  // Starts the thread and the handshake; returns at once.
  void Start() override;
  // Fails what is in flight ("the gateway is shutting down"), ends the upstream session with a
  // best-effort DELETE (2 s at most) and joins the thread.
  void Stop() override;

  using Upstream::Call;
  // The Transaction Token of `extras` goes in the Txn-Token header of every POST carrying the
  // request, minted anew for each (a retry after a 404 or an input_required round too).
  int64_t Call(const std::string& method, boost::json::value params, RequestExtras extras,
               UpstreamCallback done) override;
  // notifications/cancelled goes upstream if the request was sent; its stream is abandoned.
  void Cancel(int64_t id, const std::string& reason) override;
  void Notify(const std::string& method, boost::json::value params) override;
  void Respond(const boost::json::value& id, boost::json::object answer) override;

  const std::string& name() const override;
  bool ready() const override;
  bool HasCapability(std::string_view name) const override;
  bool modern() const override;
  int64_t handshakes() const;  // completed initialize handshakes (1 + re-initializations)

 private:
  struct Impl;
  explicit HttpUpstream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::mcp
