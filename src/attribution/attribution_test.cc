// AttributionService against real SQLite stores, a real ledger and real tokens: decisions are
// recorded with their provenance, tripwires contain, forged context is ignored.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "attribution/trace_context.h"
#include "common/encoding.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "ledger/receipt.h"
#include "store/stores.h"
#include "store/testing/fault_vfs.h"

namespace custody::attribution {
namespace {

namespace json = boost::json;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

class AttributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w =
        testkit::World::Create(std::filesystem::temp_directory_path() /
                               ("custody-attr-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(
        w_->Register("worker", {"github/*", "Database:*"}, {}, identity::Environment::kDev).ok());
  }
  void Open(AttributionOptions o = {}) { ASSERT_TRUE(w_->Reopen(o).ok()); }
  std::string Root(const std::string& scope = "") {
    auto s = w_->Root("planner", scope);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->token : "";
  }
  std::string Child(const std::string& parent, const std::string& agent,
                    const std::string& scope = "") {
    auto s = w_->Child(parent, agent, scope);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->token : "";
  }
  void Publish(const std::string& policies, const std::string& entities = "") {
    auto r = w_->svc->PublishPolicies(policies, entities, "admin");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Result<AuthorizeResult> Call(const std::string& token, const std::string& server,
                               const std::string& tool, const std::string& args = "{}",
                               const std::string& ctx = "") {
    AuthorizeRequest r = testkit::World::Call(token, server, tool, args);
    r.caller_context_json = ctx;
    return w_->svc->AuthorizeSync(r);
  }
  json::object Event(uint64_t index) {
    auto leaf = w_->ledger->GetEntry(index);
    EXPECT_TRUE(leaf.ok());
    return json::parse(leaf->data).as_object();
  }

  std::unique_ptr<testkit::World> w_;
};

constexpr const char* kPermitGithub =
    "@id(\"github-ok\") permit(principal, action == Action::\"call_tool\", resource in "
    "Server::\"github\");";

CompleteRequest Outcome(const std::string& token, const std::string& action_id,
                        const std::string& status, int64_t latency_ms) {
  CompleteRequest c;
  c.token = token;
  c.action_id = action_id;
  c.status = status;
  c.latency_ms = latency_ms;
  return c;
}

// An MCP server's tool, resource and prompt share the server's key space (so "<server>/*"
// covers them) without colliding; a server-scoped target must be a Resource or a Prompt.
TEST(Target, KeysAndShapesOfWhatAnMcpServerOffers) {
  auto t = [](std::string server, std::string tool, std::string type, std::string id) {
    return Target{std::move(server), std::move(tool), std::move(type), std::move(id)};
  };
  EXPECT_EQ(t("files", "read", "", "").Key(), "files/read");
  EXPECT_EQ(t("files", "", "Resource", "file:///a/b").Key(), "files/resource:file:///a/b");
  EXPECT_EQ(t("files", "", "Prompt", "read").Key(), "files/prompt:read");
  EXPECT_EQ(t("", "", "Database", "prod").Key(), "Database:prod");
  EXPECT_TRUE(t("files", "", "Resource", "file:///a").Validate().ok());
  EXPECT_TRUE(t("files", "", "Prompt", "greet").Validate().ok());
  EXPECT_FALSE(t("files", "", "Database", "prod").Validate().ok());
  EXPECT_FALSE(t("fi/les", "", "Prompt", "greet").Validate().ok());
  EXPECT_FALSE(t("files", "", "Resource", "").Validate().ok());
  EXPECT_FALSE(t("files", "read", "Resource", "x").Validate().ok());
}

TEST_F(AttributionTest, AllowedCallIsRecordedBeforeAnsweringWithAVerifiableReceipt) {
  Publish(kPermitGithub);
  std::string root = Root();
  auto r = Call(root, "github", "create_issue", R"({"title":"x","token":"s3cret"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->allowed);
  EXPECT_EQ(r->reasons, std::vector<std::string>{"github-ok"});
  // The receipt verifies offline against the ledger's key and the event bytes.
  auto leaf = w_->ledger->GetEntry(r->ledger_index);
  ASSERT_TRUE(leaf.ok());
  auto verifier = ledger::NoteVerifier::FromVerifierKey(w_->verifier_key);
  EXPECT_TRUE(ledger::VerifyReceipt(*verifier, r->receipt, AsBytes(leaf->data)).ok());
  json::object e = Event(r->ledger_index);
  EXPECT_EQ(S(e["kind"]), "action.decision");
  EXPECT_EQ(S(e["event_id"]), r->action_id);
  EXPECT_EQ(S(e["decision"]), "allow");
  EXPECT_EQ(S(e.at("policy").at("set_hash")), r->policy_hash);
  EXPECT_EQ(S(e.at("initiator").at("id")), "alice@example.com");
  EXPECT_EQ(e.at("context").at("session").at("chain").as_array().size(), 1u);
  // Arguments are kept as a digest only, by default: the secret is not in the ledger.
  EXPECT_EQ(leaf->data.find("s3cret"), std::string::npos);
  EXPECT_EQ(e.at("arguments").at("digest").as_string().size(), 71u);

  auto c = w_->svc->CompleteSync(Outcome(root, r->action_id, "ok", 12));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  json::object o = Event(c->ledger_index);
  EXPECT_EQ(S(o["kind"]), "action.outcome");
  EXPECT_EQ(S(o["action_id"]), r->action_id);
  EXPECT_EQ(o.at("decision_index").as_int64(), static_cast<int64_t>(r->ledger_index));
  // Twice is refused; so is another session completing it.
  EXPECT_EQ(w_->svc->CompleteSync(Outcome(root, r->action_id, "ok", 1)).status().code(),
            StatusCode::kAlreadyExists);
  std::string other = Root();
  auto r2 = Call(root, "github", "list_issues");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(w_->svc->CompleteSync(Outcome(other, r2->action_id, "ok", 1)).status().code(),
            StatusCode::kPermissionDenied);
  w_->svc->FlushIndex();
  // Still refused once the rows are written (the claim is in the index, not only in memory).
  EXPECT_EQ(w_->svc->CompleteSync(Outcome(root, r->action_id, "error", 1)).status().code(),
            StatusCode::kAlreadyExists);
  auto row = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ((*row)->status, "ok");
  EXPECT_EQ((*row)->outcome_index, static_cast<int64_t>(c->ledger_index));
}

// A contained agent writes nothing more into the record: the outcome of an action it was allowed
// before its session was revoked is refused, and the refusal itself is recorded.
TEST_F(AttributionTest, ARevokedSessionCannotCompleteItsEarlierActions) {
  Publish(kPermitGithub);
  std::string root = Root();
  auto r = Call(root, "github", "create_issue");
  ASSERT_TRUE(r.ok() && r->allowed) << r.status().ToString();
  auto sid = w_->tokens->VerifyAccessToken(root, "")->session.sid;
  ASSERT_TRUE(w_->tokens->RevokeSession(sid, "exfiltration", "admin:ops").ok());
  uint64_t before = w_->ledger->Size();
  auto c = w_->svc->CompleteSync(Outcome(root, r->action_id, "ok", 7));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated);  // like its other calls
  EXPECT_NE(c.status().message().find("session revoked: exfiltration"), std::string::npos)
      << c.status().ToString();
  ASSERT_EQ(w_->ledger->Size(), before + 1);
  json::object e = Event(before);
  EXPECT_EQ(S(e["kind"]), "action.outcome_refused");
  EXPECT_EQ(S(e["action_id"]), r->action_id);
  EXPECT_EQ(S(e["refusal"]), "session revoked: exfiltration");
  EXPECT_EQ(S(e.at("outcome").at("status")), "ok");
  // The action has no outcome: investigations do not show one the session was refused.
  w_->svc->FlushIndex();
  auto row = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ((*row)->outcome_index, -1);
  EXPECT_TRUE((*row)->status.empty());
}

TEST_F(AttributionTest, AnOutcomeInALaterIndexBatchUpdatesTheWrittenRow) {
  Publish(kPermitGithub);
  std::string root = Root();
  auto r = Call(root, "github", "list_issues");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  w_->svc->FlushIndex();  // the decision row is written on its own
  auto before = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(before.ok() && *before);
  EXPECT_EQ((*before)->outcome_index, -1);
  EXPECT_EQ((*before)->status, "");
  auto c = w_->svc->CompleteSync(Outcome(root, r->action_id, "error", 3));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  w_->svc->FlushIndex();
  auto row = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ((*row)->status, "error");
  EXPECT_EQ((*row)->outcome_index, static_cast<int64_t>(c->ledger_index));
  EXPECT_EQ((*row)->decision_index, static_cast<int64_t>(r->ledger_index));
  EXPECT_EQ((*row)->target, "github/list_issues");
}

// A full disk under the action index: the decision is still recorded and answered (the ledger
// is another file), the index rows are kept and retried instead of dropped, the failure is
// reported (warn + custody_errors_total) and readiness says so until a retry succeeds.
TEST_F(AttributionTest, AFailedIndexWriteIsKeptRetriedAndReported) {
  using store::testing::Fault;
  using store::testing::FaultVfs;
  FaultVfs::Install();  // before the World reopens its files below
  w_.reset();
  SetUp();
  Publish(kPermitGithub);
  std::string root = Root();
  EXPECT_TRUE(w_->svc->IndexHealth().ok());

  FaultVfs::Fail("attribution.db", Fault::kDiskFull);
  auto r = Call(root, "github", "create_issue");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->allowed);
  w_->svc->FlushIndex();  // returns after the failed attempt instead of hanging
  Status health = w_->svc->IndexHealth();
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_NE(health.message().find("rows kept for retry"), std::string::npos) << health.ToString();
  EXPECT_GE(w_->errors.Count("attribution.index_write"), 1u);
  auto missing = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value()) << "the row cannot be on disk yet";
  // The kept row still serves: the agent completes its action, the outcome is recorded.
  auto c = w_->svc->CompleteSync(Outcome(root, r->action_id, "ok", 5));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  w_->svc->FlushIndex();
  EXPECT_FALSE(w_->svc->IndexHealth().ok());

  FaultVfs::Clear();
  w_->svc->FlushIndex();  // cuts the backoff short: the retry writes the kept rows
  EXPECT_TRUE(w_->svc->IndexHealth().ok()) << w_->svc->IndexHealth().ToString();
  auto row = w_->store->GetAction(r->action_id);
  ASSERT_TRUE(row.ok() && *row) << "the kept row was written by the retry";
  EXPECT_EQ((*row)->status, "ok");
  EXPECT_EQ((*row)->outcome_index, static_cast<int64_t>(c->ledger_index));
  EXPECT_EQ((*row)->decision_index, static_cast<int64_t>(r->ledger_index));
}

// Shutting down while the index cannot be written does not hang; what was lost is reported.
TEST_F(AttributionTest, ShutdownWithAFailingIndexReportsWhatItCouldNotWrite) {
  using store::testing::Fault;
  using store::testing::FaultVfs;
  FaultVfs::Install();
  w_.reset();
  SetUp();
  Publish(kPermitGithub);
  std::string root = Root();
  FaultVfs::Fail("attribution.db", Fault::kIoError);
  auto r = Call(root, "github", "list_issues");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  w_->svc.reset();
  FaultVfs::Clear();
  EXPECT_EQ(w_->errors.Count("attribution.index_dropped_at_shutdown"), 1u);
  EXPECT_GE(w_->errors.Count("attribution.index_write"), 1u);
  // The decision itself is in the ledger: the index is derived from it.
  EXPECT_EQ(S(Event(r->ledger_index)["event_id"]), r->action_id);
}

// The same stack on the in-memory stores (store/stores.h, Backend::kMemory): no file is
// written, and a call is decided, recorded with a receipt and indexed as on SQLite.
TEST(AttributionWorld, TheWholeStackRunsOnMemoryStores) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody-attr-memory-" + std::to_string(::getpid()));
  auto w = testkit::World::Create(dir, {}, store::Backend::kMemory);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(
      (*w)->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kDev).ok());
  ASSERT_TRUE((*w)->svc->PublishPolicies(kPermitGithub, "", "admin").ok());
  auto root = (*w)->Root("planner");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  auto r = (*w)->svc->AuthorizeSync(testkit::World::Call(root->token, "github", "create_issue"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->allowed);
  auto leaf = (*w)->ledger->GetEntry(r->ledger_index);
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  auto verifier = ledger::NoteVerifier::FromVerifierKey((*w)->verifier_key);
  EXPECT_TRUE(ledger::VerifyReceipt(*verifier, r->receipt, AsBytes(leaf->data)).ok());
  (*w)->svc->FlushIndex();
  auto row = (*w)->store->GetAction(r->action_id);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->decision, "allow");
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "memory stores write no file";
}

TEST(AttributionStore, WriteActionsIsOneTransactionAndWritesAMissingOutcomeRowWhole) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_attr_store_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = store::OpenAttributionStore(store::StorageOptions::InDirectory(dir.string()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ActionRow a;
  a.action_id = "a1";
  a.decision_index = 4;
  a.sid = "s1";
  a.decision = "allow";
  a.target = "fs/read";
  ActionRow lost = a;  // an outcome whose decision row was never written
  lost.action_id = "a2";
  lost.outcome_index = 9;
  lost.status = "ok";
  ActionRow done = a;
  done.outcome_index = 7;
  done.status = "ok";
  ASSERT_TRUE((*store)->WriteActions({a}, {done, lost}).ok());
  auto r1 = (*store)->GetAction("a1");
  auto r2 = (*store)->GetAction("a2");
  ASSERT_TRUE(r1.ok() && *r1 && r2.ok() && *r2);
  EXPECT_EQ((*r1)->outcome_index, 7);
  EXPECT_EQ((*r1)->status, "ok");
  EXPECT_EQ((*r2)->outcome_index, 9);
  EXPECT_EQ((*r2)->target, "fs/read");
  auto rows = (*store)->ActionsOfSessions({"s1"});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);
  std::filesystem::remove_all(dir);
}

TEST_F(AttributionTest, DeniedCallIsRecordedToo) {
  Publish(kPermitGithub);
  auto r = Call(Root(), "slack", "post_message");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->message, "no permit policy matched");
  json::object e = Event(r->ledger_index);
  EXPECT_EQ(S(e["decision"]), "deny");
  EXPECT_EQ(S(e.at("request").at("target").at("key")), "slack/post_message");
}

// The gateway verifies a call's token when it admits the request; Authorize then uses that
// verification instead of reading the session again, but still checks its own audience.
TEST_F(AttributionTest, ACallersOwnVerificationIsUsedAndItsAudienceStillChecked) {
  Publish(kPermitGithub);
  const std::string token = Root();
  auto va = w_->tokens->VerifyAccessToken(token, "");
  ASSERT_TRUE(va.ok()) << va.status().ToString();
  AuthorizeRequest r = testkit::World::Call("", "github", "create_issue");
  r.verified = &*va;
  auto allowed = w_->svc->AuthorizeSync(r);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_TRUE(allowed->allowed) << "the verification stands in for the (empty) token";
  EXPECT_EQ(allowed->sid, va->session.sid);
  EXPECT_EQ(S(Event(allowed->ledger_index).at("session").at("sid")), va->session.sid);

  r.verified = nullptr;
  EXPECT_EQ(w_->svc->AuthorizeSync(r).status().code(), StatusCode::kUnauthenticated)
      << "without it the token is verified, and an empty one is refused";

  AttributionOptions o;
  o.audience = "https://elsewhere.example";
  Open(o);
  r.verified = &*va;
  auto other = w_->svc->AuthorizeSync(r);
  EXPECT_EQ(other.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(other.status().message().find("audience"), std::string::npos);
}

TEST_F(AttributionTest, NothingPublishedMeansEverythingIsDenied) {
  auto r = Call(Root(), "github", "create_issue");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->allowed);
}

TEST_F(AttributionTest, CallerSuppliedContextCannotOverrideCustodysSessionFacts) {
  Publish(R"(permit(principal, action, resource) when {
               context.session.initiator.id == "mallory" || context.session.depth > 5 };)");
  auto r = Call(Root(), "github", "create_issue", R"({"session":{"depth":9}})",
                R"({"session":{"initiator":{"id":"mallory","verified":true},"depth":9}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->allowed);
  json::object e = Event(r->ledger_index);
  EXPECT_EQ(S(e.at("context").at("session").at("initiator").at("id")), "alice@example.com");
  EXPECT_EQ(S(e.at("context").at("caller").at("session").at("initiator").at("id")), "mallory");
  // The caller's values are reachable, under their own key.
  Publish(R"(permit(principal, action, resource) when {
               context.caller.session.initiator.id == "mallory" };)");
  auto r2 =
      Call(Root(), "github", "create_issue", "{}", R"({"session":{"initiator":{"id":"mallory"}}})");
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->allowed);
}

TEST_F(AttributionTest, SessionScopesBoundWhatPolicyAllows) {
  Publish("permit(principal, action, resource);");
  std::string root = Root();
  std::string worker = Child(root, "worker", "github/list_issues");
  auto ok = Call(worker, "github", "list_issues");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->allowed);
  auto no = Call(worker, "github", "create_issue");
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->allowed);
  EXPECT_EQ(no->reasons, std::vector<std::string>{"custody:scope"});
}

TEST_F(AttributionTest, TripwireContainsTheSessionTreeAndSparesTheSibling) {
  Publish(std::string(kPermitGithub) + R"(
    @id("no-dev-on-prod") @contain("session")
    forbid(principal, action, resource in Server::"prod-db")
      when { context.session.environment == "dev" };)");
  std::string root = Root();
  std::string bad = Child(root, "worker");
  std::string good = Child(root, "worker");
  std::string grandchild = Child(bad, "worker");
  ASSERT_TRUE(Call(bad, "github", "list_issues")->allowed);
  auto trip = Call(bad, "prod-db", "drop_table");
  ASSERT_TRUE(trip.ok()) << trip.status().ToString();
  EXPECT_FALSE(trip->allowed);
  EXPECT_EQ(trip->reasons, std::vector<std::string>{"no-dev-on-prod"});
  EXPECT_EQ(trip->contained, "session " + trip->sid);
  // The very next request of the session, and of its child, is refused and recorded.
  for (const std::string* t : {&bad, &grandchild}) {
    auto after = Call(*t, "github", "list_issues");
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_FALSE(after->allowed);
    EXPECT_TRUE(after->session_revoked);
    EXPECT_EQ(after->reasons, std::vector<std::string>{"custody:session_revoked"});
  }
  auto sibling = Call(good, "github", "list_issues");
  ASSERT_TRUE(sibling.ok());
  EXPECT_TRUE(sibling->allowed);
  // The containment record follows the decision and points at it.
  json::object d = Event(trip->ledger_index);
  EXPECT_EQ(S(d.at("containment").at("tripwire")), "no-dev-on-prod");
  auto rows = w_->store->ContainmentsOf(trip->sid);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].trigger_action, trip->action_id);
  json::object c = Event(static_cast<uint64_t>((*rows)[0].ledger_index));
  EXPECT_EQ(S(c["kind"]), "containment");
  EXPECT_EQ(S(c.at("trigger").at("action_id")), trip->action_id);
  EXPECT_EQ(c.at("revoked_sessions").as_array().size(), 2u);
}

TEST_F(AttributionTest, AgentTripwireOnDenialCountDisablesTheAgent) {
  Publish(R"(@id("ok") permit(principal, action, resource in Server::"github");
    @id("too-many-denials") @contain("agent")
    forbid(principal, action, resource) when { context.counters.denials >= 2 };)");
  std::string root = Root();
  std::string w1 = Child(root, "worker");
  std::string w2 = Child(root, "worker");
  EXPECT_FALSE(Call(w1, "slack", "a")->allowed);
  EXPECT_FALSE(Call(w1, "slack", "b")->allowed);
  auto trip = Call(w1, "github", "list_issues");
  ASSERT_TRUE(trip.ok());
  EXPECT_FALSE(trip->allowed);
  EXPECT_EQ(trip->contained, "agent worker");
  // Every session of the agent is cut off, and it cannot start new ones.
  EXPECT_TRUE(Call(w2, "github", "list_issues")->session_revoked);
  EXPECT_TRUE(w_->tokens->GetAgent("worker")->disabled);
  EXPECT_TRUE(Call(root, "github", "list_issues")->allowed);
}

TEST_F(AttributionTest, CountersFirstUseAndTraceParentReachPolicyAndRecord) {
  Publish(R"(permit(principal, action, resource) when { context.counters.first_use };)");
  std::string root = Root();
  auto first = Call(root, "github", "list_issues");
  ASSERT_TRUE(first->allowed);
  auto second = Call(root, "github", "list_issues");  // no longer the first use
  EXPECT_FALSE(second->allowed);
  json::object e = Event(second->ledger_index);
  EXPECT_EQ(e.at("context").at("counters").at("calls").as_int64(), 1);
  // A call that carries the first call's span as its parent links to it.
  w_->svc->FlushIndex();
  AuthorizeRequest r;
  r.token = root;
  r.target.server = "github";
  r.target.tool = "get_issue";
  r.traceparent = first->traceparent;
  auto child = w_->svc->AuthorizeSync(r);
  ASSERT_TRUE(child.ok());
  json::object ce = Event(child->ledger_index);
  EXPECT_EQ(S(ce.at("parent_event")), first->action_id);
  EXPECT_EQ(S(ce.at("trace").at("trace_id")), ParseTraceParent(first->traceparent)->trace_id);
  EXPECT_NE(child->traceparent, first->traceparent);
  // A child of a decision made a moment ago links to it too, whether or not the indexer has
  // written that decision yet (rows are written in batches, up to kIndexDelay late).
  r.traceparent = child->traceparent;
  auto grandchild = w_->svc->AuthorizeSync(r);
  ASSERT_TRUE(grandchild.ok());
  EXPECT_EQ(S(Event(grandchild->ledger_index).at("parent_event")), child->action_id);
}

TEST_F(AttributionTest, CountersSurviveARestart) {
  Publish(R"(permit(principal, action, resource) when { context.counters.calls < 2 };)");
  std::string root = Root();
  EXPECT_TRUE(Call(root, "github", "a")->allowed);
  EXPECT_TRUE(Call(root, "github", "b")->allowed);
  Open();  // a new service over the same stores
  EXPECT_FALSE(Call(root, "github", "c")->allowed);
}

TEST_F(AttributionTest, RedactedArgumentsModeKeepsTheRestOfTheArguments) {
  AttributionOptions o;
  o.arguments = ArgumentRecording::kRedacted;
  o.redact_fields = {"password"};
  Open(o);
  Publish("permit(principal, action, resource);");
  auto r = Call(Root(), "db", "login", R"({"user":"bob","nested":{"password":"hunter2"}})");
  ASSERT_TRUE(r.ok());
  auto leaf = w_->ledger->GetEntry(r->ledger_index);
  EXPECT_EQ(leaf->data.find("hunter2"), std::string::npos);
  json::object e = Event(r->ledger_index);
  EXPECT_EQ(S(e.at("arguments").at("value").at("user")), "bob");
  EXPECT_EQ(S(e.at("arguments").at("value").at("nested").at("password")), "[redacted]");
}

TEST_F(AttributionTest, EntitiesFileSuppliesGroupsAndResources) {
  Publish(R"(permit(principal in Group::"readers", action == Action::"read",
                    resource in Database::"analytics");)",
          R"([{"uid":{"type":"Group","id":"readers"},"attrs":{},"parents":[]},
              {"uid":{"type":"Agent","id":"planner"},"attrs":{},"parents":[{"type":"Group","id":"readers"}]},
              {"uid":{"type":"Database","id":"analytics"},"attrs":{},"parents":[]},
              {"uid":{"type":"Database","id":"events"},"attrs":{},
               "parents":[{"type":"Database","id":"analytics"}]}])");
  AuthorizeRequest r;
  r.token = Root();
  r.action = "read";
  r.target.type = "Database";
  r.target.id = "events";
  auto ok = w_->svc->AuthorizeSync(r);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->allowed);
  r.target.id = "billing";
  EXPECT_FALSE(w_->svc->AuthorizeSync(r)->allowed);
}

TEST_F(AttributionTest, BadPoliciesAreRefusedAndTheActiveSetStays) {
  Publish(kPermitGithub);
  std::string hash = (*w_->svc->ActivePolicySet())->hash;
  EXPECT_EQ(w_->svc->PublishPolicies("permit(principal, action", "", "a").status().code(),
            StatusCode::kInvalidArgument);
  auto bad = w_->svc->PublishPolicies("@contain(\"session\") permit(principal, action, resource);",
                                      "", "a");
  EXPECT_NE(bad.status().message().find("only allowed on forbid"), std::string::npos)
      << bad.status().ToString();
  EXPECT_FALSE(
      w_->svc->PublishPolicies("@contain(\"world\") forbid(principal, action, resource);", "", "a")
          .ok());
  EXPECT_EQ((*w_->svc->ActivePolicySet())->hash, hash);
  // Republishing the same set is reported, not recorded twice.
  uint64_t size = w_->ledger->Size();
  auto again = w_->svc->PublishPolicies(kPermitGithub, "", "admin");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->hash, hash);
  EXPECT_EQ(w_->ledger->Size(), size);
}

TEST_F(AttributionTest, MalformedRequestsAndTokensAreRefused) {
  Publish(kPermitGithub);
  std::string root = Root();
  EXPECT_EQ(Call(root, "github", "x", "[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(root, "github", "x", "{oops").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(root, "git/hub", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(root, "", "x").status().code(), StatusCode::kInvalidArgument);
  std::string tampered = root;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Call(tampered, "github", "x").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Call("", "github", "x").status().code(), StatusCode::kUnauthenticated);
  AuthorizeRequest r;
  r.token = root;
  r.target.type = "not a type";
  r.target.id = "x";
  EXPECT_EQ(w_->svc->AuthorizeSync(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(AttributionTest, ManualContainmentRevokesAndIsRecorded) {
  Publish(kPermitGithub);
  std::string root = Root();
  std::string child = Child(root, "worker");
  auto sid = w_->tokens->VerifyAccessToken(root, "")->session.sid;
  auto c = w_->svc->Contain("session", sid, "suspicious", "admin-1");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->revoked_sessions.size(), 2u);
  EXPECT_TRUE(Call(child, "github", "x")->session_revoked);
  EXPECT_EQ(w_->svc->Contain("session", "no-such", "x", "a").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(w_->svc->Contain("galaxy", sid, "x", "a").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w_->svc->Contain("session", sid, "", "a").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TraceContext, ParsesOnlyValidTraceparents) {
  auto t = ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->parent_id, "00f067aa0ba902b7");
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    EXPECT_FALSE(ParseTraceParent(bad)) << bad;
  }
}

}  // namespace
}  // namespace custody::attribution
