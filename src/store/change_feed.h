// ChangeFeed: how the nodes of one deployment (several `custody serve` on one PostgreSQL
// database) tell each other that shared state changed, so that what each node keeps in memory
// follows at once: the active policy set, the token signing keys, and revocations (whose
// listeners end the MCP sessions, streams and calls a node holds for a revoked session).
//
// A notification is only a hint to re-read the store: the store stays the truth. Notifications
// can be lost (a dropped connection), so every node also re-reads on a bounded poll (on_tick)
// and after each reconnection; and every request still checks revocation in the store itself,
// so a lost notification never lets a revoked session act. A single node needs no feed.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace custody::store {

class ChangeFeed {
 public:
  // Topic and payload of a change another node published.
  using Handler = std::function<void(const std::string& topic, const std::string& payload)>;
  virtual ~ChangeFeed() = default;

  // Tells the other nodes that `topic` changed; call it after the change is committed. The
  // payload is short text (at most kMaxPayload bytes); topics are single words.
  static constexpr size_t kMaxPayload = 7000;
  virtual Status Publish(const std::string& topic, const std::string& payload) = 0;

  // Starts delivering, on the feed's own thread: `on_change` for each change another node
  // published, and `on_tick` at each poll interval and after each (re)connection. Handlers must
  // not block for long. Stop (or the destructor) ends delivery and joins the thread.
  virtual void Start(Handler on_change, std::function<void()> on_tick) = 0;
  virtual void Stop() = 0;
};

}  // namespace custody::store
