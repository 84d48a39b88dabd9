// AttributionService: decide, record, contain. Every action an agent takes is checked here
// before it runs (Authorize) and its outcome recorded after (Complete).
//
// Authorize verifies the session token, builds the Cedar request from verified facts only
// (principal: the registered agent; resource: the tool under its server, or a typed resource;
// context: the session as Custody knows it, live counters, and the caller's arguments under
// their own key), evaluates the active policy set, checks the session's scopes, and appends
// the decision to the ledger before answering, with the policy-set hash, the determining and
// erroring policies and the evaluated context. A deny determined by a `forbid` annotated
// `@contain("session")` or `@contain("agent")` revokes that session tree (or every session of
// the agent, disabling it) before the answer leaves, and a containment record that points at
// the decision follows it into the ledger. See docs/ATTRIBUTION.md.
//
// Thread-safe. The ledger, token service and store must outlive the service.
#pragma once

#include <atomic>
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"
#include "containment/containment_service.h"
#include "events/recorder.h"
#include "store/attribution_store.h"

namespace custody::ledger {
class Ledger;
}
namespace custody::identity {
class TokenService;
struct VerifiedAccess;
struct Session;
}  // namespace custody::identity

namespace custody::store {
class SessionReadAndCount;
}

namespace custody::attribution {

// The attribution module's names for its store and the store's records (store/attribution_store.h).
using store::ActionRow;
using store::ActionUsage;
using store::ApprovalRow;
using store::AttributionStore;
using store::ContainmentRow;
using store::PolicySetRecord;
using store::SessionCounts;

struct PolicyBundle;  // the active policy set and entities (attribution_service.cc)

// What an action is aimed at: a tool (server and tool name) or a typed resource.
// What an action is on: a tool of an MCP server (server, tool); an MCP server's resource or
// prompt (server, type "Resource" with the URI as id, or type "Prompt" with the prompt's name);
// or any other Cedar entity (type, id).
struct Target {
  std::string server;
  std::string tool;
  std::string type;
  std::string id;
  bool is_tool() const { return !tool.empty(); }
  bool on_server() const { return !server.empty(); }  // a tool, resource or prompt
  // The scope that covers it, and the key it is indexed under: "<server>/<tool>",
  // "<server>/resource:<uri>", "<server>/prompt:<name>" or "<type>:<id>" (so a scope
  // "<server>/*" covers everything of a server).
  std::string Key() const;
  Status Validate() const;
};

enum class ArgumentRecording {
  kDigest,    // only the SHA-256 of the canonical arguments (default)
  kRedacted,  // the arguments, with the named fields replaced by "[redacted]"
};

// Person-in-the-loop approvals (docs/APPROVALS.md): a `forbid` annotated `@approval("<group>")`
// holds a matching action for a member of that group instead of denying it.
struct ApprovalOptions {
  std::chrono::milliseconds ttl{15 * 60 * 1000};          // an approved one stays usable
  std::chrono::milliseconds request_ttl{60 * 60 * 1000};  // a pending one can be approved
  bool single_use = true;
  // Separation of duties: the person who started the session may not approve its actions.
  bool allow_self_approval = false;
  std::string person_type = "User";  // approvers are `<person_type>::"<name>"` in the entities
  std::string base_url;              // the approval link: <base_url>/approvals/<id>
  // Runs when a new approval is asked for (the approvers' webhook). Must not block.
  std::function<void(const ApprovalRow&)> on_requested;
  // Runs when an approval changes state (decided, expired, cancelled, used), so a caller holding
  // an action for it (the MCP gateway) can look again. Must not block.
  std::function<void(const ApprovalRow&)> on_changed;
};

struct AttributionOptions {
  // When non-empty, session tokens must carry this audience.
  std::string audience;
  ArgumentRecording arguments = ArgumentRecording::kDigest;
  std::vector<std::string> redact_fields;  // field names, at any depth
  size_t max_arguments_bytes = 256 * 1024;
  // Runs after a publication here activated a new policy set (it is stored and recorded): the
  // deployment's change feed tells the other nodes (ReloadPolicies). Must not block.
  std::function<void()> on_policy_published;
  ApprovalOptions approvals;
};

struct AuthorizeRequest {
  std::string token;  // the bearer session token
  std::string action = "call_tool";
  Target target;
  std::string arguments_json;       // a JSON object, or empty
  std::string caller_context_json;  // a JSON object, or empty: lands under context.caller
  std::string traceparent;          // W3C, optional
  std::string via = "native";       // "native", "authzen", "mcp": recorded
  // When set (AuthZEN's subject.id), it must name the session's agent or its instance SPIFFE
  // ID; otherwise the request is refused (PermissionDenied) before policy is evaluated.
  std::string expected_subject;
  // Extra string attributes of the resource entity (the gateway adds the definition hash).
  std::map<std::string, std::string> resource_attrs;
  // For in-process callers only (the MCP gateway): the caller's own verification of `token`,
  // genuine and unrevoked, made for this same request a moment ago (a store read), which is
  // then not repeated; Authorize copies it before it returns. The audience is still checked. A
  // request authorized again later (a call held for approval) must leave it null.
  const identity::VerifiedAccess* verified = nullptr;
};

struct AuthorizeResult {
  std::string action_id;
  bool allowed = false;
  // The token was genuine but its session is revoked: refused (and recorded) before policy.
  bool session_revoked = false;
  std::vector<std::string> reasons;  // determining policy ids, or custody:* reasons
  std::vector<std::string> errors;   // "<policy id>: <message>"
  std::string message;               // why, for people
  std::string policy_hash;
  std::string receipt;  // C2SP tlog-proof for the decision event
  uint64_t ledger_index = 0;
  std::string sid;
  std::string traceparent;  // the span Custody opened for this action (propagate it)
  std::string contained;    // "session <sid>" or "agent <name>" when this call tripped a wire
  // An `@approval` policy held the action: `approval` is the approval asked for (pending). When
  // an approval allowed the action instead, `approval` is that one (state "used" or, if approvals
  // are reusable, "approved") and `allowed` is true.
  bool approval_required = false;
  std::optional<ApprovalRow> approval;
  std::string approval_url;  // where a person approves it (required only)
};
using AuthorizeCallback = std::function<void(Result<AuthorizeResult>)>;

// A request the MCP server sent the client during the action (sampling/createMessage,
// elicitation/create, roots/list), relayed by the gateway and recorded with the outcome: what
// was asked (its params, recorded as arguments are: a digest, or the redacted value) and the
// digest of the answer.
struct RelayedExchange {
  std::string method;
  std::string client;         // the MCP session asked
  std::string params_json;    // the request's params (a JSON value), or empty
  std::string answer_digest;  // "sha256:<hex>" of the client's result or error, or empty
  // "answered" | "error" (the client answered with an error) | "unanswered" (the action ended
  // first) | "refused" (the gateway answered the server itself, `note` says why)
  std::string status;
  std::string note;
};

struct CompleteRequest {
  std::string token;
  std::string action_id;
  std::string status;  // "ok" | "error"
  std::string error;
  std::string output_digest;  // "sha256:<hex>", optional
  int64_t latency_ms = -1;
  // For in-process callers only (the MCP gateway). `event_id`: the outcome's event id, from
  // NewEventId(), so the caller can name it in its answer before the event is queued.
  // `verified`: the caller's own verification of `token` (same audience), which is then not
  // repeated; it must outlive the call to Complete.
  std::string event_id;
  const identity::VerifiedAccess* verified = nullptr;
  std::vector<RelayedExchange> exchanges;  // the gateway's relays during the action
  // The Transaction Token the gateway forwarded the action with (jti, aud), if any.
  std::string txn_token_jti, txn_token_aud;
};
struct CompleteResult {
  std::string event_id;
  std::string receipt;
  uint64_t ledger_index = 0;
};
using CompleteCallback = std::function<void(Result<CompleteResult>)>;

struct PublishResult {
  std::string hash;
  size_t policies = 0;
  size_t entities = 0;
  uint64_t ledger_index = 0;
  std::vector<std::string> tripwires;  // ids of @contain policies
};

using containment::ContainResult;

// The approver groups an approval names (ApprovalRow::group holds one per line), and the same
// for people: `Group::"a" and Group::"b"`.
std::vector<std::string> ApprovalGroups(const ApprovalRow& row);
std::string ApprovalGroupsText(const ApprovalRow& row);

// A person deciding an approval, as authenticated by the caller (an approver's admin token, or a
// sign-in at the company IdP).
struct Approver {
  std::string person;       // the approver's name: `<person_type>::"<person>"` in the entities
  std::string verified_by;  // how: "admin-token:<id>", "oidc:<issuer>"
  // Groups the IdP asserted for the person (entity uids or bare ids); published entities count too.
  std::vector<std::string> groups;
};

class AttributionService {
 public:
  static Result<std::unique_ptr<AttributionService>> Create(
      identity::TokenService& tokens, ledger::Ledger& ledger, AttributionStore& store,
      const Clock& clock, Random& random, ErrorReporter& errors, AttributionOptions options);
  ~AttributionService();

  // `done` runs once, on another thread, after the decision is durable (or failed).
  // Unauthenticated for a token that does not verify; InvalidArgument for a malformed request.
  void Authorize(AuthorizeRequest request, AuthorizeCallback done);
  Result<AuthorizeResult> AuthorizeSync(AuthorizeRequest request);
  // Records the outcome of an authorized action of the token's session (genuine tokens of
  // sessions revoked since are accepted: the outcome is evidence).
  // Returns the outcome's event id once the event is queued for the ledger ("" when `done` has
  // already run with an error); `done` runs once it is durable (or failed).
  std::string Complete(CompleteRequest request, CompleteCallback done);
  // A fresh event id for CompleteRequest::event_id.
  std::string NewEventId() { return ids_.NextString(); }
  Result<CompleteResult> CompleteSync(CompleteRequest request);

  // Parses, validates and activates a policy set (and its entities JSON, "" for none); records
  // it in the ledger. Publishing the active set again is a no-op that reports it.
  Result<PublishResult> PublishPolicies(const std::string& policies, const std::string& entities,
                                        const std::string& by);
  Result<std::optional<PolicySetRecord>> ActivePolicySet() { return store_.ActivePolicySet(); }
  // Another node published a policy set (the deployment's change feed, or its poll): activates
  // the store's active set here if it is not the one in force. Records nothing: the publishing
  // node did. True if the set in force changed.
  Result<bool> ReloadPolicies();

  // Manual containment: scope "session" (the tree below it too) or "agent" (disables it).
  // ContainmentService::Contain, on the service's ledger and store.
  Result<ContainResult> Contain(const std::string& scope, const std::string& subject,
                                const std::string& reason, const std::string& by) {
    return containment_.Contain(scope, subject, reason, by);
  }

  // Dry run: would `session` be allowed `action` on `target` under the active policies and the
  // session's scopes? Nothing is recorded and no counter moves. A session the registry knows is
  // evaluated with its real chain and live counters; any other (e.g. one synthesized for an
  // agent without live sessions) as a root session with no history. A tripwire that would
  // determine a deny is just a deny here. `arguments_json` (a JSON object, or empty for none) is
  // the action's arguments as a real call would carry them (context.arguments): e.g. the access
  // level of an issue_credential dry run.
  Result<bool> WouldAllow(const identity::Session& session, const std::string& action,
                          const Target& target,
                          const std::map<std::string, std::string>& resource_attrs = {},
                          const std::string& arguments_json = "");
  // The tools (Tool::"<server>/<tool>") and resources (any type but Agent, Server, Action and
  // groups named in `skip_types`) in the active set's published entities, sorted by key.
  std::vector<Target> PublishedTargets(const std::set<std::string>& skip_types = {}) const;

  // Approvals. Approve or deny a pending approval: the approver must be a member of every group
  // it names (through the published entities or `approver.groups`), and not the session's
  // initiator unless self-approval is allowed. The change is recorded (approval.approve or
  // approval.deny) before it takes effect. FailedPrecondition for an approval that is not
  // pending (naming its state), expired, or whose session is revoked (it is cancelled);
  // PermissionDenied for a non-member or a self-approval; NotFound for an unknown id.
  Result<ApprovalRow> DecideApproval(const std::string& id, bool approve, const Approver& approver,
                                     const std::string& reason);
  Result<std::optional<ApprovalRow>> GetApproval(const std::string& id);
  // states: "pending", "approved", …; empty for all. Newest first.
  Result<std::vector<ApprovalRow>> ListApprovals(const std::vector<std::string>& states,
                                                 size_t limit);
  // Records the expiry of every pending or approved approval past its time (each once, whichever
  // node gets there first). The service runs it every second; tests call it.
  void ExpireApprovals();
  // Cancels the pending and approved approvals of `sids` (they were revoked) and records it.
  void CancelApprovals(const std::vector<std::string>& sids, const std::string& reason);
  // The digest an approval binds to: SHA-256 over the canonical JSON of the agent instance, the
  // session, the action, the target's key and the arguments ("sha256:<hex>").
  static std::string ApprovalDigest(const std::string& instance, const std::string& sid,
                                    const std::string& action, const std::string& target_key,
                                    const boost::json::value& arguments);

  AttributionStore& store() { return store_; }
  // Action `action_id` as the index will hold it: a row still queued for the index, else the
  // index's row, else its decision (and outcome) read from the ledger, for an action the index
  // does not hold (yet). nullopt if the ledger has no such decision either.
  Result<std::optional<ActionRow>> FindAction(const std::string& action_id);
  // Waits until every action row handed to the indexer before the call is written
  // (investigations, tests), or until an attempt to write them that began after the call has
  // failed (a waiting flush cuts the retry backoff short): rows not yet written stay visible to
  // Complete and the investigations while the indexer retries. Without it, rows are written in
  // batches up to kIndexDelay late.
  void FlushIndex();
  // OK while the indexer keeps up; Unavailable, with how long and why, while its writes fail
  // (it keeps the rows and retries them with backoff). /readyz reports it.
  Status IndexHealth() const;
  // How long the indexer lets rows gather before writing them, unless FlushIndex() waits or
  // kIndexBatch rows are queued: one wake-up per batch, not one per row (each wake-up of a
  // thread costs the call path CPU on a small machine).
  static constexpr std::chrono::milliseconds kIndexDelay{5};
  static constexpr size_t kIndexBatch = 512;
  // Backoff between retries of a failed index write: doubled from the first to the last.
  static constexpr std::chrono::milliseconds kIndexRetryFirst{10};
  static constexpr std::chrono::milliseconds kIndexRetryMax{5000};

 private:
  struct SessionState;
  struct Decision;  // one Authorize in progress (attribution_service.cc)
  AttributionService(identity::TokenService& tokens, ledger::Ledger& ledger,
                     AttributionStore& store, const Clock& clock, Random& random,
                     ErrorReporter& errors, AttributionOptions options);
  void IndexLoop();
  struct IndexOp;
  // Writes one batch of ops in one transaction.
  // Refuses a revoked session's outcome and records the refusal (action.outcome_refused).
  std::string RefuseOutcome(const CompleteRequest& req, const ActionRow& row,
                            const identity::VerifiedAccess& va, CompleteCallback done);
  Status WriteIndexBatch(std::deque<IndexOp>& ops);
  void Index(ActionRow row, bool outcome_only);
  // true: wake the indexer
  bool IndexLocked(ActionRow row, bool outcome_only) REQUIRES(index_mu_);
  // The steps of Authorize, in order.
  Status CheckRequest(Decision& d) const;
  Status VerifySession(Decision& d);
  Status CheckSubject(const Decision& d) const;
  void OpenSpan(Decision& d);
  Status GatherContext(Decision& d);
  void Decide(Decision& d) const;
  void ContainIfTripped(Decision& d);
  // After Decide: an action held only by `@approval` policies is allowed under a usable approval
  // of the same digest (used up if single-use), or gets one asked for.
  void ApplyApproval(Decision& d);
  Result<uint64_t> RecordApprovalChange(const ApprovalRow& row, const std::string& kind);
  // Moves an approval from `from` to `to` (compare-and-set on from.state), records `kind`, and
  // notes the event's index on the row; undone if the event cannot be recorded.
  Result<ApprovalRow> ChangeApproval(const ApprovalRow& from, ApprovalRow to,
                                     const std::string& kind);
  bool IsApprover(const Approver& who, const std::string& group) const;
  void ApprovalLoop();
  void Count(Decision& d);
  void Record(Decision d, AuthorizeCallback done);
  boost::json::object DecisionEvent(const Decision& d) const;

  std::shared_ptr<const PolicyBundle> Bundle() const;
  std::shared_ptr<SessionState> StateOf(const std::string& sid, int64_t now_ms);
  SessionCounts LiveCounts(SessionState& state, int64_t now_ms);  // calls_since: last minute
  bool FirstUse(const std::string& agent, const std::string& target_key);

  identity::TokenService& tokens_;
  ledger::Ledger& ledger_;
  AttributionStore& store_;
  const Clock& clock_;
  Random& random_;
  ErrorReporter& errors_;
  events::Recorder recorder_;  // over ledger_
  const AttributionOptions options_;
  UuidV7Generator ids_;                          // thread-safe
  containment::ContainmentService containment_;  // over tokens_, recorder_, store_
  // The store is shared by several nodes: session counters are counted in it (CountCall), one
  // round trip per call, instead of in sessions_, so a session calling through several nodes
  // sees the sum. One node (SQLite, memory) keeps the in-memory counters: no write per call.
  const bool shared_counters_;
  // With shared_counters_: reads a token's session and counts its call in one step (one round
  // trip on PostgreSQL), used by VerifySession so that GatherContext does not count again.
  const std::unique_ptr<store::SessionReadAndCount> session_reads_;

  mutable Mutex bundle_mu_;
  std::shared_ptr<const PolicyBundle> bundle_ GUARDED_BY(bundle_mu_);
  Mutex publish_mu_;  // one publication at a time

  Mutex sessions_mu_;
  // Chains, and (unless shared_counters_) live counters, of the sessions seen.
  std::unordered_map<std::string, std::shared_ptr<SessionState>> sessions_ GUARDED_BY(sessions_mu_);
  Mutex usage_mu_;
  // (agent, target) known used
  std::set<std::pair<std::string, std::string>> used_ GUARDED_BY(usage_mu_);

  // Action rows are written by one thread, in batches; rows not yet written are kept in
  // pending_ so Complete and investigations see them.
  mutable Mutex index_mu_;
  CondVar index_cv_;
  CondVar index_idle_cv_;
  struct IndexOp {
    ActionRow row;
    bool outcome_only = false;  // set outcome_index/status of an existing row
  };
  std::deque<IndexOp> index_queue_ GUARDED_BY(index_mu_);
  struct PendingRow {
    ActionRow row;
    int queued = 0;  // ops for this row not yet written
  };
  std::unordered_map<std::string, PendingRow> pending_rows_ GUARDED_BY(index_mu_);
  // SpanKey(trace_id, span_id) of each pending decision -> its action id
  std::unordered_map<std::string, std::string> pending_spans_ GUARDED_BY(index_mu_);
  int flush_waiters_ GUARDED_BY(index_mu_) = 0;      // FlushIndex() calls waiting
  uint64_t index_queued_ GUARDED_BY(index_mu_) = 0;  // ops ever queued
  // ops ever written (a prefix of those queued)
  uint64_t index_written_ GUARDED_BY(index_mu_) = 0;
  bool index_stop_ GUARDED_BY(index_mu_) = false;
  int64_t index_failing_since_ms_ GUARDED_BY(index_mu_) = 0;
  // Failed writes in a row: non-zero while the last write failed and its ops wait for a retry.
  uint64_t index_failures_ GUARDED_BY(index_mu_) = 0;
  uint64_t index_attempts_ GUARDED_BY(index_mu_) = 0;  // writes ever begun
  // The number (in index_attempts_) of the last write that failed.
  uint64_t index_last_failed_attempt_ GUARDED_BY(index_mu_) = 0;
  Status index_last_error_ GUARDED_BY(index_mu_);
  std::thread indexer_;

  Mutex approvals_mu_;
  CondVar approvals_cv_;
  bool approvals_stop_ GUARDED_BY(approvals_mu_) = false;
  std::vector<std::string> revoked_queue_ GUARDED_BY(approvals_mu_);  // sids to cancel for
  int revocation_listener_ = -1;
  std::thread approvals_thread_;  // expiries
};

}  // namespace custody::attribution
