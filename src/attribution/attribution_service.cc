#include "attribution/attribution_service.h"

#include <boost/json.hpp>
#include <future>

#include "attribution/reindex.h"
#include "attribution/trace_context.h"
#include "common/encoding.h"
#include "common/jcs_value.h"
#include "common/json_array.h"
#include "common/json_parse.h"
#include "common/words.h"
#include "crypto/sha256.h"
#include "events/action_events.h"
#include "events/recorder.h"
#include "identity/scopes.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/parser.h"
#include "store/session_read_and_count.h"

namespace custody::attribution {

namespace json = boost::json;
using policy::EntityUid;
using policy::Value;

struct PolicyBundle {
  policy::PolicySet set;
  policy::Entities entities;
  std::string hash;
  std::map<std::string, std::string> contain;  // policy id -> "session" | "agent"
  std::string entities_text;                   // as published (ReloadPolicies compares it)
  // policy id -> its approver group (an entity uid, Type::"id"), for each `@approval` forbid
  std::map<std::string, std::string> approval;
  // The set without the `@approval` forbids: would anything else hold the action? (Only
  // evaluated when every determining forbid is an `@approval` one.)
  std::optional<policy::PolicySet> without_approval;
};

struct AttributionService::SessionState {
  Mutex mu;
  // Immutable facts, set once by StateOf().
  std::vector<std::string> chain_agents;  // root first, this session's agent last
  std::vector<std::string> chain_sids;
  // Live counters.
  int64_t calls GUARDED_BY(mu) = 0;
  int64_t denials GUARDED_BY(mu) = 0;
  std::set<std::string> targets GUARDED_BY(mu);
  std::deque<int64_t> recent_ms GUARDED_BY(mu);  // times of calls in the last minute
};

namespace {

constexpr int64_t kMinuteMs = 60'000;

bool IsIdent(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A Cedar entity type name: identifiers joined by "::".
bool IsTypeName(std::string_view s) {
  size_t pos = 0;
  while (true) {
    size_t next = s.find("::", pos);
    if (!IsIdent(s.substr(pos, next == std::string_view::npos ? s.npos : next - pos))) return false;
    if (next == std::string_view::npos) return true;
    pos = next + 2;
  }
}

bool Printable(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
}

// JSON -> Cedar: strings, booleans, integers, arrays (sets) and objects (records). Cedar has
// no null and no floating point: nulls are left out, other numbers become their JSON text.
Value ToCedar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return Value::String(std::string(v.get_string()));
    case json::kind::bool_:
      return Value::Bool(v.get_bool());
    case json::kind::int64:
      return Value::Long(v.get_int64());
    case json::kind::uint64:
      if (v.get_uint64() <= static_cast<uint64_t>(INT64_MAX))
        return Value::Long(static_cast<int64_t>(v.get_uint64()));
      return Value::String(json::serialize(v));
    case json::kind::double_:
      return Value::String(json::serialize(v));
    case json::kind::array: {
      std::vector<Value> elems;
      for (const auto& e : v.get_array())
        if (!e.is_null()) elems.push_back(ToCedar(e));
      return Value::Set(std::move(elems));
    }
    case json::kind::object: {
      policy::Record rec;
      for (const auto& [k, e] : v.get_object())
        if (!e.is_null()) rec.emplace(std::string(k), ToCedar(e));
      return Value::MakeRecord(std::move(rec));
    }
    case json::kind::null:
      break;
  }
  return Value::MakeRecord({});
}

void Redact(json::value& v, const std::vector<std::string>& fields) {
  if (v.is_object()) {
    for (auto& [k, e] : v.get_object()) {
      if (std::find(fields.begin(), fields.end(), std::string_view(k)) != fields.end()) {
        e = "[redacted]";
      } else {
        Redact(e, fields);
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v.get_array()) Redact(e, fields);
  }
}

Result<json::value> ParseObject(const std::string& text, const char* what, size_t max) {
  if (text.empty()) return json::value(json::object());
  if (text.size() > max) {
    return InvalidArgumentError(std::string(what) + " is larger than " + std::to_string(max) +
                                " bytes");
  }
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  if (ec || !v.is_object())
    return InvalidArgumentError(std::string(what) + " must be a JSON object");
  return v;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(crypto::Sha256(data)); }

events::Actor ActorOf(const identity::Session& s, const std::string& jti) {
  return events::Actor{s.agent, s.instance, s.sid, jti};
}

// A JSON value as the ledger records arguments: {"digest"} and, with kRedacted, "value".
json::object Recorded(const json::value& v, const AttributionOptions& options) {
  auto c = CanonicalizeJsonValue(v);
  json::object out{{"digest", "sha256:" + Sha256Hex(c.ok() ? *c : json::serialize(v))}};
  if (options.arguments == ArgumentRecording::kRedacted) {
    json::value copy = v;
    Redact(copy, options.redact_fields);
    out["value"] = std::move(copy);
  }
  return out;
}

// outcome.exchanges: what the server asked the client during the action, recorded as
// arguments are, and the digest of each answer.
json::array ExchangesJson(const std::vector<RelayedExchange>& exchanges,
                          const AttributionOptions& options) {
  json::array out;
  for (const RelayedExchange& x : exchanges) {
    boost::system::error_code ec;
    json::value params = x.params_json.empty() ? json::value() : ParseJson(x.params_json, ec);
    if (ec) params = x.params_json;  // recorded as the text it was
    json::object e{{"method", x.method},
                   {"client", x.client},
                   {"asked", Recorded(params, options)},
                   {"status", x.status}};
    if (!x.answer_digest.empty()) e["answer_digest"] = x.answer_digest;
    if (!x.note.empty()) e["note"] = x.note;
    out.push_back(std::move(e));
  }
  return out;
}

// The outcome event of `req` for the action `row`, reported by the session of `va`.
events::ActionOutcome OutcomeEvent(const CompleteRequest& req, const ActionRow& row,
                                   const identity::VerifiedAccess& va, std::string event_id,
                                   std::string time, const AttributionOptions& options) {
  events::ActionOutcome o;
  o.event_id = std::move(event_id);
  o.time = std::move(time);
  o.action_id = req.action_id;
  o.decision_index = row.decision_index;
  o.actor = ActorOf(va.session, va.jti);
  o.sid = va.session.sid;
  o.root_sid = va.session.root_sid;
  o.trace_id = row.trace_id;
  o.span_id = row.span_id;
  o.txn = row.txn;
  o.status = req.status;
  o.error = req.error;
  o.output_digest = req.output_digest;
  o.latency_ms = req.latency_ms;
  o.exchanges = ExchangesJson(req.exchanges, options);
  o.txn_token_jti = req.txn_token_jti;
  o.txn_token_aud = req.txn_token_aud;
  return o;
}

events::Initiator InitiatorOf(const identity::Session& s) {
  return events::Initiator{s.initiator, s.initiator_issuer,
                           s.verification == identity::InitiatorVerification::kVerified,
                           s.asserted_by};
}

events::TargetRef TargetOf(const Target& t) {
  return events::TargetRef{t.Key(), t.server, t.tool, t.type, t.id};
}

// The key of pending_spans_.
std::string SpanKey(const std::string& trace_id, const std::string& span_id) {
  return trace_id + "/" + span_id;
}

// Adds (or overlays) `uid` in `out`: attributes from `base` first, then `attrs`; parents from
// `base` plus `parents`.
Status Overlay(policy::Entities& out, const policy::Entities& base, EntityUid uid,
               policy::Record attrs, std::vector<EntityUid> parents) {
  policy::Entity e;
  e.uid = std::move(uid);
  if (const policy::Entity* b = base.Find(e.uid)) {
    e.attrs = b->attrs;
    e.tags = b->tags;
    e.parents = b->parents;
  }
  for (auto& [k, v] : attrs) e.attrs.insert_or_assign(k, std::move(v));
  for (auto& p : parents)
    if (std::find(e.parents.begin(), e.parents.end(), p) == e.parents.end())
      e.parents.push_back(std::move(p));
  return out.Add(std::move(e));
}

json::object CountersJson(const SessionCounts& c, bool first_use) {
  return json::object{{"calls", c.calls},
                      {"denials", c.denials},
                      {"distinct_tools", c.distinct_targets},
                      {"calls_last_minute", c.calls_since},
                      {"first_use", first_use}};
}

// The verified session facts under context.session.
json::object SessionContext(const identity::Session& session,
                            const std::vector<std::string>& chain_agents,
                            const identity::Agent& agent) {
  return json::object{
      {"id", session.sid},
      {"root", session.root_sid},
      {"parent", session.parent_sid},
      {"depth", session.depth},
      {"chain", StringArray(chain_agents)},
      {"agent", session.agent},
      {"instance", session.instance},
      {"initiator",
       {{"id", session.initiator},
        {"issuer", session.initiator_issuer},
        {"verified", session.verification == identity::InitiatorVerification::kVerified},
        {"asserted_by", session.asserted_by}}},
      {"scopes", StringArray(session.scopes)},
      {"txn", session.txn},
      {"objective_digest", session.objective_digest},
      {"environment", std::string(identity::EnvironmentName(agent.environment))}};
}

// Evaluates the active set for `agent` doing `action` on `target` with `context`. Entities: the
// published store, overlaid with the agent and the target as the registry and the request
// describe them.
policy::Response Evaluate(const PolicyBundle& bundle, const identity::Agent& agent,
                          const std::string& action, const Target& target,
                          const std::map<std::string, std::string>& resource_attrs,
                          const json::object& context, bool without_approval = false) {
  policy::Entities overlay(&bundle.entities);
  {
    policy::Record a;
    a.emplace("name", Value::String(agent.name));
    a.emplace("environment",
              Value::String(std::string(identity::EnvironmentName(agent.environment))));
    a.emplace("business_owner", Value::String(agent.business_owner));
    a.emplace("technical_owner", Value::String(agent.technical_owner));
    a.emplace("sponsor", Value::String(agent.sponsor));
    std::vector<Value> grants;
    for (const auto& g : agent.grants) grants.push_back(Value::String(g));
    a.emplace("grants", Value::Set(std::move(grants)));
    // Overlay fails only for a uid added twice; each is added once below, except a typed
    // resource that names the agent itself, which then keeps the agent's own attributes.
    (void)Overlay(overlay, bundle.entities, EntityUid{"Agent", agent.name}, std::move(a), {});
  }
  EntityUid resource;
  if (target.on_server()) {
    // Tool::"<server>/<tool>", Resource::"<server>/<uri>" or Prompt::"<server>/<name>", each in
    // Server::"<server>".
    policy::Record t;
    if (target.is_tool()) {
      resource = EntityUid{"Tool", target.server + "/" + target.tool};
      t.emplace("name", Value::String(target.tool));
    } else {
      resource = EntityUid{target.type, target.server + "/" + target.id};
      t.emplace(target.type == "Resource" ? "uri" : "name", Value::String(target.id));
    }
    t.emplace("server", Value::String(target.server));
    for (const auto& [k, v] : resource_attrs) t.insert_or_assign(k, Value::String(v));
    EntityUid server{"Server", target.server};
    (void)Overlay(overlay, bundle.entities, resource, std::move(t), {server});
    if (!bundle.entities.Find(server)) {
      policy::Record sr;
      sr.emplace("name", Value::String(target.server));
      (void)Overlay(overlay, bundle.entities, server, std::move(sr), {});
    }
  } else {
    resource = EntityUid{target.type, target.id};
    if (!resource_attrs.empty()) {
      policy::Record t;
      for (const auto& [k, v] : resource_attrs) t.emplace(k, Value::String(v));
      (void)Overlay(overlay, bundle.entities, resource, std::move(t), {});
    }
  }
  overlay.Finish();

  policy::Request creq;
  creq.principal = EntityUid{"Agent", agent.name};
  creq.action = EntityUid{"Action", action};
  creq.resource = resource;
  creq.context = ToCedar(json::value(context));
  const policy::PolicySet& set =
      without_approval && bundle.without_approval ? *bundle.without_approval : bundle.set;
  return set.IsAuthorized(creq, overlay);
}

}  // namespace

std::string Target::Key() const {
  if (is_tool()) return server + "/" + tool;
  if (on_server()) return server + "/" + (type == "Resource" ? "resource:" : "prompt:") + id;
  return type + ":" + id;
}

Status Target::Validate() const {
  if (is_tool()) {
    if (!Printable(server, 128) || server.find('/') != std::string::npos)
      return InvalidArgumentError("target.server must be 1-128 printable characters without '/'");
    if (!Printable(tool, 256))
      return InvalidArgumentError("target.tool must be 1-256 printable characters");
    if (!type.empty() || !id.empty())
      return InvalidArgumentError(
          "a target is either a tool (server, tool) or a resource (type, id)");
    return OkStatus();
  }
  if (on_server()) {
    if (!Printable(server, 128) || server.find('/') != std::string::npos)
      return InvalidArgumentError("target.server must be 1-128 printable characters without '/'");
    if (type != "Resource" && type != "Prompt")
      return InvalidArgumentError(
          "a target with a server is a tool (tool), a Resource or a Prompt (type, id)");
    if (!Printable(id, 2048))
      return InvalidArgumentError("target.id must be 1-2048 printable characters");
    return OkStatus();
  }
  if (!IsTypeName(type))
    return InvalidArgumentError("target.type must be a Cedar entity type name (e.g. Database)");
  if (!Printable(id, 512))
    return InvalidArgumentError("target.id must be 1-512 printable characters");
  return OkStatus();
}

AttributionService::AttributionService(identity::TokenService& tokens, ledger::Ledger& ledger,
                                       AttributionStore& store, const Clock& clock, Random& random,
                                       ErrorReporter& errors, AttributionOptions options)
    : tokens_(tokens),
      ledger_(ledger),
      store_(store),
      clock_(clock),
      random_(random),
      errors_(errors),
      recorder_(ledger),
      options_(std::move(options)),
      ids_(clock, random),
      containment_(tokens, recorder_, store, errors, clock, random),
      shared_counters_(store.SharedAcrossNodes()),
      session_reads_(shared_counters_ ? store::SessionReadAndCountOf(tokens.store(), store)
                                      : nullptr) {}

namespace {

// An `@approval` annotation's group: an entity uid `Type::"id"`, or a bare id, which names a
// `Group::"<id>"`. Returns the uid's text, `Type::"id"`.
Result<std::string> ApproverGroup(const std::string& v) {
  std::string type = "Group", id = v;
  if (size_t q = v.find("::\""); q != std::string::npos) {
    type = v.substr(0, q);
    if (v.size() < q + 4 || v.back() != '"')
      return InvalidArgumentError("\"" + v + "\" is not Type::\"id\"");
    id = v.substr(q + 3, v.size() - q - 4);
    if (!IsTypeName(type)) return InvalidArgumentError("\"" + type + "\" is not an entity type");
  }
  if (!Printable(id, 256) || id.find('"') != std::string::npos ||
      id.find('\\') != std::string::npos)
    return InvalidArgumentError(
        "the group must be 1-256 printable characters without quotes or "
        "backslashes, or Type::\"id\"");
  return type + "::\"" + id + "\"";
}

// The uid of an approver group's text (ApproverGroup's form, `Type::"id"`; a bare id names a
// Group).
EntityUid ApproverGroupUid(const std::string& group) {
  const size_t q = group.find("::\"");
  return q == std::string::npos || group.size() < q + 4
             ? EntityUid{"Group", group}
             : EntityUid{group.substr(0, q), group.substr(q + 3, group.size() - q - 4)};
}

Result<std::shared_ptr<const PolicyBundle>> MakeBundle(const std::string& policies,
                                                       const std::string& entities) {
  ASSIGN_OR_RETURN(auto set, policy::PolicySet::FromText(policies));
  auto b =
      std::make_shared<PolicyBundle>(PolicyBundle{std::move(set), {}, "", {}, entities, {}, {}});
  if (!entities.empty()) {
    ASSIGN_OR_RETURN(b->entities, policy::ParseEntitiesJson(entities, nullptr));
  }
  b->hash = b->set.hash_hex();
  for (const policy::Policy& p : b->set.policies()) {
    for (const auto& [k, v] : p.annotations) {
      if (k != "contain") continue;
      if (p.effect != policy::Effect::kForbid)
        return InvalidArgumentError("policy " + p.id + ": @contain is only allowed on forbid");
      if (v != "session" && v != "agent")
        return InvalidArgumentError(
            "policy " + p.id + ": @contain must be \"session\" or \"agent\", not \"" + v + "\"");
      b->contain[p.id] = v;
    }
    for (const auto& [k, v] : p.annotations) {
      if (k != "approval") continue;
      if (p.effect != policy::Effect::kForbid)
        return InvalidArgumentError("policy " + p.id + ": @approval is only allowed on forbid");
      if (b->contain.count(p.id))
        return InvalidArgumentError("policy " + p.id +
                                    ": a tripwire (@contain) cannot be approved (@approval)");
      auto group = ApproverGroup(v);
      if (!group.ok()) return group.status().WithContext("policy " + p.id + ": @approval");
      b->approval[p.id] = *group;
    }
  }
  if (!b->approval.empty()) {
    // Policies do not copy: parse the text again and keep all but the `@approval` forbids.
    ASSIGN_OR_RETURN(std::vector<policy::Policy> all, policy::ParsePolicySetText(policies));
    std::vector<policy::Policy> rest;
    for (policy::Policy& p : all)
      if (!b->approval.count(p.id)) rest.push_back(std::move(p));
    ASSIGN_OR_RETURN(auto set, policy::PolicySet::Create(std::move(rest)));
    b->without_approval.emplace(std::move(set));
  }
  return std::shared_ptr<const PolicyBundle>(std::move(b));
}

}  // namespace

Result<std::unique_ptr<AttributionService>> AttributionService::Create(
    identity::TokenService& tokens, ledger::Ledger& ledger, AttributionStore& store,
    const Clock& clock, Random& random, ErrorReporter& errors, AttributionOptions options) {
  std::unique_ptr<AttributionService> s(
      new AttributionService(tokens, ledger, store, clock, random, errors, std::move(options)));
  ASSIGN_OR_RETURN(auto active, store.ActivePolicySet());
  std::shared_ptr<const PolicyBundle> bundle;
  if (active) {
    auto b = MakeBundle(active->policies, active->entities);
    if (!b.ok()) return b.status().WithContext("the stored active policy set");
    bundle = *b;
  } else {
    ASSIGN_OR_RETURN(bundle, MakeBundle("", ""));  // nothing published: everything denied
  }
  {
    MutexLock lock(s->bundle_mu_);
    s->bundle_ = std::move(bundle);
  }
  // Whatever the index lost (rows still queued at a crash, or never written) is in the ledger
  // after the index's mark: index it before the first request, so no acknowledged action is
  // missing from Complete or an investigation.
  ASSIGN_OR_RETURN(uint64_t mark, store.IndexedSize());
  auto reindexed = Reindex(ledger.store(), store, mark);
  if (!reindexed.ok()) return reindexed.status().WithContext("the action index at start-up");
  if (reindexed->decisions + reindexed->outcomes + reindexed->containments > 0) {
    errors.log().Log(LogLevel::kInfo, "action index caught up with the ledger",
                     {{"from", static_cast<int64_t>(reindexed->from)},
                      {"to", static_cast<int64_t>(reindexed->to)},
                      {"decisions", static_cast<int64_t>(reindexed->decisions)},
                      {"outcomes", static_cast<int64_t>(reindexed->outcomes)},
                      {"containments", static_cast<int64_t>(reindexed->containments)}});
  }
  s->indexer_ = std::thread([p = s.get()] { p->IndexLoop(); });
  // Revoked sessions' approvals are cancelled on the approvals thread: a listener must not block.
  s->revocation_listener_ =
      tokens.AddRevocationListener([p = s.get()](const std::vector<std::string>& sids) {
        {
          MutexLock lock(p->approvals_mu_);
          p->revoked_queue_.insert(p->revoked_queue_.end(), sids.begin(), sids.end());
        }
        p->approvals_cv_.NotifyOne();
      });
  s->approvals_thread_ = std::thread([p = s.get()] { p->ApprovalLoop(); });
  return s;
}

AttributionService::~AttributionService() {
  if (revocation_listener_ >= 0) tokens_.RemoveRevocationListener(revocation_listener_);
  {
    MutexLock lock(approvals_mu_);
    approvals_stop_ = true;
  }
  approvals_cv_.NotifyAll();
  if (approvals_thread_.joinable()) approvals_thread_.join();
  {
    MutexLock lock(index_mu_);
    index_stop_ = true;
  }
  index_cv_.NotifyAll();
  if (indexer_.joinable()) indexer_.join();
}

std::shared_ptr<const PolicyBundle> AttributionService::Bundle() const {
  MutexLock lock(bundle_mu_);
  return bundle_;
}

// --- Indexer -------------------------------------------------------------------------------

void AttributionService::Index(ActionRow row, bool outcome_only) {
  bool wake;
  {
    MutexLock lock(index_mu_);
    wake = IndexLocked(std::move(row), outcome_only);
  }
  if (wake) index_cv_.NotifyOne();
}

bool AttributionService::IndexLocked(ActionRow row, bool outcome_only) {
  // The pending entry is the newest state of the row until every op queued for it is written.
  // Outcome ops carry the whole row, so they can recreate an entry already written.
  PendingRow& p = pending_rows_[row.action_id];
  if (outcome_only && p.queued > 0) {
    p.row.outcome_index = row.outcome_index;
    p.row.status = row.status;
  } else {
    p.row = row;
  }
  if (!outcome_only && !row.trace_id.empty()) {
    pending_spans_[SpanKey(row.trace_id, row.span_id)] = row.action_id;
  }
  ++p.queued;
  index_queue_.push_back(IndexOp{std::move(row), outcome_only});
  ++index_queued_;
  // The indexer is woken for the first row of a batch and for a full one; in between it
  // sleeps out kIndexDelay.
  return index_queue_.size() == 1 || index_queue_.size() == kIndexBatch;
}

void AttributionService::IndexLoop() {
  MutexLock lock(index_mu_);
  std::chrono::milliseconds backoff = kIndexRetryFirst;
  for (;;) {
    index_cv_.Wait(index_mu_,
                   [&]() REQUIRES(index_mu_) { return index_stop_ || !index_queue_.empty(); });
    if (index_queue_.empty()) {
      if (index_stop_) return;
      continue;
    }
    if (index_failures_ == 0) {
      index_cv_.WaitFor(index_mu_, kIndexDelay, [&]() REQUIRES(index_mu_) {
        return index_stop_ || flush_waiters_ > 0 || index_queue_.size() >= kIndexBatch;
      });
    }
    std::deque<IndexOp> ops;
    ops.swap(index_queue_);
    const uint64_t upto = index_queued_;
    const uint64_t attempt = ++index_attempts_;
    lock.Unlock();
    Status written = WriteIndexBatch(ops);
    lock.Lock();
    if (!written.ok()) {
      // Keep the ops, ahead of any queued since, and try again after a backoff: the rows stay
      // in pending_rows_, so Complete and the investigations still see them meanwhile.
      if (index_failures_++ == 0) index_failing_since_ms_ = UnixMillis(clock_.Now());
      index_last_error_ = written;
      const size_t kept = ops.size();
      for (auto it = ops.rbegin(); it != ops.rend(); ++it) index_queue_.push_front(std::move(*it));
      lock.Unlock();
      errors_.Report("attribution.index_write",
                     written.WithContext("writing " + std::to_string(kept) +
                                         " action index rows (kept; retrying)"));
      lock.Lock();
      // Only now, once the failure is reported: a FlushIndex() caller that returns on it must
      // find it in the error counts too.
      index_last_failed_attempt_ = attempt;
      index_idle_cv_.NotifyAll();  // FlushIndex() stops waiting for what cannot be written yet
      if (index_stop_) {
        // One last try was this one; the ledger still holds every event (docs/ARCHITECTURE.md).
        const size_t dropped = index_queue_.size();
        lock.Unlock();
        errors_.Report("attribution.index_dropped_at_shutdown",
                       UnavailableError(std::to_string(dropped) +
                                        " action index rows not written at shutdown"));
        return;
      }
      // A FlushIndex() caller cuts the wait short: it gets one more attempt, not a backoff.
      index_cv_.WaitFor(index_mu_, backoff,
                        [&]() REQUIRES(index_mu_) { return index_stop_ || flush_waiters_ > 0; });
      backoff = std::min(backoff * 2, kIndexRetryMax);
      continue;
    }
    if (index_failures_ > 0) {
      errors_.log().Log(LogLevel::kInfo, "action index writes recovered",
                        {{"failed_attempts", static_cast<int64_t>(index_failures_)}});
    }
    index_failures_ = 0;
    backoff = kIndexRetryFirst;
    for (const IndexOp& op : ops) {
      auto it = pending_rows_.find(op.row.action_id);
      if (it == pending_rows_.end() || --it->second.queued > 0) continue;
      const ActionRow& r = it->second.row;
      if (!r.trace_id.empty()) pending_spans_.erase(SpanKey(r.trace_id, r.span_id));
      pending_rows_.erase(it);
    }
    index_written_ = upto;
    index_idle_cv_.NotifyAll();
  }
}

Status AttributionService::WriteIndexBatch(std::deque<IndexOp>& ops) {
  // The whole batch is one transaction. An outcome whose decision is in the same batch is
  // folded into that row, so the row and its eight indexes are written once: one
  // transaction per op wrote ~20 WAL pages per call.
  std::vector<ActionRow> rows;
  std::vector<ActionRow> outcomes;
  std::unordered_map<std::string, size_t> row_at;  // action id -> index in rows
  for (const IndexOp& op : ops) {
    auto it = row_at.find(op.row.action_id);
    if (!op.outcome_only) {
      if (it != row_at.end()) {
        rows[it->second] = op.row;
      } else {
        row_at.emplace(op.row.action_id, rows.size());
        rows.push_back(op.row);
      }
    } else if (it != row_at.end()) {
      rows[it->second].outcome_index = op.row.outcome_index;
      rows[it->second].status = op.row.status;
    } else {
      outcomes.push_back(op.row);
    }
  }
  RETURN_IF_ERROR(store_.WriteActions(rows, outcomes));
  // The mark: ops are queued from the ledger's callbacks, which run in ledger order, and a failed
  // batch is retried ahead of later ones; so once this batch is written, every row of an event
  // up to its newest is. (A claim, queued by Complete before its outcome is durable, has no
  // ledger index.) A mark not raised only makes the next start-up read further back.
  int64_t newest = -1;
  for (const IndexOp& op : ops)
    newest = std::max(newest, op.outcome_only ? op.row.outcome_index : op.row.decision_index);
  if (newest >= 0) {
    if (Status st = store_.RaiseIndexedSize(static_cast<uint64_t>(newest) + 1); !st.ok())
      errors_.Report("attribution.index_mark", st);
  }
  return OkStatus();
}

void AttributionService::FlushIndex() {
  // Waits for what was queued before the call only, so a steady stream of new decisions cannot
  // keep an investigation waiting; and not past the failure of an attempt that began after the
  // call (an attempt already under way when the call came may have read an older state).
  MutexLock lock(index_mu_);
  const uint64_t target = index_queued_;
  if (index_written_ >= target) return;
  const uint64_t began = index_attempts_;
  ++flush_waiters_;
  index_cv_.NotifyOne();  // no waiting out kIndexDelay while somebody waits
  index_idle_cv_.Wait(index_mu_, [&]() REQUIRES(index_mu_) {
    return index_written_ >= target || index_last_failed_attempt_ > began;
  });
  --flush_waiters_;
}

Result<std::optional<ActionRow>> AttributionService::FindAction(const std::string& action_id) {
  {
    MutexLock lock(index_mu_);
    if (auto it = pending_rows_.find(action_id); it != pending_rows_.end())
      return std::optional<ActionRow>(it->second.row);
  }
  ASSIGN_OR_RETURN(auto row, store_.GetAction(action_id));
  if (row) return row;
  // Not indexed (yet): the ledger is the record of truth.
  return ActionFromLedger(ledger_.store(), action_id);
}

Status AttributionService::IndexHealth() const {
  MutexLock lock(index_mu_);
  if (index_failures_ == 0) return OkStatus();
  const int64_t secs = (UnixMillis(clock_.Now()) - index_failing_since_ms_) / 1000;
  return UnavailableError("action index: " + std::to_string(index_failures_) +
                          " writes failed in a row over " + std::to_string(secs) + " s (" +
                          std::to_string(index_queue_.size()) +
                          " rows kept for retry): " + index_last_error_.message());
}

// --- Sessions --------------------------------------------------------------------------------

std::shared_ptr<AttributionService::SessionState> AttributionService::StateOf(
    const std::string& sid, int64_t now_ms) {
  {
    MutexLock lock(sessions_mu_);
    auto it = sessions_.find(sid);
    if (it != sessions_.end()) return it->second;
  }
  auto st = std::make_shared<SessionState>();
  // The chain, root first.
  std::string cur = sid;
  for (int guard = 0; !cur.empty() && guard < 64; ++guard) {
    auto s = tokens_.GetSession(cur);
    if (!s.ok()) break;
    st->chain_sids.insert(st->chain_sids.begin(), s->sid);
    st->chain_agents.insert(st->chain_agents.begin(), s->agent);
    cur = s->parent_sid;
  }
  // The store counts for every node (CountCall): nothing to rebuild, nothing kept here.
  if (shared_counters_) {
    MutexLock lock(sessions_mu_);
    return sessions_.emplace(sid, st).first->second;
  }
  // Counters survive a restart: rebuild them from the index.
  FlushIndex();
  if (auto rows = store_.ActionsOfSessions({sid}); rows.ok()) {
    MutexLock counters(st->mu);  // not shared yet; the lock keeps the rule simple
    for (const ActionRow& r : *rows) {
      st->calls++;
      if (r.decision == "deny") st->denials++;
      st->targets.insert(r.target);
      if (r.time_ms >= now_ms - kMinuteMs) st->recent_ms.push_back(r.time_ms);
    }
  }
  MutexLock lock(sessions_mu_);
  auto [it, inserted] = sessions_.emplace(sid, st);
  return it->second;
}

SessionCounts AttributionService::LiveCounts(SessionState& state, int64_t now_ms) {
  MutexLock lock(state.mu);
  while (!state.recent_ms.empty() && state.recent_ms.front() < now_ms - kMinuteMs)
    state.recent_ms.pop_front();
  SessionCounts c;
  c.calls = state.calls;
  c.denials = state.denials;
  c.distinct_targets = static_cast<int64_t>(state.targets.size());
  c.calls_since = static_cast<int64_t>(state.recent_ms.size());
  return c;
}

bool AttributionService::FirstUse(const std::string& agent, const std::string& target_key) {
  {
    MutexLock lock(usage_mu_);
    if (used_.count({agent, target_key}) != 0) return false;
  }
  auto used = store_.HasUsed(agent, target_key);
  if (used.ok() && *used) {
    MutexLock lock(usage_mu_);
    used_.insert({agent, target_key});
    return false;
  }
  return true;
}

// --- Authorize -------------------------------------------------------------------------------

Result<AuthorizeResult> AttributionService::AuthorizeSync(AuthorizeRequest request) {
  std::promise<Result<AuthorizeResult>> p;
  auto f = p.get_future();
  Authorize(std::move(request), [&p](Result<AuthorizeResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

// One authorization in progress: what each step of Authorize learns, for the steps after it.
struct AttributionService::Decision {
  AuthorizeRequest req;
  json::value args;        // the caller's arguments (an object)
  json::value caller_ctx;  // the caller's context (an object)
  identity::VerifiedAccess va;
  bool session_revoked = false;  // a genuine token of a revoked session: refused, recorded
  // The session's shared counters before this call, when VerifySession counted it with the
  // session read (session_reads_).
  std::optional<SessionCounts> counted;
  int64_t now_ms = 0;
  std::string time;
  std::string action_id;
  std::optional<TraceParent> incoming;
  std::string trace_id, span_id, flags, parent_event;
  std::string target_key;
  std::shared_ptr<SessionState> state;
  std::shared_ptr<const PolicyBundle> bundle;
  identity::Agent agent;
  bool first_use = false;
  json::object context;
  std::string contain_scope;  // "session" | "agent" when a tripwire determined the deny
  std::string tripwire;
  std::vector<std::string> revoked_sids;
  // Every determining forbid is an `@approval` one and nothing else holds the action.
  bool needs_approval = false;
  std::vector<std::string> approval_policies, approval_groups;
  std::vector<std::string> permits;                  // what allows it once approved
  std::string digest;                                // what an approval binds to
  std::optional<events::DecisionApproval> approval;  // for the decision event
  AuthorizeResult result;
};

// Authorize, step by step: each step reads what the ones before it set in the Decision.
void AttributionService::Authorize(AuthorizeRequest req, AuthorizeCallback done) {
  Decision d;
  d.req = std::move(req);
  if (Status st = CheckRequest(d); !st.ok()) return done(std::move(st));
  if (Status st = VerifySession(d); !st.ok()) return done(std::move(st));
  OpenSpan(d);
  if (Status st = GatherContext(d); !st.ok()) return done(std::move(st));
  Decide(d);
  ApplyApproval(d);
  ContainIfTripped(d);
  Count(d);
  Record(std::move(d), std::move(done));
}

// The request's own shape: the action name, the target, the arguments and context objects.
Status AttributionService::CheckRequest(Decision& d) const {
  const std::string& action = d.req.action;
  if (action.empty() || action.size() > 128 ||
      !std::all_of(action.begin(), action.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
               c == ':' || c == '/';
      })) {
    return InvalidArgumentError("action must be 1-128 characters of [A-Za-z0-9_.:/-]");
  }
  RETURN_IF_ERROR(d.req.target.Validate());
  ASSIGN_OR_RETURN(d.args,
                   ParseObject(d.req.arguments_json, "arguments", options_.max_arguments_bytes));
  ASSIGN_OR_RETURN(d.caller_ctx,
                   ParseObject(d.req.caller_context_json, "context", options_.max_arguments_bytes));
  return OkStatus();
}

// The session token, and the subject the caller expects it to name (AuthZEN).
Status AttributionService::VerifySession(Decision& d) {
  if (d.req.verified != nullptr) {
    d.va = *d.req.verified;
    d.req.verified = nullptr;
    const auto& aud = d.va.audiences;
    if (!options_.audience.empty() &&
        std::find(aud.begin(), aud.end(), options_.audience) == aud.end()) {
      return UnauthenticatedError("access token audience does not include " + options_.audience);
    }
    return CheckSubject(d);
  }
  identity::VerifiedAccess revoked;
  identity::TokenService::SessionRead read_and_count;
  if (session_reads_ != nullptr) {
    // The call is counted in the session read's round trip, under the same conditions the
    // verification and the steps up to GatherContext's count check, so that only a call that
    // goes on to a decision is counted, as when GatherContext counted it.
    d.now_ms = UnixMillis(clock_.Now());
    d.target_key = d.req.target.Key();
    read_and_count = [&d, this](const std::string& sid, const std::string& jti,
                                int64_t expired_at) -> Result<store::SessionForToken> {
      store::CallToCount call{d.target_key, d.now_ms, d.now_ms - kMinuteMs, expired_at,
                              d.req.expected_subject};
      ASSIGN_OR_RETURN(store::CountedSessionRead r, session_reads_->ReadAndCount(sid, jti, call));
      d.counted = r.counts;
      return std::move(r.read);
    };
  }
  auto access = tokens_.VerifyAccessToken(d.req.token, options_.audience, &revoked, read_and_count);
  d.session_revoked = !access.ok() && !revoked.session.sid.empty();
  if (!access.ok() && !d.session_revoked) return access.status();
  d.va = access.ok() ? std::move(*access) : std::move(revoked);
  return CheckSubject(d);
}

// The subject the caller expects the session token to name (AuthZEN), if any.
Status AttributionService::CheckSubject(const Decision& d) const {
  const identity::Session& session = d.va.session;
  if (!d.req.expected_subject.empty() && d.req.expected_subject != session.agent &&
      d.req.expected_subject != session.instance) {
    return PermissionDeniedError("subject \"" + d.req.expected_subject +
                                 "\" is not the agent of the session token");
  }
  return OkStatus();
}

// The action's id, time and span (W3C trace context), and the decision it follows, if any.
void AttributionService::OpenSpan(Decision& d) {
  if (d.now_ms == 0) d.now_ms = UnixMillis(clock_.Now());  // unless counted with the session read
  d.time = FormatRfc3339Millis(clock_.Now());
  d.action_id = ids_.NextString();
  d.incoming = ParseTraceParent(d.req.traceparent);
  d.trace_id = d.incoming ? d.incoming->trace_id : NewTraceId(random_);
  d.span_id = NewSpanId(random_);
  d.flags = d.incoming ? d.incoming->flags : "01";
  if (d.incoming) {
    {
      // A decision of a moment ago may still wait for the indexer.
      MutexLock lock(index_mu_);
      if (auto it = pending_spans_.find(SpanKey(d.trace_id, d.incoming->parent_id));
          it != pending_spans_.end()) {
        d.parent_event = it->second;
      }
    }
    if (d.parent_event.empty()) {
      if (auto parent = store_.ActionBySpan(d.trace_id, d.incoming->parent_id);
          parent.ok() && *parent) {
        d.parent_event = (*parent)->action_id;
      }
    }
  }
  d.target_key = d.req.target.Key();
  d.result.action_id = d.action_id;
  d.result.sid = d.va.session.sid;
  d.result.traceparent = FormatTraceParent(d.trace_id, d.span_id, d.flags);
  d.result.session_revoked = d.session_revoked;
}

// The context policy sees: verified session facts, live counters, then the caller's inputs
// under keys of their own. Nothing the caller sends can land outside `arguments` and `caller`.
Status AttributionService::GatherContext(Decision& d) {
  const identity::Session& session = d.va.session;
  d.state = StateOf(session.sid, d.now_ms);
  d.bundle = Bundle();
  d.result.policy_hash = d.bundle->hash;
  if (d.va.agent) {
    d.agent = std::move(*d.va.agent);  // read with the session
  } else {
    auto agent = tokens_.GetAgent(session.agent);
    if (!agent.ok()) return InternalError("the session's agent is not registered");
    d.agent = std::move(*agent);
  }
  json::object sess = SessionContext(session, d.state->chain_agents, d.agent);
  d.first_use = FirstUse(session.agent, d.target_key);
  SessionCounts counts;
  if (shared_counters_ && d.counted) {
    counts = *d.counted;  // counted with the session read (VerifySession)
  } else if (shared_counters_) {
    // Counted here (a caller's own verification, AuthorizeRequest::verified), before the
    // decision, and atomically with reading the counts, so concurrent calls at any node each
    // see the ones before them; a denial is counted once decided (Count). The last step that
    // can fail: a call that fails earlier is not counted, as on one node. Without exact
    // counters there is no decision: the store's error is the answer.
    auto counted = store_.CountCall(session.sid, d.target_key, d.now_ms, d.now_ms - kMinuteMs);
    if (!counted.ok()) return counted.status().WithContext("counting the session's call");
    counts = *counted;
  } else {
    counts = LiveCounts(*d.state, d.now_ms);
  }
  json::object counters = CountersJson(counts, d.first_use);
  d.context = json::object{{"session", std::move(sess)},
                           {"counters", std::move(counters)},
                           {"via", d.req.via},
                           {"arguments", d.args},
                           {"caller", d.caller_ctx}};
  return OkStatus();
}

// The decision: a revoked session is refused before policy; otherwise the active policy set
// decides, a tripwire among the determining forbids is noted, and the session's scopes bound
// whatever the policies allow.
void AttributionService::Decide(Decision& d) const {
  AuthorizeResult& result = d.result;
  const identity::Session& session = d.va.session;
  if (d.session_revoked) {
    result.allowed = false;
    result.reasons = {"custody:session_revoked"};
    result.message = "session revoked: " + session.revoke_reason;
    return;
  }
  policy::Response resp =
      Evaluate(*d.bundle, d.agent, d.req.action, d.req.target, d.req.resource_attrs, d.context);
  result.allowed = resp.decision == policy::Decision::kAllow;
  result.reasons = resp.reasons;
  for (const auto& e : resp.errors) result.errors.push_back(e.policy_id + ": " + e.message);
  if (!result.allowed) {
    for (const auto& id : resp.reasons) {
      auto it = d.bundle->contain.find(id);
      if (it == d.bundle->contain.end()) continue;
      if (d.contain_scope.empty() || it->second == "agent") {
        d.contain_scope = it->second;
        d.tripwire = id;
      }
    }
    result.message = resp.reasons.empty() ? "no permit policy matched"
                                          : "forbidden by policy " + resp.reasons.front();
    // Held only by `@approval` forbids (a plain forbid or a tripwire still wins): would the rest
    // of the set, and the session's scopes, allow it?
    const bool only_approval =
        !resp.reasons.empty() && d.contain_scope.empty() &&
        std::all_of(resp.reasons.begin(), resp.reasons.end(),
                    [&](const std::string& id) { return d.bundle->approval.count(id) > 0; });
    if (only_approval && identity::CoveredBy(d.target_key, session.scopes)) {
      policy::Response rest = Evaluate(*d.bundle, d.agent, d.req.action, d.req.target,
                                       d.req.resource_attrs, d.context, true);
      if (rest.decision == policy::Decision::kAllow) {
        d.needs_approval = true;
        d.permits = rest.reasons;
        d.approval_policies = resp.reasons;
        std::set<std::string> groups;
        for (const auto& id : resp.reasons) groups.insert(d.bundle->approval.at(id));
        d.approval_groups.assign(groups.begin(), groups.end());
      }
    }
  }
  if (result.allowed && !identity::CoveredBy(d.target_key, session.scopes)) {
    result.allowed = false;
    result.reasons = {"custody:scope"};
    result.message = "the session's scopes do not cover " + d.target_key;
  }
  if (result.allowed)
    result.message =
        "allowed by " + (result.reasons.empty() ? std::string("policy") : result.reasons.front());
}

namespace {

std::string JoinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "\n") + s;
  return out;
}

events::DecisionApproval DecisionApprovalOf(const ApprovalRow& row, const std::string& state) {
  events::DecisionApproval a;
  a.id = row.id;
  a.state = state;
  a.groups = ApprovalGroups(row);
  a.policies = SplitSpaces(row.policies);
  a.digest = row.digest;
  a.expires_at = FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(row.expires_ms)));
  if (state == "used") {
    a.approver = row.approver;
    a.verified_by = row.verified_by;
    a.approval_index = row.decided_index;
  }
  return a;
}

}  // namespace

// An action only `@approval` forbids hold: a usable approval of exactly this action (same
// digest: instance, session, action, target, arguments) allows it, and is used up if
// single-use; otherwise the pending approval of the same digest is named again, or a new one is
// asked for. A store that cannot answer leaves the deny standing, with the reason.
void AttributionService::ApplyApproval(Decision& d) {
  if (!d.needs_approval) return;
  const identity::Session& session = d.va.session;
  const ApprovalOptions& opts = options_.approvals;
  AuthorizeResult& result = d.result;
  d.digest = ApprovalDigest(session.instance, session.sid, d.req.action, d.target_key, d.args);
  auto fail = [&](const Status& st) {
    errors_.Report("approval.request", st);
    result.errors.push_back("approvals: " + st.message());
    result.message = "needs approval, but approvals are unavailable: " + st.message();
  };
  // One read: the newest open approval of this digest. An older one of the other state cannot
  // be the one to use: a new approval is only asked for once the previous one is past its time.
  auto found = store_.FindApproval(d.digest, {"approved", "pending"});
  if (!found.ok()) return fail(found.status());
  const std::optional<ApprovalRow>& open = *found;
  const bool live = open && open->expires_ms > d.now_ms;
  if (live && open->state == "approved" && open->decided_index >= 0) {
    ApprovalRow row = *open;
    const std::string before = row.state;
    row.uses++;
    row.used_by = d.action_id;
    if (opts.single_use) row.state = "used";
    // Compare-and-set: of two calls racing for a single-use approval, one gets it; the other
    // asks anew.
    if (store_.UpdateApproval(row, before).ok()) {
      result.allowed = true;
      result.reasons = d.permits;
      result.message = "allowed by " +
                       (d.permits.empty() ? std::string("policy") : d.permits.front()) +
                       " under approval " + row.id + " by " + row.approver;
      d.approval = DecisionApprovalOf(row, "used");
      result.approval = row;
      if (opts.on_changed) opts.on_changed(row);
      return;
    }
  }
  ApprovalRow row;
  if (live && (open->state == "pending" || open->decided_index < 0)) {
    // Pending, or approved a moment ago with its event not yet noted on the row: not new.
    row = *open;
  } else {
    row.id = ids_.NextString();
    row.digest = d.digest;
    row.state = "pending";
    row.sid = session.sid;
    row.root_sid = session.root_sid;
    row.agent = session.agent;
    row.instance = session.instance;
    row.initiator = session.initiator;
    row.action = d.req.action;
    row.target = d.target_key;
    row.group = JoinLines(d.approval_groups);
    row.policies = JoinSpaces(d.approval_policies);
    row.request_action = d.action_id;
    row.requested_ms = d.now_ms;
    row.expires_ms = d.now_ms + opts.request_ttl.count();
    if (Status st = store_.InsertApproval(row); !st.ok()) return fail(st);
    if (opts.on_requested) opts.on_requested(row);
  }
  result.approval_required = true;
  result.reasons = d.approval_policies;
  if (!opts.base_url.empty()) result.approval_url = opts.base_url + "/approvals/" + row.id;
  result.message =
      "needs the approval of a member of " + ApprovalGroupsText(row) + " (approval " + row.id + ")";
  d.approval = DecisionApprovalOf(row, "required");
  result.approval = std::move(row);
}

bool AttributionService::IsApprover(const Approver& who, const std::string& group) const {
  // Parsed from the approval's own text (a few string operations, once per decision), so a group
  // only an older policy set named is read the same way as a current one.
  const policy::EntityUid g = ApproverGroupUid(group);
  // A group the IdP asserted for the person: its uid, or a Group's bare id.
  for (const std::string& claimed : who.groups) {
    if (claimed == group || (g.type == "Group" && claimed == g.id)) return true;
  }
  return Bundle()->entities.In(EntityUid{options_.approvals.person_type, who.person}, g);
}

// Containment takes effect before the answer leaves: the next request is refused.
void AttributionService::ContainIfTripped(Decision& d) {
  if (d.contain_scope.empty()) return;
  const identity::Session& session = d.va.session;
  std::string subject = d.contain_scope == "agent" ? session.agent : session.sid;
  auto r = containment_.RevokeForTripwire(d.contain_scope, session, d.tripwire, d.action_id);
  if (r.ok()) {
    d.revoked_sids = *r;
    d.result.contained = d.contain_scope + " " + subject;
  } else {
    d.result.errors.push_back("containment failed: " + r.status().message());
  }
}

// The session's live counters, and the agent's first use of the target.
void AttributionService::Count(Decision& d) {
  const identity::Session& session = d.va.session;
  if (shared_counters_) {
    // The call itself was counted in GatherContext. A denial not counted only makes later calls
    // see one denial fewer; the deny stands either way.
    if (!d.result.allowed && !d.result.approval_required) {
      if (Status st = store_.CountDenial(session.sid); !st.ok())
        errors_.Report("attribution.count_denial", st);
    }
  } else {
    MutexLock lock(d.state->mu);
    d.state->calls++;
    if (!d.result.allowed && !d.result.approval_required) d.state->denials++;
    d.state->targets.insert(d.target_key);
    d.state->recent_ms.push_back(d.now_ms);
  }
  if (d.result.allowed && d.first_use) {
    // Best effort: a row not written only makes a later call look like a first use again.
    if (Status st = store_.MarkUsed(session.agent, d.target_key, d.now_ms); !st.ok())
      errors_.Report("attribution.mark_used", st);
    MutexLock lock(usage_mu_);
    used_.insert({session.agent, d.target_key});
  }
}

// The action.decision event.
json::object AttributionService::DecisionEvent(const Decision& d) const {
  const identity::Session& session = d.va.session;
  events::ActionDecision e;
  e.event_id = d.action_id;
  e.time = d.time;
  e.actor = ActorOf(session, d.va.jti);
  e.initiator = InitiatorOf(session);
  e.sid = session.sid;
  e.parent_sid = session.parent_sid;
  e.root_sid = session.root_sid;
  e.depth = session.depth;
  e.chain_sids = d.state->chain_sids;
  e.chain_agents = d.state->chain_agents;
  e.trace_id = d.trace_id;
  e.span_id = d.span_id;
  e.parent_span_id = d.incoming ? d.incoming->parent_id : "";
  e.txn = session.txn;
  e.action = d.req.action;
  e.via = d.req.via;
  e.target = TargetOf(d.req.target);
  e.arguments = Recorded(d.args, options_);
  e.policy_hash = d.bundle->hash;
  e.reasons = d.result.reasons;
  e.errors = d.result.errors;
  e.context = d.context;
  e.context.erase("arguments");
  e.allowed = d.result.allowed;
  e.message = d.result.message;
  e.parent_event = d.parent_event;
  if (!d.result.contained.empty()) {
    e.containment =
        events::ActionDecision::Containment{d.contain_scope, d.tripwire, d.revoked_sids};
  }
  e.approval = d.approval;
  return events::Build(e);
}

// The decision first, then (when a tripwire contained) the containment that points at it; the
// answer leaves once both are durable. The action index row is queued once the decision is.
void AttributionService::Record(Decision d, AuthorizeCallback done) {
  const identity::Session& session = d.va.session;
  json::object e = DecisionEvent(d);

  ActionRow row;
  row.action_id = d.action_id;
  row.sid = session.sid;
  row.root_sid = session.root_sid;
  row.agent = session.agent;
  row.initiator = session.initiator;
  row.action = d.req.action;
  row.target = d.target_key;
  row.decision = d.result.allowed             ? "allow"
                 : d.result.approval_required ? "approval_required"
                                              : "deny";
  row.trace_id = d.trace_id;
  row.span_id = d.span_id;
  row.txn = session.txn;
  row.time_ms = d.now_ms;

  std::optional<events::Containment> containment;  // what the tripwire did, if it tripped
  if (!d.result.contained.empty()) {
    events::Containment& c = containment.emplace();
    c.time = d.time;
    c.actor = ActorOf(session, d.va.jti);
    c.scope = d.contain_scope;
    c.subject = d.contain_scope == "agent" ? session.agent : session.sid;
    c.reason = "tripwire " + d.tripwire;
    c.trigger_action = d.action_id;
    c.trigger_policy = d.tripwire;
    c.revoked_sessions = d.revoked_sids;
    c.trace_id = d.trace_id;
    c.span_id = d.span_id;
    c.txn = session.txn;
  }
  const int64_t now_ms = d.now_ms;
  auto shared = std::make_shared<AuthorizeResult>(std::move(d.result));
  auto cb = std::make_shared<AuthorizeCallback>(std::move(done));
  Status st = recorder_.RecordAsync(e, [this, shared, cb, row, containment = std::move(containment),
                                        now_ms](Result<ledger::AppendResult> r) mutable {
    if (!r.ok()) return (*cb)(r.status().WithContext("recording the decision"));
    shared->receipt = std::move(r->receipt);
    shared->ledger_index = r->index;
    row.decision_index = static_cast<int64_t>(r->index);
    Index(std::move(row), false);
    if (!containment) return (*cb)(std::move(*shared));
    // The containment that points at the decision; the answer waits for it to be durable.
    containment_.RecordTripwire(std::move(*containment), now_ms, [shared, cb](Status cs) {
      if (!cs.ok()) shared->errors.push_back("containment record: " + cs.message());
      (*cb)(std::move(*shared));
    });
  });
  if (!st.ok()) (*cb)(st);
}

// --- Dry run ---------------------------------------------------------------------------------

Result<bool> AttributionService::WouldAllow(
    const identity::Session& session, const std::string& action, const Target& target,
    const std::map<std::string, std::string>& resource_attrs, const std::string& arguments_json) {
  RETURN_IF_ERROR(target.Validate());
  json::object arguments;
  if (!arguments_json.empty()) {
    boost::system::error_code ec;
    json::value v = ParseJson(arguments_json, ec);
    if (ec || !v.is_object()) return InvalidArgumentError("the arguments must be a JSON object");
    arguments = std::move(v.get_object());
  }
  const int64_t now_ms = UnixMillis(clock_.Now());
  ASSIGN_OR_RETURN(identity::Agent agent, tokens_.GetAgent(session.agent));
  // A stored session: its real chain and live counters. A synthesized one (no sid in the
  // registry): a root session with no history.
  std::vector<std::string> chain{session.agent};
  SessionCounts counts;
  if (auto stored = tokens_.GetSession(session.sid); stored.ok()) {
    auto state = StateOf(session.sid, now_ms);
    chain = state->chain_agents;
    if (shared_counters_) {
      ASSIGN_OR_RETURN(counts, store_.SessionCounters(session.sid, now_ms - kMinuteMs));
    } else {
      counts = LiveCounts(*state, now_ms);
    }
  }
  const std::string key = target.Key();
  json::object context{{"session", SessionContext(session, chain, agent)},
                       {"counters", CountersJson(counts, FirstUse(session.agent, key))},
                       {"via", "native"},
                       {"arguments", std::move(arguments)},
                       {"caller", json::object()}};
  auto bundle = Bundle();
  policy::Response resp = Evaluate(*bundle, agent, action, target, resource_attrs, context);
  if (resp.decision != policy::Decision::kAllow) {
    // What only `@approval` forbids hold can run once approved: it stays visible (the gateway
    // lists tools by this), and the call itself asks for the approval.
    const bool only_approval =
        !resp.reasons.empty() &&
        std::all_of(resp.reasons.begin(), resp.reasons.end(),
                    [&](const std::string& id) { return bundle->approval.count(id) > 0; });
    if (!only_approval ||
        Evaluate(*bundle, agent, action, target, resource_attrs, context, true).decision !=
            policy::Decision::kAllow)
      return false;
  }
  return identity::CoveredBy(key, session.scopes);
}

std::vector<Target> AttributionService::PublishedTargets(
    const std::set<std::string>& skip_types) const {
  auto bundle = Bundle();
  std::map<std::string, Target> out;
  for (const auto& [uid, e] : bundle->entities.all()) {
    Target t;
    if (uid.type == "Tool") {
      size_t slash = uid.id.find('/');
      if (slash == std::string::npos) continue;
      t.server = uid.id.substr(0, slash);
      t.tool = uid.id.substr(slash + 1);
    } else if (uid.type == "Agent" || uid.type == "Server" || uid.type == "Action" ||
               skip_types.count(uid.type)) {
      continue;
    } else {
      t.type = uid.type;
      t.id = uid.id;
    }
    if (t.Validate().ok()) out.emplace(t.Key(), t);
  }
  std::vector<Target> v;
  for (auto& [k, t] : out) v.push_back(std::move(t));
  return v;
}

// --- Complete --------------------------------------------------------------------------------

Result<CompleteResult> AttributionService::CompleteSync(CompleteRequest request) {
  std::promise<Result<CompleteResult>> p;
  auto f = p.get_future();
  Complete(std::move(request), [&p](Result<CompleteResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

std::string AttributionService::Complete(CompleteRequest req, CompleteCallback done) {
  auto fail = [&done](Status st) {
    done(std::move(st));
    return std::string();
  };
  if (req.status != "ok" && req.status != "error")
    return fail(InvalidArgumentError("status must be \"ok\" or \"error\""));
  if (req.error.size() > 4096) return fail(InvalidArgumentError("error is longer than 4096 bytes"));
  if (!req.output_digest.empty()) {
    std::string_view d = req.output_digest;
    bool ok = d.size() == 71 && d.substr(0, 7) == "sha256:" &&
              std::all_of(d.begin() + 7, d.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (!ok) return fail(InvalidArgumentError("output_digest must be sha256:<64 lower-case hex>"));
  }
  identity::VerifiedAccess revoked;
  Result<identity::VerifiedAccess> access = UnauthenticatedError("not verified");
  if (req.verified == nullptr) {
    access = tokens_.VerifyAccessToken(req.token, options_.audience, &revoked);
    if (!access.ok() && revoked.session.sid.empty()) return fail(access.status());
  }
  const identity::VerifiedAccess& va =
      req.verified != nullptr ? *req.verified : (access.ok() ? *access : revoked);

  auto found = FindAction(req.action_id);
  if (!found.ok()) return fail(found.status());
  std::optional<ActionRow> row = std::move(*found);
  if (!row) return fail(NotFoundError("no action " + req.action_id));
  if (row->sid != va.session.sid)
    return fail(PermissionDeniedError("action " + req.action_id + " belongs to another session"));
  // A revoked session reports nothing more: its claimed outcome is refused and the refusal is
  // recorded (the gateway's own outcomes, req.verified, are observations and stay recorded).
  if (req.verified == nullptr && !access.ok()) return RefuseOutcome(req, *row, va, std::move(done));
  // Check and claim under one lock, so a concurrent second completion is refused.
  bool claimed = false;
  bool wake = false;
  {
    MutexLock lock(index_mu_);
    if (auto it = pending_rows_.find(req.action_id); it != pending_rows_.end()) {
      row = it->second.row;
    }
    if (row->outcome_index < 0 && row->status.empty()) {
      // The claim is the status alone: outcome_index stays -1 until the outcome is durable, so
      // an investigation never shows an outcome that is not in the ledger yet.
      row->status = req.status;
      wake = IndexLocked(*row, true);
      claimed = true;
    }
  }
  if (wake) index_cv_.NotifyOne();
  if (!claimed)
    return fail(AlreadyExistsError("the outcome of action " + req.action_id + " is recorded"));

  std::string event_id = req.event_id.empty() ? ids_.NextString() : req.event_id;
  json::object e = events::Build(
      OutcomeEvent(req, *row, va, event_id, FormatRfc3339Millis(clock_.Now()), options_));
  ActionRow update = *row;
  auto cb = std::make_shared<CompleteCallback>(std::move(done));
  Status st = recorder_.RecordAsync(
      e, [this, cb, update, event_id](Result<ledger::AppendResult> r) mutable {
        if (!r.ok()) return (*cb)(r.status().WithContext("recording the outcome"));
        update.outcome_index = static_cast<int64_t>(r->index);
        Index(update, true);
        (*cb)(CompleteResult{event_id, std::move(r->receipt), r->index});
      });
  if (!st.ok()) {
    (*cb)(st);
    return "";
  }
  return event_id;
}

std::string AttributionService::RefuseOutcome(const CompleteRequest& req, const ActionRow& row,
                                              const identity::VerifiedAccess& va,
                                              CompleteCallback done) {
  std::string refusal = "session revoked: " + va.session.revoke_reason;
  events::ActionOutcome o =
      OutcomeEvent(req, row, va, ids_.NextString(), FormatRfc3339Millis(clock_.Now()), options_);
  o.refusal = refusal;
  auto cb = std::make_shared<CompleteCallback>(std::move(done));
  Status st =
      recorder_.RecordAsync(events::Build(o), [cb, refusal](Result<ledger::AppendResult> r) {
        if (!r.ok()) {
          return (*cb)(UnauthenticatedError(
              refusal + " (recording the refusal failed: " + r.status().message() + ")"));
        }
        (*cb)(UnauthenticatedError(refusal + "; the refusal is recorded at ledger index " +
                                   std::to_string(r->index)));
      });
  if (!st.ok()) (*cb)(UnauthenticatedError(refusal));
  return "";
}

// --- Policies --------------------------------------------------------------------------------

Result<PublishResult> AttributionService::PublishPolicies(const std::string& policies,
                                                          const std::string& entities,
                                                          const std::string& by) {
  if (policies.size() > 4 * 1024 * 1024)
    return InvalidArgumentError("policy text is larger than 4 MiB");
  auto bundle = MakeBundle(policies, entities);
  if (!bundle.ok()) return bundle.status().WithContext("policy set refused");
  MutexLock publish(publish_mu_);
  PublishResult out;
  out.hash = (*bundle)->hash;
  out.policies = (*bundle)->set.policies().size();
  out.entities = (*bundle)->entities.size();
  for (const auto& [id, scope] : (*bundle)->contain) out.tripwires.push_back(id);
  ASSIGN_OR_RETURN(auto active, store_.ActivePolicySet());
  std::string entities_digest = Sha256Hex(entities);
  if (active && active->hash == out.hash && active->entities == entities) {
    out.ledger_index = static_cast<uint64_t>(active->ledger_index);
    return out;
  }
  std::string event_id = ids_.NextString();
  std::string time = FormatRfc3339Millis(clock_.Now());
  events::PolicyPublish e;
  e.event_id = event_id;
  e.time = time;
  e.by = by;
  e.set_hash = out.hash;
  e.policies = static_cast<int64_t>(out.policies);
  e.entities = static_cast<int64_t>(out.entities);
  e.entities_digest = "sha256:" + entities_digest;
  e.tripwires = out.tripwires;
  e.previous = active ? active->hash : "";
  ASSIGN_OR_RETURN(auto appended, recorder_.Record(events::Build(e)));
  out.ledger_index = appended.index;
  PolicySetRecord rec{out.hash, policies,
                      entities, UnixMillis(clock_.Now()),
                      by,       static_cast<int64_t>(appended.index)};
  RETURN_IF_ERROR(store_.PutPolicySet(rec));
  {
    MutexLock lock(bundle_mu_);
    bundle_ = *bundle;
  }
  if (options_.on_policy_published) options_.on_policy_published();
  return out;
}

Result<bool> AttributionService::ReloadPolicies() {
  MutexLock publish(publish_mu_);  // not between a local publication's store write and its swap
  ASSIGN_OR_RETURN(auto active, store_.ActivePolicySet());
  if (!active) return false;
  {
    MutexLock lock(bundle_mu_);
    if (bundle_ && bundle_->hash == active->hash && bundle_->entities_text == active->entities)
      return false;
  }
  auto bundle = MakeBundle(active->policies, active->entities);
  if (!bundle.ok()) return bundle.status().WithContext("the stored active policy set");
  MutexLock lock(bundle_mu_);
  bundle_ = *bundle;
  return true;
}

}  // namespace custody::attribution
