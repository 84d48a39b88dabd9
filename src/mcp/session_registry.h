// The gateway's MCP sessions: which Custody session each is bound to, its GET stream, its idle
// clock, the tools/call requests it has forwarded upstream (so that a cancellation, a DELETE or
// a containment can cancel them), and why an ended session ended (for a clear 404).
//
// The HTTP front end asks it questions; it answers with a Status (NotFound: no such live
// session here, with why; PermissionDenied: another Custody session's; FailedPrecondition: too
// many sessions) and never sends anything itself: streams to close and cancels to send are
// handed back, to be acted on outside its lock. Thread-safe; tested alone in
// session_registry_test.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace custody::mcp {

class SseSink;
class Upstream;

struct McpSession {
  std::string server;  // "" on the aggregate endpoint
  std::string sid;     // the Custody session it is bound to
  std::string agent;   // for logs
  std::string protocol_version;
  std::shared_ptr<SseSink> stream;  // the GET stream, when open
  std::chrono::steady_clock::time_point last_used;
  // What the client declared at initialize, as the relay checks it: "sampling", "roots",
  // "elicitation.form", "elicitation.url".
  std::set<std::string, std::less<>> client_capabilities;
};

// A forwarded call: (MCP session id, the client's request id as JSON). A stateless
// (2026-07-28) request has no MCP session: its first member is a key of its own, starting with
// kStatelessPrefix.
using CallKey = std::pair<std::string, std::string>;
inline constexpr std::string_view kStatelessPrefix = "stateless:";
// A call to cancel upstream: the upstream and its id for the call.
using UpstreamCancel = std::pair<Upstream*, int64_t>;

class SessionRegistry {
 public:
  SessionRegistry(std::chrono::milliseconds idle_timeout, size_t max_per_custody_session);
  ~SessionRegistry();

  // initialize: registers MCP session `id`. Idle sessions are ended first (at most once a
  // second). FailedPrecondition when its Custody session already has the maximum (the front
  // end answers 429).
  Status Open(const std::string& id, McpSession session);
  // A request on MCP session `id` at endpoint `scope` ("" for /mcp) by Custody session `sid`:
  // OK (its idle clock restarts), NotFound with why, or PermissionDenied.
  Status Use(const std::string& id, const std::string& scope, const std::string& sid);
  // GET: as Use, then `stream` replaces the session's stream; `*old` gets the one it replaced.
  Status AttachStream(const std::string& id, const std::string& scope, const std::string& sid,
                      std::shared_ptr<SseSink> stream, std::shared_ptr<SseSink>* old);
  // DELETE by the client: as Use (but NotFound says only "unknown or ended"), then the session
  // ends; `*stream` gets its stream and `*cancels` its forwarded calls, to cancel for `reason`.
  Status Close(const std::string& id, const std::string& scope, const std::string& sid,
               const std::string& reason, std::shared_ptr<SseSink>* stream,
               std::vector<UpstreamCancel>* cancels);
  // A request whose token was refused as revoked, naming MCP session `id`: if that session was
  // ended by the gateway or is bound to the revoked Custody session `revoked_sid`, it ends (if
  // still live) and why is returned; nullopt when it is none of those.
  std::optional<std::string> EndedWithRevokedSession(const std::string& id,
                                                     const std::string& revoked_sid);

  // Containment: every MCP session bound to one of `sids` ends (kept with `why` for the 404),
  // and every forwarded call of those Custody sessions is to be cancelled for `cancel_reason`.
  struct Ended {
    size_t sessions = 0;
    std::vector<std::shared_ptr<SseSink>> streams;  // to close
    std::vector<UpstreamCancel> cancels;            // to send
  };
  Ended EndSessionsOf(const std::set<std::string>& sids, const std::string& why,
                      const std::string& cancel_reason);
  // Whether MCP session `id` was ended by the gateway (containment, idle expiry), not by its
  // client and not unknown.
  bool EndedByGateway(const std::string& id) const;
  // Whether the result of call `key` of Custody session `sid` is to be withheld: its MCP
  // session was ended by the gateway, or (stateless) `sid` was contained, while it ran.
  bool CallWithheld(const CallKey& key, const std::string& sid) const;
  static bool IsStateless(const std::string& scope);
  // Whether live MCP session `id` declared client capability `name` (McpSession).
  bool ClientDeclared(const std::string& id, std::string_view name) const;

  // A call about to be forwarded through `upstream` for Custody session `sid`. False when the
  // MCP session has ended meanwhile, or (stateless) `sid` has been contained: nothing may go
  // upstream.
  bool BeginCall(const CallKey& key, Upstream* upstream, const std::string& sid);
  // Once Upstream::Call returned `upstream_id`: the reason a cancellation arrived with before
  // the id was known ("" if none, or if the call has already ended).
  std::string Forwarded(const CallKey& key, int64_t upstream_id);
  // The upstream answered (or failed): the call is no longer in flight.
  void EndCall(const CallKey& key);
  // notifications/cancelled from the client: the cancel to send now, or nullopt (none in
  // flight, or remembered until Forwarded).
  std::optional<UpstreamCancel> CancelCall(const CallKey& key, const std::string& reason);

  // The open GET streams of the sessions that see `server`: its own, and with `aggregate_too`
  // the aggregate ones (which see its tools, not its resources or prompts).
  std::vector<std::shared_ptr<SseSink>> StreamsSeeing(const std::string& server,
                                                      bool aggregate_too = true) const;
  // Live MCP session `id`'s GET stream (null when none is open); nullopt when it has ended.
  std::optional<std::shared_ptr<SseSink>> StreamOf(const std::string& id) const;
  // Every open stream, taken from its session (at shutdown).
  std::vector<std::shared_ptr<SseSink>> TakeStreams();

  size_t size() const;

 private:
  struct Inflight {
    Upstream* upstream = nullptr;
    int64_t upstream_id = 0;  // 0 until Upstream::Call returned
    std::string sid;
    std::string cancel_reason;  // set when cancelled before upstream_id was known
  };

  McpSession* UseLocked(const std::string& id, std::string* why) REQUIRES(mu_);
  // Use's checks; on OK, `*out` is the session.
  Status CheckLocked(const std::string& id, const std::string& scope, const std::string& sid,
                     McpSession** out) REQUIRES(mu_);
  bool ExpireIfIdle(const std::string& id) REQUIRES(mu_);
  void EndLocked(const std::string& id, std::string why) REQUIRES(mu_);
  std::vector<UpstreamCancel> TakeCancels(const std::string& mcp_session,
                                          const std::set<std::string>* sids,
                                          const std::string& reason) REQUIRES(mu_);

  const std::chrono::milliseconds idle_timeout_;
  const size_t max_per_custody_session_;

  mutable Mutex mu_;
  std::unordered_map<std::string, McpSession> sessions_ GUARDED_BY(mu_);
  // MCP session ids the gateway ended, with why (bounded), for a clear 404.
  std::unordered_map<std::string, std::string> ended_ GUARDED_BY(mu_);
  std::deque<std::string> ended_order_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_purge_ GUARDED_BY(mu_);
  std::map<CallKey, Inflight> inflight_ GUARDED_BY(mu_);
  // Custody sessions containment ended (bounded, oldest forgotten first): stateless calls of
  // theirs are refused and their results withheld.
  static constexpr size_t kMaxRemembered = 100000;
  std::set<std::string> contained_ GUARDED_BY(mu_);
  std::deque<std::string> contained_order_ GUARDED_BY(mu_);
};

}  // namespace custody::mcp
