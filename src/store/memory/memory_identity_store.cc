#include "store/memory/memory_identity_store.h"

#include <algorithm>
#include <tuple>

namespace custody::store {

using identity::Agent;
using identity::Session;
using identity::SigningKeyRecord;

Status MemoryIdentityStore::CreateAgent(const Agent& agent) {
  MutexLock lock(mu_);
  if (!agents_.emplace(agent.name, agent).second) {
    return AlreadyExistsError("agent \"" + agent.name + "\" exists");
  }
  return OkStatus();
}

Status MemoryIdentityStore::UpdateAgent(const Agent& agent) {
  MutexLock lock(mu_);
  auto it = agents_.find(agent.name);
  if (it == agents_.end()) return NotFoundError("no agent \"" + agent.name + "\"");
  it->second = agent;
  return OkStatus();
}

Result<Agent> MemoryIdentityStore::GetAgent(const std::string& name) {
  MutexLock lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end()) return NotFoundError("no agent \"" + name + "\"");
  return it->second;
}

Result<std::vector<Agent>> MemoryIdentityStore::ListAgents() {
  MutexLock lock(mu_);
  std::vector<Agent> out;
  for (const auto& [name, a] : agents_) out.push_back(a);
  return out;
}

Status MemoryIdentityStore::CreateSession(const Session& session) {
  MutexLock lock(mu_);
  if (auto p = sessions_.find(session.parent_sid); p != sessions_.end() && p->second.revoked) {
    return FailedPreconditionError("session " + session.parent_sid + " has been revoked");
  }
  if (auto a = agents_.find(session.agent); a != agents_.end() && a->second.disabled) {
    return FailedPreconditionError("agent \"" + session.agent + "\" is disabled");
  }
  if (!sessions_.emplace(session.sid, session).second) {
    return AlreadyExistsError("session " + session.sid + " exists");
  }
  session_order_.push_back(session.sid);
  if (!session.parent_sid.empty()) children_.emplace(session.parent_sid, session.sid);
  return OkStatus();
}

Result<Session> MemoryIdentityStore::GetSession(const std::string& sid) {
  MutexLock lock(mu_);
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return NotFoundError("no session " + sid);
  return it->second;
}

Result<std::vector<Session>> MemoryIdentityStore::TreeLocked(const std::string& sid) {
  auto root = sessions_.find(sid);
  if (root == sessions_.end()) return NotFoundError("no session " + sid);
  std::vector<Session> out = {root->second};
  for (size_t i = 0; i < out.size(); ++i) {
    auto [first, last] = children_.equal_range(out[i].sid);
    for (auto it = first; it != last; ++it) out.push_back(sessions_.at(it->second));
  }
  std::sort(out.begin(), out.end(), [](const Session& a, const Session& b) {
    return std::tie(a.depth, a.created_at, a.sid) < std::tie(b.depth, b.created_at, b.sid);
  });
  return out;
}

Result<std::vector<Session>> MemoryIdentityStore::SessionTree(const std::string& sid) {
  MutexLock lock(mu_);
  return TreeLocked(sid);
}

std::vector<std::string> MemoryIdentityStore::RevokeTreeLocked(const std::string& sid,
                                                               const std::string& reason,
                                                               int64_t now) {
  std::vector<std::string> revoked;
  Result<std::vector<Session>> tree = TreeLocked(sid);
  if (!tree.ok()) return revoked;  // callers look the session up first
  for (const Session& x : *tree) {
    Session& s = sessions_.at(x.sid);
    if (s.revoked) continue;
    s.revoked = true;
    s.revoked_at = now;
    s.revoke_reason = reason;
    revoked.push_back(s.sid);
  }
  return revoked;
}

Result<std::vector<std::string>> MemoryIdentityStore::RevokeSessionTree(const std::string& sid,
                                                                        const std::string& reason,
                                                                        int64_t now) {
  MutexLock lock(mu_);
  if (sessions_.count(sid) == 0) return NotFoundError("no session " + sid);
  return RevokeTreeLocked(sid, reason, now);
}

Result<std::vector<std::string>> MemoryIdentityStore::RevokeAgentSessions(const std::string& agent,
                                                                          const std::string& reason,
                                                                          int64_t now) {
  MutexLock lock(mu_);
  std::vector<std::string> live;
  for (const std::string& sid : session_order_) {
    const Session& s = sessions_.at(sid);
    if (s.agent == agent && !s.revoked) live.push_back(sid);
  }
  std::vector<std::string> all;
  for (const std::string& sid : live) {
    std::vector<std::string> r = RevokeTreeLocked(sid, reason, now);
    all.insert(all.end(), r.begin(), r.end());
  }
  return all;
}

Status MemoryIdentityStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  MutexLock lock(mu_);
  revoked_jtis_.emplace(jti, expires_at);  // a second revocation keeps the first
  return OkStatus();
}

Result<bool> MemoryIdentityStore::IsJtiRevoked(const std::string& jti) {
  MutexLock lock(mu_);
  return revoked_jtis_.count(jti) != 0;
}

Status MemoryIdentityStore::UseAssertionJti(const std::string& jti, int64_t expires_at) {
  MutexLock lock(mu_);
  if (!assertion_jtis_.emplace(jti, expires_at).second) {
    return AlreadyExistsError("client assertion jti already used");
  }
  return OkStatus();
}

Status MemoryIdentityStore::PurgeAssertionJtis(int64_t before) {
  MutexLock lock(mu_);
  std::erase_if(assertion_jtis_, [&](const auto& kv) { return kv.second < before; });
  return OkStatus();
}

Status MemoryIdentityStore::PutSigningKey(const SigningKeyRecord& key) {
  MutexLock lock(mu_);
  keys_[key.kid] = key;
  return OkStatus();
}

Result<std::vector<SigningKeyRecord>> MemoryIdentityStore::ListSigningKeys() {
  MutexLock lock(mu_);
  std::vector<SigningKeyRecord> out;
  for (const auto& [kid, k] : keys_) out.push_back(k);
  std::sort(out.begin(), out.end(), [](const SigningKeyRecord& a, const SigningKeyRecord& b) {
    return std::tie(a.created_at, a.kid) < std::tie(b.created_at, b.kid);
  });
  return out;
}

}  // namespace custody::store

namespace custody::store {

Status MemoryIdentityStore::CreateRefreshFamily(const identity::RefreshFamily& family,
                                                const std::string& token_sha256) {
  MutexLock lock(mu_);
  if (families_.count(family.family_id) != 0 || refresh_hashes_.count(token_sha256) != 0) {
    return AlreadyExistsError("refresh family " + family.family_id + " exists");
  }
  families_[family.family_id] = Family{family, token_sha256};
  refresh_hashes_[token_sha256] = family.family_id;
  return OkStatus();
}

Result<identity::RefreshLookup> MemoryIdentityStore::FindRefreshToken(
    const std::string& token_sha256) {
  MutexLock lock(mu_);
  auto h = refresh_hashes_.find(token_sha256);
  if (h == refresh_hashes_.end()) return NotFoundError("unknown refresh token");
  const Family& f = families_.at(h->second);
  identity::RefreshLookup out{f.family, f.current == token_sha256};
  out.family.sessions.clear();  // as the SQL stores: a lookup leaves the list out
  return out;
}

Status MemoryIdentityStore::RotateRefreshToken(const std::string& family_id,
                                               const std::string& presented_sha256,
                                               const std::string& next_sha256,
                                               const std::string& sid) {
  MutexLock lock(mu_);
  auto it = families_.find(family_id);
  if (it == families_.end()) return NotFoundError("no refresh family " + family_id);
  if (it->second.family.revoked) {
    return FailedPreconditionError("refresh family " + family_id + " is revoked");
  }
  if (it->second.current != presented_sha256) {
    return FailedPreconditionError("refresh token is no longer current");
  }
  if (refresh_hashes_.count(next_sha256) != 0) {
    return AlreadyExistsError("refresh token hash exists");
  }
  it->second.current = next_sha256;
  refresh_hashes_[next_sha256] = family_id;
  it->second.family.sessions.push_back(sid);
  return OkStatus();
}

Result<identity::RefreshFamily> MemoryIdentityStore::RevokeRefreshFamily(
    const std::string& family_id, const std::string& reason, int64_t now) {
  MutexLock lock(mu_);
  auto it = families_.find(family_id);
  if (it == families_.end()) return NotFoundError("no refresh family " + family_id);
  identity::RefreshFamily& f = it->second.family;
  if (!f.revoked) {
    f.revoked = true;
    f.revoked_at = now;
    f.revoke_reason = reason;
  }
  return f;
}

Status MemoryIdentityStore::CreateAuthorizationCode(const identity::AuthorizationCode& code,
                                                    const std::string& code_sha256) {
  MutexLock lock(mu_);
  if (!codes_.emplace(code_sha256, StoredCode{code, false}).second) {
    return AlreadyExistsError("authorization code hash exists");
  }
  return OkStatus();
}

Result<identity::CodeRedemption> MemoryIdentityStore::RedeemAuthorizationCode(
    const std::string& code_sha256) {
  MutexLock lock(mu_);
  auto it = codes_.find(code_sha256);
  if (it == codes_.end()) return NotFoundError("unknown authorization code");
  StoredCode& c = it->second;
  bool first = !c.code.used;
  if (!first) c.reused = true;
  c.code.used = true;
  return identity::CodeRedemption{c.code, first};
}

Result<bool> MemoryIdentityStore::NoteAuthorizationCodeIssued(const std::string& code_sha256,
                                                              const std::string& sid,
                                                              const std::string& family_id) {
  MutexLock lock(mu_);
  auto it = codes_.find(code_sha256);
  if (it == codes_.end()) return NotFoundError("unknown authorization code");
  it->second.code.sid = sid;
  it->second.code.family_id = family_id;
  return it->second.reused;
}

Status MemoryIdentityStore::PurgeAuthorizationCodes(int64_t now, int64_t used_grace_s) {
  MutexLock lock(mu_);
  std::erase_if(codes_, [&](const auto& kv) {
    return kv.second.code.expires_at + (kv.second.code.used ? used_grace_s : 0) <= now;
  });
  return OkStatus();
}

Status MemoryIdentityStore::PutBrowserState(const std::string& kind, const std::string& key_sha256,
                                            const std::string& body, int64_t expires_at) {
  MutexLock lock(mu_);
  if (!browser_states_.emplace(std::pair{kind, key_sha256}, BrowserState{body, expires_at})
           .second) {
    return AlreadyExistsError("browser state exists");
  }
  return OkStatus();
}

Result<std::string> MemoryIdentityStore::TakeBrowserState(const std::string& kind,
                                                          const std::string& key_sha256,
                                                          int64_t now) {
  MutexLock lock(mu_);
  auto it = browser_states_.find({kind, key_sha256});
  if (it == browser_states_.end()) return NotFoundError("unknown browser state");
  BrowserState taken = std::move(it->second);
  browser_states_.erase(it);
  if (taken.expires_at <= now) return NotFoundError("unknown browser state");
  return std::move(taken.body);
}

Result<std::string> MemoryIdentityStore::GetBrowserState(const std::string& kind,
                                                         const std::string& key_sha256,
                                                         int64_t now) {
  MutexLock lock(mu_);
  auto it = browser_states_.find({kind, key_sha256});
  if (it == browser_states_.end() || it->second.expires_at <= now) {
    return NotFoundError("unknown browser state");
  }
  return it->second.body;
}

Status MemoryIdentityStore::PurgeBrowserStates(int64_t now) {
  MutexLock lock(mu_);
  std::erase_if(browser_states_, [&](const auto& kv) { return kv.second.expires_at <= now; });
  return OkStatus();
}

Status MemoryIdentityStore::PutConsent(const identity::Consent& consent) {
  MutexLock lock(mu_);
  consents_[{consent.client_id, consent.initiator_issuer, consent.initiator}] = consent;
  return OkStatus();
}

Result<identity::Consent> MemoryIdentityStore::GetConsent(const std::string& initiator_issuer,
                                                          const std::string& initiator,
                                                          const std::string& client_id) {
  MutexLock lock(mu_);
  auto it = consents_.find({client_id, initiator_issuer, initiator});
  if (it == consents_.end()) return NotFoundError("no consent");
  return it->second;
}

Result<std::vector<identity::Consent>> MemoryIdentityStore::ListConsents() {
  MutexLock lock(mu_);
  std::vector<identity::Consent> out;
  for (const auto& [k, c] : consents_) out.push_back(c);
  return out;
}

Status MemoryIdentityStore::DeleteConsent(const std::string& initiator_issuer,
                                          const std::string& initiator,
                                          const std::string& client_id) {
  MutexLock lock(mu_);
  if (consents_.erase({client_id, initiator_issuer, initiator}) == 0) {
    return NotFoundError("no consent");
  }
  return OkStatus();
}

}  // namespace custody::store
