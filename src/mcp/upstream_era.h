// The gateway as a client of an upstream that speaks MCP 2026-07-28 (docs/MCP.md, "Upstreams of
// either era"). Both transports probe each server with server/discover before any initialize:
// a DiscoverResult that lists 2026-07-28 makes the upstream modern, anything else (an error, a
// result without that version, or on stdio no answer within kDiscoverWait) makes it a
// 2025-era upstream, spoken to exactly as before. The transports do the I/O; ModernEra holds
// what differs for a modern upstream and is the same for both:
// - every request carries the per-request _meta (protocol version, client capabilities, client
//   info, the log level last set);
// - the methods the revision removed are answered by the gateway: ping ({}), logging/setLevel
//   (kept, sent as _meta logLevel), resources/subscribe and unsubscribe (kept, and the
//   subscriptions/listen stream is opened again with the new resourceSubscriptions);
// - an input_required result becomes requests to the client, as a 2025-era server would send
//   them (sampling/createMessage, elicitation/create, roots/list), under ids of the gateway's
//   own (each with an `inputKey` member: the server's key, which a 2026-07-28 client is shown);
//   when each is answered the request is sent again with inputResponses and the server's
//   requestState, which never leaves the gateway. A client's error answer ends the request
//   (-32021 with requiredCapabilities when the client lacks the capability);
// - notifications from the listen stream lose their subscriptionId tag; its acknowledgement
//   is dropped.
//
// Thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "mcp/upstream.h"

namespace custody::mcp {

inline constexpr std::string_view kModernProtocol = "2026-07-28";
// How long a stdio server may take to answer the server/discover probe before it is taken for
// a 2025-era server that ignores requests before initialize.
inline constexpr std::chrono::milliseconds kDiscoverWait{3000};
// Rounds of input_required one request may take before the gateway gives up on it.
inline constexpr int kMaxInputRounds = 10;

// The server/discover probe with id `id`, serialized.
std::string DiscoverRequest(int64_t id);
// The capabilities (as CapabilityNames) of a server whose answer to server/discover
// ({"result":…} or {"error":…}) shows it serves 2026-07-28; nullopt otherwise.
std::optional<std::set<std::string, std::less<>>> ModernCapabilities(
    const boost::json::object& answer);
// The Mcp-Name header for a request (params.name of tools/call and prompts/get, params.uri of
// resources/read), in the revision's =?base64?…?= form when it is not plain ASCII; nullopt when
// the request has none.
std::optional<std::string> McpNameHeader(const boost::json::object& request);

class ModernEra {
 public:
  explicit ModernEra(const UpstreamOptions& options);

  // For a request the revision removed: the gateway's own answer ({"result":…} or
  // {"error":…}); *listen_changed tells whether the resource subscriptions changed. nullopt
  // for a request to send.
  std::optional<boost::json::object> Local(const boost::json::object& request, bool* listen_changed)
      EXCLUDES(mu_);
  // Puts the per-request _meta on a request about to be sent (idempotent).
  void Shape(boost::json::object& request) const EXCLUDES(mu_);
  // The subscriptions/listen request for a server with `capabilities`; nullopt when it
  // declares nothing to listen to.
  std::optional<boost::json::object> ListenRequest(
      int64_t id, const std::set<std::string, std::less<>>& capabilities) const EXCLUDES(mu_);
  // A server message that is no response. False: drop it (the listen acknowledgement);
  // otherwise the subscriptionId tag is gone.
  static bool Inbound(boost::json::object& message);

  struct Step {
    enum Kind { kFinal, kAsk, kRetry, kWait } kind = kWait;
    int64_t call = 0;                       // the request this is about
    boost::json::object answer;             // kFinal: {"result":…} or {"error":…}
    std::vector<boost::json::object> asks;  // kAsk: JSON-RPC requests for the client
    boost::json::object request;            // kRetry: the request to send again
  };
  // The server answered request `id` (as sent: `request`): kFinal, or kAsk for an
  // input_required result.
  Step OnAnswer(int64_t id, const boost::json::object& request, boost::json::object answer)
      EXCLUDES(mu_);
  // The client answered one of the asks (`answer`: its "result" or "error" member). nullopt
  // when `id` is none of the gateway's asks; kWait while other asks of the round are open.
  std::optional<Step> OnRespond(const boost::json::value& id, boost::json::object answer)
      EXCLUDES(mu_);
  // A kAsk step's requests handed to options.on_request one by one, then
  // options.on_requests_end: kWait. Without on_request the request cannot go on: kFinal with
  // an error. Any other step is returned as it is.
  static Step Deliver(Step step, const UpstreamOptions& options);
  // Request `id` ended (answered, cancelled, timed out): its open asks are forgotten.
  void Forget(int64_t id) EXCLUDES(mu_);
  size_t open_rounds() const EXCLUDES(mu_);

 private:
  struct Round {
    boost::json::object request;  // as last sent
    boost::json::value state;     // the server's requestState (null when none)
    boost::json::object responses;
    std::map<std::string, std::string> asks;     // open: the gateway's id -> the server's key
    std::map<std::string, std::string> methods;  // the gateway's id -> method asked
    int rounds = 0;
  };

  // What every request's _meta says of the gateway (version, capabilities it relays, clientInfo).
  const boost::json::object meta_;
  mutable Mutex mu_;
  std::string log_level_ GUARDED_BY(mu_);
  std::multiset<std::string> resource_subscriptions_ GUARDED_BY(mu_);
  std::map<int64_t, Round> rounds_ GUARDED_BY(mu_);
  std::map<std::string, int64_t> asks_ GUARDED_BY(mu_);  // the gateway's id -> request
  uint64_t next_ask_ GUARDED_BY(mu_) = 1;
};

}  // namespace custody::mcp
