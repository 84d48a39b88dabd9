#include "mcp/subscriptions.h"

namespace custody::mcp {

bool Subscriptions::Subscribe(const std::string& server, const std::string& uri,
                              const std::string& subscriber) {
  MutexLock lock(mu_);
  auto& set = subscribers_[{server, uri}];
  bool first = set.empty();
  set.insert(subscriber);
  return first;
}

bool Subscriptions::Unsubscribe(const std::string& server, const std::string& uri,
                                const std::string& subscriber) {
  MutexLock lock(mu_);
  auto it = subscribers_.find({server, uri});
  if (it == subscribers_.end() || !it->second.erase(subscriber)) return false;
  if (!it->second.empty()) return false;
  subscribers_.erase(it);
  return true;
}

std::vector<std::pair<std::string, std::string>> Subscriptions::Drop(
    const std::string& subscriber) {
  std::vector<std::pair<std::string, std::string>> last;
  MutexLock lock(mu_);
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    if (it->second.erase(subscriber) && it->second.empty()) {
      last.push_back(it->first);
      it = subscribers_.erase(it);
    } else {
      ++it;
    }
  }
  return last;
}

std::vector<std::string> Subscriptions::SubscribersOf(const std::string& server,
                                                      const std::string& uri) const {
  MutexLock lock(mu_);
  auto it = subscribers_.find({server, uri});
  if (it == subscribers_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::string Subscriptions::AddListener(Listener l) {
  MutexLock lock(mu_);
  std::string key = "listen:" + std::to_string(next_listener_++);
  listeners_[key] = std::move(l);
  return key;
}

std::vector<std::pair<std::string, Listener>> Subscriptions::ListenersFor(
    const std::string& server, const std::string& what) const {
  std::vector<std::pair<std::string, Listener>> out;
  MutexLock lock(mu_);
  for (const auto& [key, l] : listeners_) {
    if (!l.scope.empty() && l.scope != server) continue;
    bool wants = (what == "tools" && l.filter.tools) || (what == "prompts" && l.filter.prompts) ||
                 (what == "resources" && l.filter.resources);
    if (wants) out.emplace_back(key, l);
  }
  return out;
}

std::optional<Listener> Subscriptions::FindListener(const std::string& key) const {
  MutexLock lock(mu_);
  auto it = listeners_.find(key);
  if (it == listeners_.end()) return std::nullopt;
  return it->second;
}

void Subscriptions::RemoveListener(const std::string& key) {
  MutexLock lock(mu_);
  listeners_.erase(key);
}

std::vector<std::pair<std::string, Listener>> Subscriptions::TakeListenersOf(
    const std::set<std::string>& sids) {
  std::vector<std::pair<std::string, Listener>> out;
  MutexLock lock(mu_);
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (sids.count(it->second.sid)) {
      out.emplace_back(it->first, std::move(it->second));
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<std::pair<std::string, Listener>> Subscriptions::TakeAll() {
  MutexLock lock(mu_);
  std::vector<std::pair<std::string, Listener>> out(std::make_move_iterator(listeners_.begin()),
                                                    std::make_move_iterator(listeners_.end()));
  listeners_.clear();
  return out;
}

}  // namespace custody::mcp
