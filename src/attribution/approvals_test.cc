// Person-in-the-loop approvals against real SQLite stores, a real ledger and real tokens: what
// `@approval` means next to plain forbids, tripwires and scopes; the binding to the exact action;
// single use, expiry, separation of duties, cancellation on containment; and the record.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"

namespace custody::attribution {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

// Refunds over 100 need a member of Group::"finance"; bob and alice are in it, eve is not.
constexpr const char* kPolicies = R"(
  @id("pay-ok") permit(principal, action == Action::"call_tool", resource in Server::"pay");
  @id("big-refunds") @approval("finance")
  forbid(principal, action == Action::"call_tool", resource == Tool::"pay/refund")
    when { context.arguments.amount > 100 };)";
constexpr const char* kEntities = R"([
  {"uid": {"type": "Group", "id": "finance"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "finance"}]},
  {"uid": {"type": "User", "id": "alice@example.com"}, "attrs": {},
   "parents": [{"type": "Group", "id": "finance"}]},
  {"uid": {"type": "User", "id": "eve"}, "attrs": {}, "parents": []}
])";

class ApprovalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w =
        testkit::World::Create(std::filesystem::temp_directory_path() /
                               ("custody-approvals-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(w_->Register("worker", {"pay/*"}, {}, identity::Environment::kDev).ok());
  }
  void Open(ApprovalOptions a) {
    AttributionOptions o;
    o.approvals = std::move(a);
    ASSERT_TRUE(w_->Reopen(o).ok());
  }
  void Publish(const std::string& policies = kPolicies, const std::string& entities = kEntities) {
    auto r = w_->svc->PublishPolicies(policies, entities, "admin");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string Root() {
    auto s = w_->Root("planner");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->token : "";
  }
  AuthorizeResult Refund(const std::string& token, int amount, const std::string& tool = "refund") {
    auto r = w_->svc->AuthorizeSync(testkit::World::Call(
        token, "pay", tool, "{\"amount\":" + std::to_string(amount) + ",\"order\":\"o-1\"}"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AuthorizeResult{};
  }
  Result<ApprovalRow> Decide(const std::string& id, bool approve, const std::string& person) {
    return w_->svc->DecideApproval(id, approve, Approver{person, "test:" + person, {}}, "ticket 7");
  }
  json::object Event(uint64_t index) {
    auto leaf = w_->ledger->GetEntry(index);
    EXPECT_TRUE(leaf.ok());
    return json::parse(leaf->data).as_object();
  }
  ApprovalRow Stored(const std::string& id) {
    auto r = w_->store->GetApproval(id);
    EXPECT_TRUE(r.ok() && *r);
    return r.ok() && *r ? **r : ApprovalRow{};
  }
  // The row once decided by the approvals thread (for at most 2 s): it changes state first and
  // takes its event's index just after, so wait for both.
  ApprovalRow StoredOnceDecided(const std::string& id) {
    ApprovalRow row = Stored(id);
    for (int i = 0; i < 100 && (row.state == "pending" || row.decided_index < 0); ++i) {
      std::this_thread::sleep_for(20ms);
      row = Stored(id);
    }
    return row;
  }

  std::unique_ptr<testkit::World> w_;
};

TEST_F(ApprovalsTest, ApprovalAnnotationHoldsOnlyWhatNothingElseForbids) {
  Publish(std::string(kPolicies) + R"(
    @id("no-closed") forbid(principal, action, resource == Tool::"pay/refund")
      when { context.arguments.order == "closed" };
    @id("no-wipe") @contain("session") forbid(principal, action, resource == Tool::"pay/wipe");)");
  std::string t = Root();
  // Small refunds: allowed, no approval asked.
  AuthorizeResult small = Refund(t, 50);
  EXPECT_TRUE(small.allowed);
  EXPECT_FALSE(small.approval_required);
  EXPECT_FALSE(small.approval);
  // Held by the @approval forbid alone: approval_required, with the approval it asks for.
  AuthorizeResult big = Refund(t, 500);
  EXPECT_FALSE(big.allowed);
  ASSERT_TRUE(big.approval_required);
  ASSERT_TRUE(big.approval);
  EXPECT_EQ(big.approval->state, "pending");
  EXPECT_EQ(big.approval->group, R"(Group::"finance")");
  EXPECT_EQ(big.approval->initiator, "alice@example.com");
  EXPECT_EQ(big.reasons, std::vector<std::string>{"big-refunds"});
  json::object e = Event(big.ledger_index);
  EXPECT_EQ(S(e.at("decision")), "approval_required");
  EXPECT_EQ(S(e.at("approval").at("id")), big.approval->id);
  EXPECT_EQ(S(e.at("approval").at("state")), "required");
  // A plain forbid matching too still wins: a deny, no approval.
  auto closed = w_->svc->AuthorizeSync(
      testkit::World::Call(t, "pay", "refund", R"({"amount":500,"order":"closed"})"));
  ASSERT_TRUE(closed.ok());
  EXPECT_FALSE(closed->allowed);
  EXPECT_FALSE(closed->approval_required);
  EXPECT_EQ(S(Event(closed->ledger_index).at("decision")), "deny");
  // No permit: a deny, not an approval.
  AuthorizeResult elsewhere =
      w_->svc->AuthorizeSync(testkit::World::Call(t, "other", "refund", R"({"amount":500})"))
          .value();
  EXPECT_FALSE(elsewhere.allowed);
  EXPECT_FALSE(elsewhere.approval_required);
  // A tripwire still contains.
  AuthorizeResult wipe = Refund(t, 1, "wipe");
  EXPECT_FALSE(wipe.approval_required);
  EXPECT_FALSE(wipe.contained.empty());
}

TEST_F(ApprovalsTest, SessionScopesBoundWhatAnApprovalCanAllow) {
  Publish(R"(@id("all") permit(principal, action, resource);
    @id("big") @approval("finance") forbid(principal, action, resource == Tool::"github/merge");)");
  auto root = w_->Root("planner");
  ASSERT_TRUE(root.ok());
  auto child = w_->Child(root->token, "worker");  // granted pay/* only
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  auto r = w_->svc->AuthorizeSync(testkit::World::Call(child->token, "github", "merge", "{}"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->allowed);
  EXPECT_FALSE(r->approval_required);  // no approval could make it allowed
}

TEST_F(ApprovalsTest, PublishingRefusesApprovalOnPermitOrTripwireAndMalformedGroups) {
  for (const char* bad : {R"(@approval("finance") permit(principal, action, resource);)",
                          R"(@approval("finance") @contain("session")
                             forbid(principal, action, resource);)",
                          R"(@approval("") forbid(principal, action, resource);)",
                          R"(@approval("Group::\"fin") forbid(principal, action, resource);)",
                          R"(@approval("9x::\"fin\"") forbid(principal, action, resource);)"}) {
    auto r = w_->svc->PublishPolicies(bad, "", "admin");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto ok = w_->svc->PublishPolicies(
      R"(@approval("Team::\"sre\"") forbid(principal, action, resource);)", "", "admin");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST_F(ApprovalsTest, AnApprovalAllowsTheExactActionOnceAndTheRecordCitesIt) {
  Publish();
  std::string t = Root();
  AuthorizeResult asked = Refund(t, 500);
  ASSERT_TRUE(asked.approval_required);
  const std::string id = asked.approval->id;
  // Asking again for the same action while it is pending names the same approval.
  EXPECT_EQ(Refund(t, 500).approval->id, id);
  // Changed arguments are another action: another approval.
  AuthorizeResult other = Refund(t, 501);
  ASSERT_TRUE(other.approval_required);
  EXPECT_NE(other.approval->id, id);
  EXPECT_NE(other.approval->digest, asked.approval->digest);

  auto approved = Decide(id, true, "bob");
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(approved->state, "approved");
  EXPECT_EQ(approved->approver, "bob");
  ASSERT_GE(approved->decided_index, 0);
  json::object a = Event(static_cast<uint64_t>(approved->decided_index));
  EXPECT_EQ(S(a.at("kind")), "approval.approve");
  EXPECT_EQ(S(a.at("by").at("person")), "bob");
  EXPECT_EQ(S(a.at("reason")), "ticket 7");
  EXPECT_EQ(S(a.at("approval").at("digest")), asked.approval->digest);
  EXPECT_EQ(S(a.at("target").at("session")), asked.sid);
  // Deciding it twice is refused.
  EXPECT_EQ(Decide(id, false, "bob").status().code(), StatusCode::kFailedPrecondition);
  // The other action's approval does not cover this one, nor this one the other.
  EXPECT_TRUE(Refund(t, 501).approval_required);

  AuthorizeResult run = Refund(t, 500);
  EXPECT_TRUE(run.allowed);
  ASSERT_TRUE(run.approval);
  EXPECT_EQ(run.approval->id, id);
  EXPECT_EQ(run.reasons, std::vector<std::string>{"pay-ok"});
  json::object d = Event(run.ledger_index);
  EXPECT_EQ(S(d.at("decision")), "allow");
  EXPECT_EQ(S(d.at("approval").at("state")), "used");
  EXPECT_EQ(S(d.at("approval").at("approver")), "bob");
  EXPECT_EQ(d.at("approval").at("approval_index").as_int64(), approved->decided_index);
  EXPECT_EQ(Stored(id).state, "used");
  EXPECT_EQ(Stored(id).used_by, run.action_id);
  // Single use: the same action again needs a new approval.
  AuthorizeResult again = Refund(t, 500);
  ASSERT_TRUE(again.approval_required);
  EXPECT_NE(again.approval->id, id);
}

TEST_F(ApprovalsTest, ReusableApprovalsAllowUntilTheyExpire) {
  ApprovalOptions o;
  o.single_use = false;
  o.ttl = 300ms;
  Open(o);
  Publish();
  std::string t = Root();
  const std::string id = Refund(t, 500).approval->id;
  ASSERT_TRUE(Decide(id, true, "bob").ok());
  EXPECT_TRUE(Refund(t, 500).allowed);
  EXPECT_TRUE(Refund(t, 500).allowed);
  EXPECT_EQ(Stored(id).uses, 2);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(Refund(t, 500).approval_required);
  w_->svc->ExpireApprovals();
  ApprovalRow expired = Stored(id);
  EXPECT_EQ(expired.state, "expired");
  EXPECT_EQ(expired.reason, "not used in time");
}

TEST_F(ApprovalsTest, OnlyAMemberWhoDidNotStartTheSessionMayApprove) {
  Publish();
  std::string t = Root();  // started by alice@example.com
  const std::string id = Refund(t, 500).approval->id;
  auto eve = Decide(id, true, "eve");
  EXPECT_EQ(eve.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(eve.status().message().find("not a member of Group::\"finance\""), std::string::npos);
  auto nobody = Decide(id, true, "mallory");  // no entity at all
  EXPECT_EQ(nobody.status().code(), StatusCode::kPermissionDenied);
  auto self = Decide(id, true, "alice@example.com");
  EXPECT_EQ(self.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(self.status().message().find("separation of duties"), std::string::npos);
  // A group the IdP asserted counts as membership.
  auto claimed =
      w_->svc->DecideApproval(id, false, Approver{"carol", "oidc:test", {"finance"}}, "not today");
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  EXPECT_EQ(claimed->state, "denied");
  EXPECT_EQ(S(Event(static_cast<uint64_t>(claimed->decided_index)).at("kind")), "approval.deny");
  // Denied: the action is still held (a new approval is asked for).
  AuthorizeResult after = Refund(t, 500);
  EXPECT_FALSE(after.allowed);
  EXPECT_NE(after.approval->id, id);
}

// Approver groups are parsed once per published set; one that only an older set named (the
// approval was asked before a republish) is still understood.
TEST_F(ApprovalsTest, AnApprovalAskedBeforeARepublishIsDecidedByItsGroup) {
  Publish();
  std::string t = Root();
  const std::string id = Refund(t, 500).approval->id;
  Publish(
      R"(@id("pay-ok") permit(principal, action == Action::"call_tool", resource in Server::"pay");
    @id("audited") @approval("audit") forbid(principal, action, resource == Tool::"pay/wipe");)",
      kEntities);
  auto eve = Decide(id, true, "eve");
  EXPECT_EQ(eve.status().code(), StatusCode::kPermissionDenied);
  auto bob = Decide(id, true, "bob");
  ASSERT_TRUE(bob.ok()) << bob.status().ToString();
  EXPECT_EQ(bob->state, "approved");
}

TEST_F(ApprovalsTest, SelfApprovalWhenAllowed) {
  ApprovalOptions o;
  o.allow_self_approval = true;
  Open(o);
  Publish();
  std::string t = Root();
  const std::string id = Refund(t, 500).approval->id;
  EXPECT_TRUE(Decide(id, true, "alice@example.com").ok());
}

TEST_F(ApprovalsTest, APendingApprovalExpiresAndItsExpiryIsRecorded) {
  ApprovalOptions o;
  o.request_ttl = 200ms;
  Open(o);
  Publish();
  std::string t = Root();
  const std::string id = Refund(t, 500).approval->id;
  std::this_thread::sleep_for(300ms);
  auto late = Decide(id, true, "bob");
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("expired"), std::string::npos);
  // The approvals thread may be expiring it at this moment.
  ApprovalRow row = StoredOnceDecided(id);
  EXPECT_EQ(row.state, "expired");
  ASSERT_GE(row.decided_index, 0);
  EXPECT_EQ(S(Event(static_cast<uint64_t>(row.decided_index)).at("kind")), "approval.expire");
  // The same action asks anew.
  EXPECT_NE(Refund(t, 500).approval->id, id);
}

// More approvals fall due at once than one query of the store answers: one pass expires them
// all (it once listed the first 1,000 open ones and left the rest for later ticks, if ever).
TEST_F(ApprovalsTest, EveryApprovalDueExpiresInOnePass) {
  Publish();
  const int64_t now_ms = UnixMillis(w_->clock.Now());
  constexpr int kDue = 1001;
  for (int i = 0; i < kDue; ++i) {
    ApprovalRow r;
    r.id = "due-" + std::to_string(10000 + i);  // "due-10000" is the oldest
    r.digest = "sha256:" + std::to_string(i);
    r.state = i % 2 == 0 ? "pending" : "approved";
    r.sid = "s-" + std::to_string(i);
    r.root_sid = r.sid;
    r.agent = "planner";
    r.action = "call_tool";
    r.target = "pay/refund";
    r.group = "Group::\"finance\"";
    r.policies = "big-refunds";
    r.requested_ms = now_ms - 100000 + i;
    r.expires_ms = now_ms - 1000 + i % 7;
    ASSERT_TRUE(w_->store->InsertApproval(r).ok());
  }
  ApprovalRow later;
  later.id = "not-yet";
  later.digest = "sha256:later";
  later.state = "pending";
  later.sid = "s-later";
  later.group = "Group::\"finance\"";
  later.requested_ms = now_ms;
  later.expires_ms = now_ms + 3600000;
  ASSERT_TRUE(w_->store->InsertApproval(later).ok());

  w_->svc->ExpireApprovals();
  auto open = w_->store->ListApprovals({"pending", "approved"}, 5000);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].id, "not-yet");
  EXPECT_EQ(Stored("due-10000").state, "expired");
  EXPECT_EQ(Stored("due-10000").reason, "not decided in time");
  EXPECT_EQ(Stored("due-10001").reason, "not used in time");
  auto expired = w_->store->ListApprovals({"expired"}, 5000);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->size(), static_cast<size_t>(kDue));
}

TEST_F(ApprovalsTest, ContainmentCancelsTheSessionsApprovals) {
  Publish();
  std::string t = Root();
  AuthorizeResult asked = Refund(t, 500);
  const std::string id = asked.approval->id;
  ASSERT_TRUE(w_->svc->Contain("session", asked.sid, "incident 12", "admin:test").ok());
  // The approvals thread cancels it (the revocation listener only queues).
  ApprovalRow row = StoredOnceDecided(id);
  EXPECT_EQ(row.state, "cancelled");
  EXPECT_EQ(row.reason, "session revoked");
  ASSERT_GE(row.decided_index, 0);
  EXPECT_EQ(S(Event(static_cast<uint64_t>(row.decided_index)).at("kind")), "approval.cancel");
  auto late = Decide(id, true, "bob");
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
}

// The gateway lists what a session may call by the dry run: what an approval can allow is listed,
// what a plain forbid denies is not.
TEST_F(ApprovalsTest, TheDryRunCountsWhatAnApprovalCanAllow) {
  Publish(R"(@id("pay-ok") permit(principal, action, resource in Server::"pay");
    @id("refunds") @approval("finance") forbid(principal, action, resource == Tool::"pay/refund");
    @id("no-wipe") forbid(principal, action, resource == Tool::"pay/wipe");)",
          kEntities);
  auto root = w_->Root("planner");
  ASSERT_TRUE(root.ok());
  auto session = w_->tokens->GetSession(root->sid);
  ASSERT_TRUE(session.ok());
  auto refund = w_->svc->WouldAllow(*session, "call_tool", Target{"pay", "refund", "", ""});
  ASSERT_TRUE(refund.ok());
  EXPECT_TRUE(*refund);
  auto wipe = w_->svc->WouldAllow(*session, "call_tool", Target{"pay", "wipe", "", ""});
  ASSERT_TRUE(wipe.ok());
  EXPECT_FALSE(*wipe);
}

TEST_F(ApprovalsTest, UnknownApprovalIsNotFound) {
  EXPECT_EQ(Decide("0190aaaa-0000-7000-8000-000000000000", true, "bob").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Decide("x", true, "").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace custody::attribution
