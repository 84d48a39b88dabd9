#include "mcp/session_registry.h"

#include "mcp/sse_sink.h"

namespace custody::mcp {

using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr std::string_view kUnknown = "unknown or ended MCP session";
constexpr std::string_view kOthers = "this MCP session belongs to another Custody session";
constexpr size_t kEndedKept = 10000;
}  // namespace

SessionRegistry::SessionRegistry(std::chrono::milliseconds idle_timeout,
                                 size_t max_per_custody_session)
    : idle_timeout_(idle_timeout), max_per_custody_session_(max_per_custody_session) {}

SessionRegistry::~SessionRegistry() = default;

Status SessionRegistry::Open(const std::string& id, McpSession session) {
  MutexLock lock(mu_);
  // Idle sessions end here too (at most once a second), not only when they are used again.
  auto now = SteadyClock::now();
  if (now - last_purge_ > std::chrono::seconds(1)) {
    last_purge_ = now;
    std::vector<std::string> ids;
    for (const auto& [sid, _] : sessions_) ids.push_back(sid);
    for (const auto& i : ids) ExpireIfIdle(i);
  }
  size_t mine = 0;
  for (const auto& [_, m] : sessions_) mine += m.sid == session.sid;
  if (mine >= max_per_custody_session_) {
    return FailedPreconditionError("this Custody session already has " + std::to_string(mine) +
                                   " MCP sessions (mcp.max_sessions_per_custody_session); end one "
                                   "with DELETE before starting another");
  }
  session.last_used = now;
  sessions_[id] = std::move(session);
  return OkStatus();
}

McpSession* SessionRegistry::UseLocked(const std::string& id, std::string* why) {
  ExpireIfIdle(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    auto e = ended_.find(id);
    *why = e != ended_.end() ? e->second : std::string(kUnknown);
    return nullptr;
  }
  it->second.last_used = SteadyClock::now();
  return &it->second;
}

Status SessionRegistry::CheckLocked(const std::string& id, const std::string& scope,
                                    const std::string& sid, McpSession** out) {
  std::string why(kUnknown);
  McpSession* m = UseLocked(id, &why);
  if (!m || m->server != scope) return NotFoundError(why);
  if (m->sid != sid) return PermissionDeniedError(std::string(kOthers));
  *out = m;
  return OkStatus();
}

Status SessionRegistry::Use(const std::string& id, const std::string& scope,
                            const std::string& sid) {
  MutexLock lock(mu_);
  McpSession* m = nullptr;
  return CheckLocked(id, scope, sid, &m);
}

Status SessionRegistry::AttachStream(const std::string& id, const std::string& scope,
                                     const std::string& sid, std::shared_ptr<SseSink> stream,
                                     std::shared_ptr<SseSink>* old) {
  MutexLock lock(mu_);
  McpSession* m = nullptr;
  RETURN_IF_ERROR(CheckLocked(id, scope, sid, &m));
  *old = std::exchange(m->stream, std::move(stream));
  return OkStatus();
}

Status SessionRegistry::Close(const std::string& id, const std::string& scope,
                              const std::string& sid, const std::string& reason,
                              std::shared_ptr<SseSink>* stream,
                              std::vector<UpstreamCancel>* cancels) {
  MutexLock lock(mu_);
  ExpireIfIdle(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.server != scope) {
    return NotFoundError(std::string(kUnknown));
  }
  if (it->second.sid != sid) return PermissionDeniedError(std::string(kOthers));
  *stream = std::move(it->second.stream);
  sessions_.erase(it);
  *cancels = TakeCancels(id, nullptr, reason);
  return OkStatus();
}

std::optional<std::string> SessionRegistry::EndedWithRevokedSession(
    const std::string& id, const std::string& revoked_sid) {
  MutexLock lock(mu_);
  std::string why =
      "the Custody session of this MCP session is revoked (contained); the MCP session is gone";
  bool known = false;
  if (auto e = ended_.find(id); e != ended_.end()) {
    why = e->second;
    known = true;
  }
  auto it = sessions_.find(id);
  if (it != sessions_.end() && it->second.sid == revoked_sid) {
    sessions_.erase(it);
    known = true;
  }
  if (!known) return std::nullopt;
  return why;
}

SessionRegistry::Ended SessionRegistry::EndSessionsOf(const std::set<std::string>& sids,
                                                      const std::string& why,
                                                      const std::string& cancel_reason) {
  Ended out;
  MutexLock lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (!sids.count(it->second.sid)) {
      ++it;
      continue;
    }
    if (it->second.stream) out.streams.push_back(std::move(it->second.stream));
    std::string id = (it++)->first;
    EndLocked(id, why);
    ++out.sessions;
  }
  out.cancels = TakeCancels("", &sids, cancel_reason);
  for (const std::string& sid : sids) {
    if (contained_.insert(sid).second) contained_order_.push_back(sid);
  }
  while (contained_order_.size() > kMaxRemembered) {
    contained_.erase(contained_order_.front());
    contained_order_.pop_front();
  }
  return out;
}

bool SessionRegistry::IsStateless(const std::string& scope) {
  return scope.starts_with(kStatelessPrefix);
}

bool SessionRegistry::CallWithheld(const CallKey& key, const std::string& sid) const {
  MutexLock lock(mu_);
  if (IsStateless(key.first)) return contained_.count(sid) > 0;
  return !sessions_.count(key.first) && ended_.count(key.first) > 0;
}

bool SessionRegistry::EndedByGateway(const std::string& id) const {
  MutexLock lock(mu_);
  return !sessions_.count(id) && ended_.count(id) > 0;
}

bool SessionRegistry::ClientDeclared(const std::string& id, std::string_view name) const {
  MutexLock lock(mu_);
  auto it = sessions_.find(id);
  return it != sessions_.end() && it->second.client_capabilities.count(name) > 0;
}

void SessionRegistry::EndLocked(const std::string& id, std::string why) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (it->second.stream) it->second.stream->Close();
  sessions_.erase(it);
  if (ended_.insert_or_assign(id, std::move(why)).second) ended_order_.push_back(id);
  while (ended_order_.size() > kEndedKept) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

bool SessionRegistry::ExpireIfIdle(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  const McpSession& m = it->second;
  if (SteadyClock::now() - m.last_used <= idle_timeout_) return false;
  if (m.stream && m.stream->open()) return false;
  auto first = inflight_.lower_bound({id, std::string()});
  if (first != inflight_.end() && first->first.first == id) return false;  // a call runs
  int64_t ms = idle_timeout_.count();
  EndLocked(id, "the MCP session expired after " +
                    (ms < 10000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s") +
                    " without use; initialize again");
  return true;
}

std::vector<UpstreamCancel> SessionRegistry::TakeCancels(const std::string& mcp_session,
                                                         const std::set<std::string>* sids,
                                                         const std::string& reason) {
  std::vector<UpstreamCancel> out;
  for (auto& [key, f] : inflight_) {
    if (!mcp_session.empty() && key.first != mcp_session) continue;
    if (sids && !sids->count(f.sid)) continue;
    if (f.upstream_id != 0) {
      out.emplace_back(f.upstream, f.upstream_id);
    } else {
      f.cancel_reason = reason;  // cancelled by Forwarded once the upstream id is known
    }
  }
  return out;
}

bool SessionRegistry::BeginCall(const CallKey& key, Upstream* upstream, const std::string& sid) {
  MutexLock lock(mu_);
  if (IsStateless(key.first) ? contained_.count(sid) > 0
                             : sessions_.find(key.first) == sessions_.end()) {
    return false;
  }
  inflight_[key] = Inflight{upstream, 0, sid, ""};
  return true;
}

std::string SessionRegistry::Forwarded(const CallKey& key, int64_t upstream_id) {
  MutexLock lock(mu_);
  auto it = inflight_.find(key);
  if (it == inflight_.end() || upstream_id == 0) return "";  // already answered
  it->second.upstream_id = upstream_id;
  return it->second.cancel_reason;
}

void SessionRegistry::EndCall(const CallKey& key) {
  MutexLock lock(mu_);
  inflight_.erase(key);
}

std::optional<UpstreamCancel> SessionRegistry::CancelCall(const CallKey& key,
                                                          const std::string& reason) {
  MutexLock lock(mu_);
  auto it = inflight_.find(key);
  if (it == inflight_.end()) return std::nullopt;
  if (it->second.upstream_id == 0) {
    it->second.cancel_reason = reason;
    return std::nullopt;
  }
  return UpstreamCancel{it->second.upstream, it->second.upstream_id};
}

std::vector<std::shared_ptr<SseSink>> SessionRegistry::StreamsSeeing(const std::string& server,
                                                                     bool aggregate_too) const {
  std::vector<std::shared_ptr<SseSink>> out;
  MutexLock lock(mu_);
  for (const auto& [_, s] : sessions_) {
    if (s.stream && ((aggregate_too && s.server.empty()) || s.server == server)) {
      out.push_back(s.stream);
    }
  }
  return out;
}

std::optional<std::shared_ptr<SseSink>> SessionRegistry::StreamOf(const std::string& id) const {
  MutexLock lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.stream;
}

std::vector<std::shared_ptr<SseSink>> SessionRegistry::TakeStreams() {
  std::vector<std::shared_ptr<SseSink>> out;
  MutexLock lock(mu_);
  for (auto& [_, s] : sessions_) {
    if (s.stream) out.push_back(std::move(s.stream));
  }
  return out;
}

size_t SessionRegistry::size() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

}  // namespace custody::mcp
