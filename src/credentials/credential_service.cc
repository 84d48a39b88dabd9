#include "credentials/credential_service.h"

#include <algorithm>
#include <boost/json.hpp>

#include "attribution/attribution_service.h"
#include "common/encoding.h"
#include "crypto/sha256.h"
#include "events/recorder.h"
#include "identity/token_service.h"

namespace custody::credentials {

namespace json = boost::json;
using store::LeaseRow;
using store::LeaseState;

namespace {

constexpr int64_t kSecondMs = 1000;

std::string Hex(const std::string& password) { return HexEncode(crypto::Sha256(password)); }

std::string Time(int64_t ms) {
  return FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(ms)));
}

}  // namespace

Result<std::unique_ptr<CredentialService>> CredentialService::Create(
    identity::TokenService& tokens, attribution::AttributionService& attribution,
    store::CredentialStore& store, events::Recorder& recorder, const Clock& clock, Random& random,
    ErrorReporter& errors, CredentialOptions options) {
  for (const Database& d : options.databases) {
    if (!d.roles)
      return InvalidArgumentError("credentials.postgres." + d.name + ": no role manager");
  }
  std::unique_ptr<CredentialService> s(new CredentialService(
      tokens, attribution, store, recorder, clock, random, errors, std::move(options)));
  // A listener must not block: it queues the sessions, the loop revokes their leases.
  s->listener_ = tokens.AddRevocationListener([p = s.get()](const std::vector<std::string>& sids) {
    {
      MutexLock lock(p->mu_);
      p->revoked_sids_.insert(p->revoked_sids_.end(), sids.begin(), sids.end());
    }
    p->cv_.NotifyAll();
  });
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

CredentialService::CredentialService(identity::TokenService& tokens,
                                     attribution::AttributionService& attribution,
                                     store::CredentialStore& store, events::Recorder& recorder,
                                     const Clock& clock, Random& random, ErrorReporter& errors,
                                     CredentialOptions options)
    : tokens_(tokens),
      attribution_(attribution),
      store_(store),
      recorder_(recorder),
      clock_(clock),
      random_(random),
      errors_(errors),
      options_(std::move(options)) {}

CredentialService::~CredentialService() {
  if (listener_ >= 0) tokens_.RemoveRevocationListener(listener_);
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

const Database* CredentialService::Find(const std::string& name) const {
  for (const Database& d : options_.databases) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

// custody_<the session id's 32 hex digits>_<8 random hex digits>: 49 bytes (PostgreSQL keeps 63),
// so pg_stat_activity and the server's log name the session, and each lease has a role of its own.
std::string CredentialService::NewRoleName(const std::string& sid) {
  std::string hex;
  for (char c : sid) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  uint8_t r[4];
  random_.Fill(r);
  return "custody_" + hex.substr(0, 32) + "_" + HexEncode(std::span<const uint8_t>(r, 4));
}

Status CredentialService::RecordEvent(const std::string& kind, const LeaseRow& l,
                                      const std::string& extra_key, const std::string& extra) {
  json::object e{{"kind", kind},
                 {"event_id", attribution_.NewEventId()},
                 {"time", FormatRfc3339Millis(clock_.Now())},
                 {"target",
                  {{"session", l.sid},
                   {"root_sid", l.root_sid},
                   {"agent", l.agent},
                   {"initiator", l.initiator}}},
                 {"credential",
                  {{"role", l.role},
                   {"database", l.database},
                   {"access", l.access},
                   {"expires_at", Time(l.expires_ms)},
                   {"password_sha256", l.password_sha256},
                   {"action_id", l.action_id},
                   {"decision_index", l.decision_index}}}};
  if (!l.revoke_reason.empty() && kind != "db_credential.issue") e["reason"] = l.revoke_reason;
  if (!extra_key.empty()) e[extra_key] = extra;
  return recorder_.Record(e).status();
}

Result<std::string> CredentialService::SessionOf(const std::string& token) {
  ASSIGN_OR_RETURN(identity::VerifiedAccess va,
                   tokens_.VerifyAccessToken(token, options_.audience));
  return va.session.sid;
}

Result<IssuedCredential> CredentialService::Issue(const IssueRequest& req, Refusal* refusal) {
  const Database* db = Find(req.database);
  if (db == nullptr) return NotFoundError("no database \"" + req.database + "\" is configured");
  auto level = db->access.find(req.access);
  if (level == db->access.end()) {
    return NotFoundError("database \"" + req.database + "\" has no access level \"" + req.access +
                         "\"");
  }
  if (req.ttl_s < 0) return InvalidArgumentError("ttl_s must not be negative");

  attribution::AuthorizeRequest a;
  a.token = req.token;
  a.action = "issue_credential";
  a.target.type = "Database";
  a.target.id = req.database;
  a.arguments_json = json::serialize(json::object{{"access", req.access}, {"ttl_s", req.ttl_s}});
  a.via = "credentials";
  ASSIGN_OR_RETURN(attribution::AuthorizeResult decision, attribution_.AuthorizeSync(std::move(a)));
  if (!decision.allowed) {
    if (refusal) *refusal = Refusal{decision.action_id, decision.ledger_index, decision.message};
    if (decision.session_revoked) return UnauthenticatedError("the session is revoked");
    return PermissionDeniedError("issue_credential on Database::\"" + req.database +
                                 "\" denied: " + decision.message);
  }
  ASSIGN_OR_RETURN(identity::Session session, tokens_.GetSession(decision.sid));

  const int64_t now = UnixMillis(clock_.Now());
  int64_t max_s = level->second.max_ttl_s > 0 ? level->second.max_ttl_s : db->max_ttl_s;
  max_s = std::min(max_s, db->max_ttl_s);
  int64_t ttl_s = req.ttl_s == 0 ? max_s : std::min(req.ttl_s, max_s);
  int64_t expires = std::min(now + ttl_s * kSecondMs, session.expires_at * kSecondMs);
  if (expires <= now) return FailedPreconditionError("the session expires now");

  uint8_t secret[24];
  random_.Fill(secret);
  IssuedCredential out;
  out.password = Base64UrlEncode(std::span<const uint8_t>(secret, sizeof secret));
  out.connect = db->connect;
  LeaseRow& l = out.lease;
  l.role = NewRoleName(session.sid);
  l.sid = session.sid;
  l.root_sid = session.root_sid;
  l.agent = session.agent;
  l.initiator = session.initiator;
  l.action_id = decision.action_id;
  l.decision_index = decision.ledger_index;
  l.database = db->name;
  l.access = req.access;
  l.password_sha256 = Hex(out.password);
  l.issued_ms = now;
  l.expires_ms = expires;

  // The lease first: a role the store does not know of would never be revoked.
  RETURN_IF_ERROR(store_.Insert(l));
  auto abandon = [&](const std::string& reason) {
    if (auto r = store_.BeginRevoke(l.role, reason); !r.ok()) {
      errors_.Report("credentials.abandon", r.status());
    }
    {
      MutexLock lock(mu_);
      ++pending_;
    }
    cv_.NotifyAll();
  };
  RoleSpec spec{l.role, out.password, expires, db->connection_limit, level->second.grant};
  if (Status st = db->roles->CreateRole(spec); !st.ok()) {
    abandon("creation failed");
    return st;
  }
  if (Status st = RecordEvent("db_credential.issue", l); !st.ok()) {
    // Not in the ledger: not handed out.
    abandon("issue not recorded");
    return st.WithContext("recording the credential");
  }
  // Revoked while the role was made (the listener's sessions may have been looked at before the
  // lease was stored): revoke it now rather than hand it out.
  auto now_session = tokens_.GetSession(session.sid);
  if (now_session.ok() && now_session->revoked) {
    BeginRevoke(l.role, "session revoked");
    return UnauthenticatedError("the session is revoked");
  }
  return out;
}

void CredentialService::BeginRevoke(const std::string& role, const std::string& reason) {
  auto begun = store_.BeginRevoke(role, reason);
  if (!begun.ok()) {
    errors_.Report("credentials.revoke", begun.status());
    return;
  }
  if (*begun) {
    MutexLock lock(mu_);
    ++pending_;
  }
  cv_.NotifyAll();
}

bool CredentialService::TryDrop(const LeaseRow& lease) {
  const Database* db = Find(lease.database);
  Status st =
      db == nullptr
          ? FailedPreconditionError("database \"" + lease.database + "\" is no longer configured")
          : db->roles->DropRole(lease.role);
  if (!st.ok()) {
    bool first = false;
    {
      MutexLock lock(mu_);
      Retry& r = retries_[lease.role];
      r.backoff = r.backoff.count() == 0 ? options_.retry_first
                                         : std::min(options_.retry_max, r.backoff * 2);
      r.next_ms = UnixMillis(clock_.Now()) + r.backoff.count();
      first = !r.failure_recorded;
      r.failure_recorded = true;
    }
    errors_.log().Log(LogLevel::kWarn, "credential revocation failed; retrying",
                      {{"role", lease.role}, {"error", st.message()}});
    errors_.Report("credentials.revoke", st);
    if (first) {
      if (Status rec = RecordEvent("db_credential.revoke_failed", lease, "error", st.message());
          !rec.ok()) {
        errors_.Report("credentials.record", rec);
      }
    }
    return false;
  }
  auto finished = store_.FinishRevoke(lease.role, UnixMillis(clock_.Now()));
  if (!finished.ok()) {
    errors_.Report("credentials.revoke", finished.status());
    return false;  // dropped; the next pass records it (the drop is idempotent)
  }
  {
    MutexLock lock(mu_);
    retries_.erase(lease.role);
  }
  if (*finished) {
    LeaseRow done = lease;
    done.state = LeaseState::kRevoked;
    if (Status rec = RecordEvent("db_credential.revoke", done); !rec.ok()) {
      errors_.Report("credentials.record", rec);
    }
  }
  return true;
}

Result<LeaseRow> CredentialService::Revoke(const std::string& role, const std::string& reason,
                                           const std::string& by) {
  ASSIGN_OR_RETURN(std::optional<LeaseRow> lease, store_.Get(role));
  if (!lease) return NotFoundError("no credential lease for role " + role);
  if (lease->state == LeaseState::kActive) {
    BeginRevoke(role, reason.empty() ? "revoked by " + by : reason + " (" + by + ")");
  }
  {
    MutexLock lock(pass_mu_);
    ASSIGN_OR_RETURN(lease, store_.Get(role));
    if (lease && lease->state == LeaseState::kRevoking) TryDrop(*lease);
  }
  ASSIGN_OR_RETURN(lease, store_.Get(role));
  if (!lease) return NotFoundError("no credential lease for role " + role);
  return *lease;
}

Result<LeaseRow> CredentialService::Renew(const std::string& role, int64_t ttl_s,
                                          const std::string& by) {
  ASSIGN_OR_RETURN(std::optional<LeaseRow> lease, store_.Get(role));
  if (!lease) return NotFoundError("no credential lease for role " + role);
  if (lease->state != LeaseState::kActive) {
    return FailedPreconditionError("the lease of role " + role + " is " +
                                   std::string(store::LeaseStateName(lease->state)));
  }
  const Database* db = Find(lease->database);
  if (db == nullptr) return FailedPreconditionError("its database is no longer configured");
  auto level = db->access.find(lease->access);
  if (level == db->access.end()) return FailedPreconditionError("its access level is gone");
  ASSIGN_OR_RETURN(identity::Session session, tokens_.GetSession(lease->sid));
  if (session.revoked) return FailedPreconditionError("the session is revoked");
  const int64_t now = UnixMillis(clock_.Now());
  int64_t max_s = level->second.max_ttl_s > 0 ? level->second.max_ttl_s : db->max_ttl_s;
  max_s = std::min(max_s, db->max_ttl_s);
  int64_t want = ttl_s <= 0 ? max_s : std::min(ttl_s, max_s);
  int64_t expires = std::min(now + want * kSecondMs, session.expires_at * kSecondMs);
  if (expires <= lease->expires_ms) expires = lease->expires_ms;  // never shortened by a renewal
  RETURN_IF_ERROR(db->roles->SetValidUntil(role, expires));
  ASSIGN_OR_RETURN(bool renewed, store_.Renew(role, expires));
  if (!renewed) return FailedPreconditionError("the lease of role " + role + " is being revoked");
  lease->expires_ms = expires;
  RETURN_IF_ERROR(RecordEvent("db_credential.renew", *lease, "by", by));
  return *lease;
}

int64_t CredentialService::PendingRevocations() const {
  MutexLock lock(mu_);
  return pending_;
}

void CredentialService::RunOnce() { Pass(); }

void CredentialService::Pass() {
  MutexLock pass(pass_mu_);
  std::vector<std::string> sids;
  {
    MutexLock lock(mu_);
    sids.swap(revoked_sids_);
  }
  for (const std::string& sid : sids) {
    auto leases = store_.ListBySession(sid);
    if (!leases.ok()) {
      errors_.Report("credentials.contain", leases.status());
      MutexLock lock(mu_);
      revoked_sids_.push_back(sid);  // looked at again next pass
      continue;
    }
    for (const LeaseRow& l : *leases) {
      if (l.state == LeaseState::kActive) BeginRevoke(l.role, "session contained");
    }
  }
  const int64_t now = UnixMillis(clock_.Now());
  if (auto active = store_.ListByState(LeaseState::kActive); active.ok()) {
    for (const LeaseRow& l : *active) {
      if (l.expires_ms <= now) BeginRevoke(l.role, "expired");
    }
  } else {
    errors_.Report("credentials.expire", active.status());
  }
  auto revoking = store_.ListByState(LeaseState::kRevoking);
  if (!revoking.ok()) {
    errors_.Report("credentials.revoke", revoking.status());
    return;
  }
  int64_t left = 0;
  for (const LeaseRow& l : *revoking) {
    bool due = true;
    {
      MutexLock lock(mu_);
      auto it = retries_.find(l.role);
      due = it == retries_.end() || it->second.next_ms <= UnixMillis(clock_.Now());
    }
    if (!due || !TryDrop(l)) ++left;
  }
  MutexLock lock(mu_);
  pending_ = left;
}

void CredentialService::Loop() {
  for (;;) {
    Pass();
    MutexLock lock(mu_);
    if (stop_) return;
    // Sooner when a retry falls due before the next expiry check.
    std::chrono::milliseconds wait = options_.expiry_interval;
    const int64_t now = UnixMillis(clock_.Now());
    for (const auto& [role, r] : retries_) {
      wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(0, r.next_ms - now)));
    }
    if (revoked_sids_.empty()) {
      cv_.WaitFor(mu_, wait, [this]() REQUIRES(mu_) { return stop_ || !revoked_sids_.empty(); });
    }
    if (stop_) return;
  }
}

}  // namespace custody::credentials
