// The action index is derived from the ledger: what it lost (rows queued at a crash, writes that
// never succeeded) is indexed again at start-up, from the index's high-water mark on; and an
// action the index does not hold is still found, from the ledger.
#include "attribution/reindex.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "ledger/ledger.h"

namespace custody::attribution {
namespace {

constexpr const char* kPolicies = R"(
  @id("github-ok") permit(principal, action == Action::"call_tool", resource in Server::"github");
  @id("no-dev-on-prod") @contain("session")
  forbid(principal, action, resource in Server::"prod-db")
    when { context.session.environment == "dev" };)";

class ReindexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w =
        testkit::World::Create(std::filesystem::temp_directory_path() /
                               ("custody-reindex-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(
        w_->Register("worker", {"github/*", "prod-db/*"}, {}, identity::Environment::kDev).ok());
    ASSERT_TRUE(w_->svc->PublishPolicies(kPolicies, "", "admin").ok());
    auto root = w_->Root();
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = *root;
  }
  AuthorizeResult Call(const std::string& token, const std::string& server,
                       const std::string& tool) {
    auto r = w_->svc->AuthorizeSync(testkit::World::Call(token, server, tool));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AuthorizeResult{};
  }
  Result<CompleteResult> Complete(const std::string& token, const std::string& action_id) {
    CompleteRequest c;
    c.token = token;
    c.action_id = action_id;
    c.status = "ok";
    return w_->svc->CompleteSync(c);
  }
  std::optional<ActionRow> Row(const std::string& action_id) {
    auto r = w_->store->GetAction(action_id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  uint64_t Mark() {
    auto m = w_->store->IndexedSize();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : 0;
  }

  std::unique_ptr<testkit::World> w_;
  testkit::IssuedSession root_;
};

void ExpectSameRow(const ActionRow& got, const ActionRow& want) {
  EXPECT_EQ(got.action_id, want.action_id);
  EXPECT_EQ(got.decision_index, want.decision_index);
  EXPECT_EQ(got.outcome_index, want.outcome_index);
  EXPECT_EQ(got.sid, want.sid);
  EXPECT_EQ(got.root_sid, want.root_sid);
  EXPECT_EQ(got.agent, want.agent);
  EXPECT_EQ(got.initiator, want.initiator);
  EXPECT_EQ(got.action, want.action);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.decision, want.decision);
  EXPECT_EQ(got.trace_id, want.trace_id);
  EXPECT_EQ(got.span_id, want.span_id);
  EXPECT_EQ(got.txn, want.txn);
  // The event's time and the row's are read from the clock a moment apart.
  EXPECT_NEAR(got.time_ms, want.time_ms, 5);
  EXPECT_EQ(got.status, want.status);
}

TEST_F(ReindexTest, StartUpIndexesEveryActionTheIndexLost) {
  auto worker = w_->Child(root_.token, "worker");
  ASSERT_TRUE(worker.ok());
  AuthorizeResult done = Call(root_.token, "github", "create_issue");
  ASSERT_TRUE(Complete(root_.token, done.action_id).ok());
  AuthorizeResult open = Call(root_.token, "github", "list_issues");
  AuthorizeResult denied = Call(root_.token, "jira", "create_ticket");
  AuthorizeResult trip = Call(worker->token, "prod-db", "drop_table");
  ASSERT_TRUE(done.allowed && open.allowed && !denied.allowed && !trip.allowed);
  ASSERT_FALSE(trip.contained.empty());
  w_->svc->FlushIndex();
  std::vector<ActionRow> before;
  for (const auto* r : {&done, &open, &denied, &trip}) {
    auto row = Row(r->action_id);
    ASSERT_TRUE(row) << r->action_id;
    before.push_back(*row);
  }
  // The live indexer moves the mark past what it wrote.
  EXPECT_GT(Mark(), trip.ledger_index);
  auto contained = w_->store->ContainmentsOf(worker->sid);
  ASSERT_TRUE(contained.ok() && contained->size() == 1u);
  const store::ContainmentRow containment = (*contained)[0];

  // A crash took every row (a new, empty index); the ledger has them all.
  ASSERT_TRUE(w_->LoseIndex().ok());
  ASSERT_FALSE(Row(done.action_id));
  ASSERT_TRUE(w_->Reopen().ok());

  for (const ActionRow& want : before) {
    auto got = Row(want.action_id);
    ASSERT_TRUE(got) << want.action_id;
    ExpectSameRow(*got, want);
  }
  contained = w_->store->ContainmentsOf(worker->sid);
  ASSERT_TRUE(contained.ok());
  ASSERT_EQ(contained->size(), 1u);
  EXPECT_EQ((*contained)[0].event_id, containment.event_id);
  EXPECT_EQ((*contained)[0].trigger_action, trip.action_id);
  EXPECT_EQ((*contained)[0].ledger_index, containment.ledger_index);
  EXPECT_EQ((*contained)[0].scope, "session");
  EXPECT_EQ(Mark(), w_->ledger->Size());
  // The session's counters come back with its rows, and the agent completes its open action.
  auto counts = w_->store->CountSession(root_.sid, 0);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->calls, 3);
  EXPECT_EQ(counts->denials, 1);
  auto c = Complete(root_.token, open.action_id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // Completing the one completed before is still refused.
  auto again = Complete(root_.token, done.action_id);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();

  // A second start-up finds nothing more to do, and changes nothing.
  ASSERT_TRUE(w_->Reopen().ok());
  w_->svc->FlushIndex();
  auto open_row = Row(open.action_id);
  ASSERT_TRUE(open_row);
  EXPECT_EQ(open_row->status, "ok");
  EXPECT_EQ(open_row->outcome_index, static_cast<int64_t>(c->ledger_index));
}

TEST_F(ReindexTest, StartUpReadsTheLedgerFromTheMarkOn) {
  AuthorizeResult early = Call(root_.token, "github", "list_issues");
  AuthorizeResult completed_late = Call(root_.token, "github", "create_issue");
  w_->svc->FlushIndex();
  const uint64_t mark = Mark();
  ASSERT_GT(mark, completed_late.ledger_index);
  // After the mark: an outcome of a decision before it, and a new decision.
  ASSERT_TRUE(Complete(root_.token, completed_late.action_id).ok());
  AuthorizeResult late = Call(root_.token, "github", "get_issue");

  // The index is back at the mark: everything after it is gone.
  ASSERT_TRUE(w_->LoseIndex().ok());
  ASSERT_TRUE(w_->store->RaiseIndexedSize(mark).ok());
  ASSERT_TRUE(w_->Reopen().ok());

  // Below the mark nothing is read again (here the rows were lost too, which a mark rules out).
  EXPECT_FALSE(Row(early.action_id));
  auto row = Row(late.action_id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->decision_index, static_cast<int64_t>(late.ledger_index));
  EXPECT_EQ(row->target, "github/get_issue");
  // The outcome's decision is read from the ledger, so its row is written whole.
  row = Row(completed_late.action_id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->decision_index, static_cast<int64_t>(completed_late.ledger_index));
  EXPECT_EQ(row->target, "github/create_issue");
  EXPECT_EQ(row->sid, root_.sid);
  EXPECT_EQ(row->status, "ok");
  EXPECT_GT(row->outcome_index, static_cast<int64_t>(completed_late.ledger_index));
  EXPECT_EQ(Mark(), w_->ledger->Size());
}

TEST_F(ReindexTest, AnActionOnlyInTheLedgerIsFoundAndCompleted) {
  AuthorizeResult r = Call(root_.token, "github", "list_issues");
  ASSERT_TRUE(r.allowed);
  // The row is gone and the mark says there is nothing to re-read: only the ledger knows it.
  ASSERT_TRUE(w_->LoseIndex().ok());
  ASSERT_TRUE(w_->store->RaiseIndexedSize(w_->ledger->Size()).ok());
  ASSERT_TRUE(w_->Reopen().ok());
  ASSERT_FALSE(Row(r.action_id));

  auto found = w_->svc->FindAction(r.action_id);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->decision_index, static_cast<int64_t>(r.ledger_index));
  EXPECT_EQ((*found)->sid, root_.sid);
  EXPECT_EQ((*found)->decision, "allow");

  auto c = Complete(root_.token, r.action_id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  w_->svc->FlushIndex();
  auto row = Row(r.action_id);
  ASSERT_TRUE(row);  // written whole by its outcome
  EXPECT_EQ(row->target, "github/list_issues");
  EXPECT_EQ(row->outcome_index, static_cast<int64_t>(c->ledger_index));
  // Another session's token cannot complete it; an id the ledger never saw is still NotFound.
  auto other = w_->Root();
  ASSERT_TRUE(other.ok());
  auto r2 = Call(root_.token, "github", "get_issue");
  auto wrong = Complete(other->token, r2.action_id);
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied) << wrong.status().ToString();
  auto unknown = Complete(root_.token, "0190aaaa-0000-7000-8000-000000000000");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().ToString();
}

TEST_F(ReindexTest, ReindexFromZeroRebuildsAnIndexInPlace) {
  AuthorizeResult a = Call(root_.token, "github", "list_issues");
  ASSERT_TRUE(Complete(root_.token, a.action_id).ok());
  w_->svc->FlushIndex();
  auto before = Row(a.action_id);
  ASSERT_TRUE(before);
  // Running it over a complete index is harmless: the same rows, the outcome kept.
  auto stats = Reindex(w_->ledger->store(), *w_->store, 0);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->decisions, 1u);
  EXPECT_EQ(stats->outcomes, 1u);
  EXPECT_EQ(stats->to, w_->ledger->Size());
  auto after = Row(a.action_id);
  ASSERT_TRUE(after);
  ExpectSameRow(*after, *before);
}

}  // namespace
}  // namespace custody::attribution
