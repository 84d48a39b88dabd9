// Who hears of what an upstream server announces: resource subscriptions (resources/subscribe
// of a 2025-era MCP session, resourceSubscriptions of a 2026-07-28 subscriptions/listen), and
// the listen streams of 2026-07-28 clients with the list changes each asked for.
//
// Every client of a server shares one upstream session, so the upstream is subscribed to a URI
// once, when its first subscriber comes, and unsubscribed when its last one goes: one client's
// unsubscribe never ends another's. Like SessionRegistry it sends nothing itself: it answers
// what to send upstream and to whom. Thread-safe; tested alone in subscriptions_test.cc.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace custody::mcp {

class SseSink;

// What a 2026-07-28 listen stream asked for (and, once acknowledged, what it gets).
struct ListenFilter {
  bool tools = false;             // toolsListChanged
  bool prompts = false;           // promptsListChanged
  bool resources = false;         // resourcesListChanged
  std::vector<std::string> uris;  // resourceSubscriptions (canonical URIs)
};

struct Listener {
  std::string scope;    // the endpoint's server, "" for /mcp
  std::string sid;      // the Custody session
  std::string id_json;  // the listen request's id: the subscriptionId of its notifications
  ListenFilter filter;
  std::shared_ptr<SseSink> sink;
};

class Subscriptions {
 public:
  // `subscriber` (an MCP session id, or a listener's key) subscribes to `uri` of `server`.
  // True when it is the URI's first subscriber: the upstream is to be subscribed.
  bool Subscribe(const std::string& server, const std::string& uri, const std::string& subscriber);
  // True when `subscriber` was the URI's last: the upstream is to be unsubscribed.
  bool Unsubscribe(const std::string& server, const std::string& uri,
                   const std::string& subscriber);
  // Everything `subscriber` held, dropped (its session or stream ended); the URIs of each
  // server left with no subscriber, to unsubscribe upstream.
  std::vector<std::pair<std::string, std::string>> Drop(const std::string& subscriber);
  // The subscribers of `uri` of `server`.
  std::vector<std::string> SubscribersOf(const std::string& server, const std::string& uri) const;

  // A listen stream; its key (for Subscribe and Drop) is returned.
  std::string AddListener(Listener l);
  // The listeners that see `server` (its own and /mcp ones) and asked for `what` ("tools",
  // "prompts", "resources"), with their keys.
  std::vector<std::pair<std::string, Listener>> ListenersFor(const std::string& server,
                                                             const std::string& what) const;
  std::optional<Listener> FindListener(const std::string& key) const;
  // The listener `key` is gone (its client closed the stream); it is forgotten.
  void RemoveListener(const std::string& key);
  // The listeners of Custody sessions `sids` (containment), removed and returned.
  std::vector<std::pair<std::string, Listener>> TakeListenersOf(const std::set<std::string>& sids);
  // Every listener, removed and returned (shutdown).
  std::vector<std::pair<std::string, Listener>> TakeAll();

 private:
  using UriKey = std::pair<std::string, std::string>;  // (server, canonical uri)
  mutable Mutex mu_;
  std::map<UriKey, std::set<std::string>> subscribers_ GUARDED_BY(mu_);
  std::map<std::string, Listener> listeners_ GUARDED_BY(mu_);
  uint64_t next_listener_ GUARDED_BY(mu_) = 1;
};

}  // namespace custody::mcp
