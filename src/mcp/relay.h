// What an upstream MCP server sends toward a client while one of the gateway's calls runs:
// requests (sampling/createMessage, elicitation/create, roots/list) and log notifications.
// The relay keeps the calls in flight that such messages can belong to, picks the one a
// message belongs to, gives each relayed request an id of the gateway's own (the client never
// sees the server's, and two servers' ids never collide), and accepts a client's answer only
// from the MCP session it was sent to.
//
// Which call: the one whose response stream carried the message (Streamable HTTP upstreams
// tell; a message that came with a request of ours that is no call goes nowhere), else, when
// every call in flight on that server belongs to one MCP session, that session's latest call. When
// calls of several MCP sessions are in flight and nothing says which one a message is for, nobody
// is asked: the upstream session is shared by every client of a server, and guessing would show one
// client another's question.
//
// Like SessionRegistry it sends nothing itself. Thread-safe; tested alone in relay_test.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace custody::mcp {

// The call a relayed message goes to the client with.
class RelayTarget {
 public:
  virtual ~RelayTarget() = default;
  // Sends one JSON-RPC message to the client on the call's stream (the call's response becomes
  // an SSE stream if it was not one yet). False when the call has been answered already or its
  // client takes no event stream.
  virtual bool Deliver(const std::string& message) = 0;
};

// A relayed request waiting for the client's answer.
struct RelayedRequest {
  std::string id;  // the gateway's id for it: what the client sees and answers
  // Its key in a 2026-07-28 client's inputRequests and inputResponses: the server's own key
  // when a 2026-07-28 server asked it (and no other waiting request of the call has that key),
  // else `id`.
  std::string key;
  std::string upstream_id;  // the server's id for it, as JSON
  std::string method;
  std::string params;       // as JSON ("" when absent)
  std::string mcp_session;  // the client asked
  uint64_t call = 0;
  uint64_t seq = 0;  // order of arrival
  std::shared_ptr<RelayTarget> target;
};

class Relay {
 public:
  // A call about to be forwarded to `server` for MCP session `mcp_session`; its handle.
  uint64_t Begin(const std::string& server, const std::string& mcp_session,
                 std::weak_ptr<RelayTarget> target);
  // The upstream id the call was sent under (for messages that name it).
  void Forwarded(uint64_t call, int64_t upstream_id);
  // The call ended: it leaves the relay, and its requests still waiting are returned.
  std::vector<RelayedRequest> End(uint64_t call);

  struct Route {
    uint64_t call = 0;
    std::string mcp_session;
    std::shared_ptr<RelayTarget> target;
  };
  // The call a message from `server` belongs to (`related`: the upstream id whose stream
  // carried it, 0 if unknown). NotFound when no call is in flight on `server`;
  // FailedPrecondition when calls of several MCP sessions are and nothing says which. A
  // `related` id no call has yet, while some call's id is not recorded, is waited for (at most
  // kForwardedWait); then only calls whose id is still unknown are candidates.
  Result<Route> Find(const std::string& server, int64_t related) const;

  // Registers a request for `route`'s client; returns it with its gateway id (and key:
  // `server_key` if given and free in the call).
  RelayedRequest Add(const Route& route, std::string upstream_id, std::string method,
                     std::string params, std::string server_key = "");
  // The client of `mcp_session` answered request `id`: the request, no longer waiting.
  // NotFound when no request with that id waits for that session's answer (never sent, sent
  // to another session, or answered already).
  Result<RelayedRequest> Take(const std::string& mcp_session, const std::string& id);

  // The requests of call `call` still waiting for an answer, oldest first.
  std::vector<RelayedRequest> Waiting(uint64_t call) const;

  // A 2026-07-28 client is asked through an input_required result, and its retry carries the
  // result's requestState: an unguessable handle of the gateway's naming the waiting call and
  // the Custody session it belongs to. Each state is good for one retry.
  struct Parked {
    uint64_t call = 0;
    std::string sid;
    std::string method;
  };
  void Park(const std::string& state, Parked parked);
  // The call `state` names, taken (so a state is used once); nullopt for a state the gateway
  // never issued, one used already, or one whose call has ended.
  std::optional<Parked> Unpark(const std::string& state);
  // The call's target while it is in flight.
  std::shared_ptr<RelayTarget> TargetOf(uint64_t call) const;

  size_t calls() const;
  size_t waiting() const;

 private:
  struct Flight {
    std::string server;
    std::string mcp_session;
    int64_t upstream_id = 0;
    std::weak_ptr<RelayTarget> target;
  };

  // How long Find waits for a call's upstream id that a message names before Forwarded records
  // it (the server can answer before Upstream::Call returns).
  static constexpr std::chrono::milliseconds kForwardedWait{200};

  mutable Mutex mu_;
  mutable CondVar forwarded_;  // notified by Forwarded
  uint64_t next_call_ GUARDED_BY(mu_) = 1;
  uint64_t next_request_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Flight> flights_ GUARDED_BY(mu_);
  std::map<std::string, RelayedRequest> waiting_ GUARDED_BY(mu_);  // by gateway id
  std::map<std::string, Parked> parked_ GUARDED_BY(mu_);           // by requestState
};

}  // namespace custody::mcp
