#include "mcp/relay.h"

#include <algorithm>

namespace custody::mcp {

uint64_t Relay::Begin(const std::string& server, const std::string& mcp_session,
                      std::weak_ptr<RelayTarget> target) {
  MutexLock lock(mu_);
  uint64_t call = next_call_++;
  flights_[call] = Flight{server, mcp_session, 0, std::move(target)};
  return call;
}

void Relay::Forwarded(uint64_t call, int64_t upstream_id) {
  MutexLock lock(mu_);
  if (auto it = flights_.find(call); it != flights_.end()) it->second.upstream_id = upstream_id;
  forwarded_.NotifyAll();
}

std::vector<RelayedRequest> Relay::End(uint64_t call) {
  std::vector<RelayedRequest> left;
  MutexLock lock(mu_);
  flights_.erase(call);
  std::erase_if(parked_, [call](const auto& kv) { return kv.second.call == call; });
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.call == call) {
      left.push_back(std::move(it->second));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  return left;
}

Result<Relay::Route> Relay::Find(const std::string& server, int64_t related) const {
  MutexLock lock(mu_);
  const Flight* chosen = nullptr;
  uint64_t chosen_call = 0;
  auto unrecorded = [&]() REQUIRES(mu_) {
    for (const auto& [call, f] : flights_) {
      if (f.server == server && f.upstream_id == 0) return true;
    }
    return false;
  };
  auto match = [&]() REQUIRES(mu_) {
    for (const auto& [call, f] : flights_) {
      if (f.server == server && f.upstream_id == related) {
        chosen = &f;
        chosen_call = call;
        return true;
      }
    }
    return false;
  };
  if (related != 0 && !match()) {
    // It came with a request of ours that is no call (a list, a completion): nobody's to
    // answer. Unless a call's id is not known yet: its message outran Forwarded, which follows
    // the send at once, so it is waited for (briefly), and then only such calls are candidates.
    if (!unrecorded()) return NotFoundError("the message came with a request that is not a call");
    forwarded_.WaitFor(mu_, kForwardedWait,
                       [&]() REQUIRES(mu_) { return match() || !unrecorded(); });
    if (!chosen && !unrecorded()) {
      return NotFoundError("the message came with a request that is not a call");
    }
  }
  if (!chosen) {
    for (const auto& [call, f] : flights_) {  // ascending: the latest call of a session wins
      if (f.server != server || (related != 0 && f.upstream_id != 0)) continue;
      if (chosen && f.mcp_session != chosen->mcp_session) {
        return FailedPreconditionError("calls of several MCP sessions are in flight on " + server +
                                       " and the message does not say which it belongs to");
      }
      chosen = &f;
      chosen_call = call;
    }
    if (!chosen) return NotFoundError("no call is in flight on " + server);
  }
  auto target = chosen->target.lock();
  if (!target) return NotFoundError("the call has ended");
  return Route{chosen_call, chosen->mcp_session, std::move(target)};
}

RelayedRequest Relay::Add(const Route& route, std::string upstream_id, std::string method,
                          std::string params, std::string server_key) {
  MutexLock lock(mu_);
  RelayedRequest r;
  r.seq = next_request_++;
  r.id = "custody-relay-" + std::to_string(r.seq);
  r.key = r.id;
  if (!server_key.empty() && !server_key.starts_with("custody-relay-")) {
    bool taken = false;
    for (const auto& [id, w] : waiting_)
      taken = taken || (w.call == route.call && w.key == server_key);
    if (!taken) r.key = std::move(server_key);
  }
  r.upstream_id = std::move(upstream_id);
  r.method = std::move(method);
  r.params = std::move(params);
  r.mcp_session = route.mcp_session;
  r.call = route.call;
  r.target = route.target;
  waiting_[r.id] = r;
  return r;
}

Result<RelayedRequest> Relay::Take(const std::string& mcp_session, const std::string& id) {
  MutexLock lock(mu_);
  auto it = waiting_.find(id);
  if (it == waiting_.end() || it->second.mcp_session != mcp_session) {
    return NotFoundError("no request with id " + id +
                         " is waiting for this MCP session's answer (never sent to it, or "
                         "answered already)");
  }
  RelayedRequest r = std::move(it->second);
  waiting_.erase(it);
  return r;
}

std::vector<RelayedRequest> Relay::Waiting(uint64_t call) const {
  MutexLock lock(mu_);
  std::vector<RelayedRequest> out;
  for (const auto& [id, r] : waiting_) {
    if (r.call == call) out.push_back(r);
  }
  std::sort(out.begin(), out.end(),
            [](const RelayedRequest& a, const RelayedRequest& b) { return a.seq < b.seq; });
  return out;
}

void Relay::Park(const std::string& state, Parked parked) {
  MutexLock lock(mu_);
  if (flights_.count(parked.call)) parked_[state] = std::move(parked);
}

std::optional<Relay::Parked> Relay::Unpark(const std::string& state) {
  MutexLock lock(mu_);
  auto it = parked_.find(state);
  if (it == parked_.end()) return std::nullopt;
  Parked p = std::move(it->second);
  parked_.erase(it);
  return p;
}

std::shared_ptr<RelayTarget> Relay::TargetOf(uint64_t call) const {
  MutexLock lock(mu_);
  auto it = flights_.find(call);
  return it == flights_.end() ? nullptr : it->second.target.lock();
}

size_t Relay::calls() const {
  MutexLock lock(mu_);
  return flights_.size();
}

size_t Relay::waiting() const {
  MutexLock lock(mu_);
  return waiting_.size();
}

}  // namespace custody::mcp
