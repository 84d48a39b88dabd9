// The PostgreSQL backend against a real server: a throwaway cluster (store/testing/pg_cluster.h),
// one fresh database per test. The conformance suites of the interfaces it implements, unchanged,
// and what only PostgreSQL has: connection errors that name no password, schema versions shared
// by several nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "store/postgres/pg_admin_token_store.h"
#include "store/postgres/pg_attribution_store.h"
#include "store/postgres/pg_db.h"
#include "store/postgres/pg_identity_store.h"
#include "store/postgres/pg_ledger_store.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_tool_pin_store.h"
#include "store/testing/admin_token_store_conformance.h"
#include "store/testing/attribution_store_conformance.h"
#include "store/testing/identity_store_conformance.h"
#include "store/testing/ledger_store_conformance.h"
#include "store/testing/pg_cluster.h"
#include "store/testing/tool_pin_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::string> FreshDatabase() {
  ASSIGN_OR_RETURN(PgCluster * cluster, PgCluster::Shared());
  return cluster->NewDatabase();
}

Result<std::unique_ptr<AdminTokenStore>> OpenPostgres(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(std::string url, FreshDatabase());
  ASSIGN_OR_RETURN(auto store, PgAdminTokenStore::Open(url));
  return std::unique_ptr<AdminTokenStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminTokenStoreConformance,
                         ::testing::Values(AdminTokenStoreBackend{"Postgres", OpenPostgres}),
                         BackendName<AdminTokenStore>);

Result<std::unique_ptr<LedgerStore>> OpenPostgresLedger(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(std::string url, FreshDatabase());
  ASSIGN_OR_RETURN(auto store, PgLedgerStore::Open(url));
  return std::unique_ptr<LedgerStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, LedgerStoreConformance,
                         ::testing::Values(LedgerStoreBackend{"Postgres", OpenPostgresLedger}),
                         BackendName<LedgerStore>);

Result<std::unique_ptr<ToolPinStore>> OpenPostgresPins(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(std::string url, FreshDatabase());
  ASSIGN_OR_RETURN(auto store, PgToolPinStore::Open(url));
  return std::unique_ptr<ToolPinStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, ToolPinStoreConformance,
                         ::testing::Values(ToolPinStoreBackend{"Postgres", OpenPostgresPins}),
                         BackendName<ToolPinStore>);

Result<std::unique_ptr<AttributionStore>> OpenPostgresAttribution(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(std::string url, FreshDatabase());
  ASSIGN_OR_RETURN(auto store, PgAttributionStore::Open(url));
  return std::unique_ptr<AttributionStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, AttributionStoreConformance,
                         ::testing::Values(AttributionStoreBackend{"Postgres",
                                                                   OpenPostgresAttribution}),
                         BackendName<AttributionStore>);

Result<std::unique_ptr<IdentityStore>> OpenPostgresIdentity(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(std::string url, FreshDatabase());
  ASSIGN_OR_RETURN(auto store, PgIdentityStore::Open(url));
  return std::unique_ptr<IdentityStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, IdentityStoreConformance,
                         ::testing::Values(IdentityStoreBackend{"Postgres", OpenPostgresIdentity}),
                         BackendName<IdentityStore>);

TEST(PgDbTest, RedactDropsThePasswordAndParameters) {
  EXPECT_EQ(PgDb::Redact("postgresql://custody:s3cret@db.example:5432/custody?sslmode=require"),
            "postgresql://custody@db.example:5432/custody");
  EXPECT_EQ(PgDb::Redact("postgresql://db.example/custody?password=s3cret"),
            "postgresql://db.example/custody");
  EXPECT_EQ(PgDb::Redact("host=db password=s3cret"), "(a PostgreSQL connection string)");
}

TEST(PgDbTest, ABadUrlOrAnUnreachableServerIsAClearErrorWithoutThePassword) {
  auto bad = PgDb::Open("host=db password=s3cret");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("s3cret"), std::string::npos) << bad.status().message();

  ASSERT_TRUE(PgCluster::Shared().ok());
  // A port nobody listens on (the cluster's port + 1 is not guaranteed free; port 1 is).
  PgOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  auto down = PgDb::Open("postgresql://custody:s3cret@127.0.0.1:1/custody", o);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(down.status().message().find("127.0.0.1:1/custody"), std::string::npos)
      << down.status().message();
  EXPECT_EQ(down.status().message().find("s3cret"), std::string::npos) << down.status().message();
}

TEST(PgDbTest, UniqueViolationIsAlreadyExistsAndStatementsTakeParametersNotText) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto db = PgDb::Open(*url);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("create", "CREATE TABLE t(k TEXT PRIMARY KEY, v BYTEA)").ok());
  const std::vector<uint8_t> bytes = {0, 1, 0xff, '\'', 0};
  ASSERT_TRUE((*db)
                  ->Exec("insert", "INSERT INTO t VALUES($1, $2)",
                         {PgText("a'); DROP TABLE t; --"), PgBytes(bytes)})
                  .ok());
  auto again = (*db)->Exec("insert", "INSERT INTO t VALUES($1, $2)",
                           {PgText("a'); DROP TABLE t; --"), PgBytes(bytes)});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().message();
  auto rows = (*db)->Exec("select", "SELECT k, v FROM t");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1);
  EXPECT_EQ(rows->Text(0, 0), "a'); DROP TABLE t; --");
  EXPECT_EQ(rows->Bytes(0, 1), bytes);
  // A failed transaction leaves nothing behind.
  Status st = (*db)->Transact("two inserts", [](PgConn& c) -> Status {
    RETURN_IF_ERROR(c.Exec("insert", "INSERT INTO t VALUES('b', NULL)").status());
    return c.Exec("insert", "INSERT INTO t VALUES('a''); DROP TABLE t; --', NULL)").status();
  });
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ((*db)->Exec("count", "SELECT count(*) FROM t")->Int(0, 0), 1);
}

// Statements are prepared once per connection; a statement that could not be prepared (its
// transaction had failed) is prepared on its next use, and a rollback keeps what was prepared.
TEST(PgDbTest, StatementsArePreparedOncePerConnectionAndSurviveRollbacks) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  for (bool prepare : {true, false}) {
    PgOptions o;
    o.pool_size = 1;  // one connection: every call below runs on it
    o.prepare_statements = prepare;
    auto db = PgDb::Open(*url, o);
    ASSERT_TRUE(db.ok());
    auto prepared = [&] {
      auto n = (*db)->Exec("count", "SELECT count(*) FROM pg_prepared_statements");
      return n.ok() ? n->Int(0, 0) : -1;
    };
    for (int i = 0; i < 3; ++i) {
      auto r = (*db)->Exec("add", "SELECT $1::bigint + 1", {PgInt(i)});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->Int(0, 0), i + 1);
    }
    // The add and the count itself.
    EXPECT_EQ(prepared(), prepare ? 2 : 0);
    // A transaction fails; a statement first seen after the failure cannot be prepared then.
    Status st = (*db)->Transact("fails", [](PgConn& c) -> Status {
      EXPECT_TRUE(c.Exec("add", "SELECT $1::bigint + 1", {PgInt(1)}).ok());
      EXPECT_FALSE(c.Exec("bad", "SELECT 1/0").ok());
      return c.Exec("new", "SELECT $1::bigint * 2", {PgInt(21)}).status();
    });
    EXPECT_FALSE(st.ok());
    auto doubled = (*db)->Exec("new", "SELECT $1::bigint * 2", {PgInt(21)});
    ASSERT_TRUE(doubled.ok()) << doubled.status().ToString();
    EXPECT_EQ(doubled->Int(0, 0), 42);
    auto again = (*db)->Exec("add", "SELECT $1::bigint + 1", {PgInt(41)});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->Int(0, 0), 42);
    // add, count, BEGIN, "SELECT 1/0", ROLLBACK and new (prepared after the rollback).
    EXPECT_EQ(prepared(), prepare ? 6 : 0);
  }
}

// A transaction's last statement sent with its COMMIT (one round trip): committed when it
// succeeds, prepared or not; when it fails, its own error, nothing kept, and the connection (the
// pool's only one) goes on.
TEST(PgDbTest, ALastStatementSentWithCommitCommitsOrLeavesNothing) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  for (bool prepare : {true, false}) {
    PgOptions o;
    o.pool_size = 1;
    o.prepare_statements = prepare;
    auto db = PgDb::Open(*url, o);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("reset", "DROP TABLE IF EXISTS t").ok());
    ASSERT_TRUE((*db)->Exec("create", "CREATE TABLE t(k TEXT PRIMARY KEY)").ok());
    auto insert_two = [&](const std::string& a, const std::string& b) {
      return (*db)->Transact("two inserts", [&](PgConn& c) -> Status {
        RETURN_IF_ERROR(c.Exec("insert", "INSERT INTO t VALUES($1)", {PgText(a)}).status());
        const PgParam last[] = {PgText(b)};
        return c.ExecThenCommit("insert", "INSERT INTO t VALUES($1)", last);
      });
    };
    ASSERT_TRUE(insert_two("a", "b").ok());
    Status clash = insert_two("c", "a");
    EXPECT_EQ(clash.code(), StatusCode::kAlreadyExists) << clash.message();
    auto rows = (*db)->Exec("read", "SELECT string_agg(k, ',' ORDER BY k) FROM t");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString() << " (the connection after a failure)";
    EXPECT_EQ(rows->Text(0, 0), "a,b") << "the first committed, nothing of the second";
    ASSERT_TRUE(insert_two("c", "d").ok());
    EXPECT_EQ((*db)->Exec("count", "SELECT count(*) FROM t")->Int(0, 0), 4);
  }
}

TEST(PgDbTest, ANodeWhoseClockIsSkewedFromTheDatabaseIsRefused) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto db = PgDb::Open(*url);
  ASSERT_TRUE(db.ok());
  SystemClock now;
  auto skew = (*db)->ClockSkewMillis(now);
  ASSERT_TRUE(skew.ok()) << skew.status().ToString();
  EXPECT_LT(std::abs(*skew), 500) << "the same machine's clocks";
  EXPECT_TRUE((*db)->CheckClockSkew(now, std::chrono::milliseconds(2000)).ok());
  // Ten seconds ahead, then behind: refused, saying which way and by how much.
  FakeClock ahead(now.Now() + std::chrono::seconds(10));
  Status st = (*db)->CheckClockSkew(ahead, std::chrono::milliseconds(2000));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("ahead of the database server's"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("storage.max_clock_skew_ms is 2000"), std::string::npos)
      << st.ToString();
  FakeClock behind(now.Now() - std::chrono::seconds(10));
  st = (*db)->CheckClockSkew(behind, std::chrono::milliseconds(2000));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("behind the database server's"), std::string::npos) << st.ToString();
  // A wider allowance takes it.
  EXPECT_TRUE((*db)->CheckClockSkew(behind, std::chrono::milliseconds(60000)).ok());
}

TEST(PgLedgerStoreTest, TwoWritersAtTheSameIndexCannotBothCommit) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto a = PgLedgerStore::Open(*url);
  auto b = PgLedgerStore::Open(*url);  // another node on the same database
  ASSERT_TRUE(a.ok() && b.ok());
  auto batch = [](uint64_t from, uint64_t to, uint8_t salt) {
    LedgerBatch out;
    for (uint64_t i = from; i < to; ++i) {
      StoredLeaf l;
      l.index = i;
      l.data = "{\"node\":" + std::to_string(salt) + "}";
      l.leaf_hash[0] = salt;
      out.leaves.push_back(l);
    }
    out.checkpoint.size = to;
    out.checkpoint.root[0] = salt;
    out.checkpoint.note = "n\n";
    return out;
  };
  ASSERT_TRUE((*a)->CommitBatch(batch(0, 3, 1)).ok());
  // b believes the ledger is empty and appends at 0: refused, and none of its rows is kept.
  Status second = (*b)->CommitBatch(batch(0, 2, 2));
  EXPECT_EQ(second.code(), StatusCode::kAlreadyExists) << second.ToString();
  EXPECT_EQ(*(*b)->LeafCount(), 3u);
  EXPECT_EQ((*b)->GetLeaf(1)->data, "{\"node\":1}");
  EXPECT_EQ((*(*b)->LatestCheckpoint())->size, 3u);
  EXPECT_FALSE((*(*b)->GetCheckpoint(2)).has_value());
  // Appending after what is there works from either node.
  EXPECT_TRUE((*b)->CommitBatch(batch(3, 4, 2)).ok());
  EXPECT_EQ(*(*a)->LeafCount(), 4u);
}

TEST(PgToolPinStoreTest, NodesSeeingADefinitionFirstAtOncePinItOnce) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  std::vector<std::unique_ptr<PgToolPinStore>> nodes;
  for (int i = 0; i < 4; ++i) {
    auto s = PgToolPinStore::Open(*url);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    nodes.push_back(std::move(*s));
  }
  // Each node sees its own hash first: exactly one is pinned, the others are changes of it.
  std::vector<Result<PinObservation>> seen(nodes.size(), Result<PinObservation>(PinObservation{}));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      seen[i] = nodes[i]->Observe(PinKind::kTool, "files", "read", "h" + std::to_string(i), 1);
    });
  }
  for (auto& t : threads) t.join();
  int first = 0;
  for (auto& o : seen) {
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    first += o->first_seen ? 1 : 0;
  }
  EXPECT_EQ(first, 1);
  auto pins = nodes[0]->List(PinKind::kTool);
  ASSERT_TRUE(pins.ok());
  ASSERT_EQ(pins->size(), 1u);
  // An approval through one node holds at another.
  ASSERT_TRUE(nodes[1]->Approve(PinKind::kTool, "files", "read", (*pins)[0].seen_hash).ok());
  auto again = nodes[2]->Observe(PinKind::kTool, "files", "read", (*pins)[0].seen_hash, 2);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->approved);
}

TEST(PgIdentityStoreTest, NoSessionStaysLiveBelowARevocationMadeAtAnotherNode) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto a = PgIdentityStore::Open(*url);  // the node that revokes
  auto b = PgIdentityStore::Open(*url);  // the node that keeps delegating
  ASSERT_TRUE(a.ok() && b.ok());
  identity::Agent agent;
  agent.name = "worker";
  agent.environment = identity::Environment::kDev;
  agent.max_delegation_depth = 3;
  ASSERT_TRUE((*a)->CreateAgent(agent).ok());
  auto session = [](const std::string& sid, const std::string& parent, int depth) {
    identity::Session x;
    x.sid = sid;
    x.parent_sid = parent;
    x.root_sid = "root";
    x.depth = depth;
    x.agent = "worker";
    x.instance = "spiffe://custody.test/agent/worker/instance/" + sid;
    x.initiator = "alice";
    x.jti = "jti-" + sid;
    x.created_at = 100 + depth;
    x.expires_at = 10000;
    return x;
  };
  ASSERT_TRUE((*a)->CreateSession(session("root", "", 0)).ok());
  // Node b delegates children and grandchildren as fast as it can while node a revokes the tree.
  std::atomic<bool> stop{false};
  std::thread delegating([&] {
    for (int i = 0; i < 400 && !stop; ++i) {
      std::string child = "c" + std::to_string(i);
      if ((*b)->CreateSession(session(child, "root", 1)).ok()) {
        (void)(*b)->CreateSession(session("g" + std::to_string(i), child, 2));
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto revoked = (*a)->RevokeSessionTree("root", "contained", 500);
  stop = true;
  delegating.join();
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  auto tree = (*a)->SessionTree("root");
  ASSERT_TRUE(tree.ok());
  EXPECT_GT(tree->size(), 1u);  // some delegations landed before the revocation
  for (const identity::Session& x : *tree) EXPECT_TRUE(x.revoked) << x.sid << " is still live";
  EXPECT_EQ(revoked->size(), tree->size());
}

// A client assertion used at one node is refused at every other: two nodes on one database
// each try the same jtis at once (and again later); the table's key lets exactly one win.
TEST(PgIdentityStoreTest, AnAssertionJtiUsedAtOneNodeIsRefusedAtAnother) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto a = PgIdentityStore::Open(*url);
  auto b = PgIdentityStore::Open(*url);
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kJtis = 100;
  constexpr int64_t kExp = 9'000'000'000;
  std::vector<Status> at_a(kJtis), at_b(kJtis);
  std::thread node_a([&] {
    for (int i = 0; i < kJtis; ++i) at_a[i] = (*a)->UseAssertionJti("c/" + std::to_string(i), kExp);
  });
  for (int i = 0; i < kJtis; ++i) at_b[i] = (*b)->UseAssertionJti("c/" + std::to_string(i), kExp);
  node_a.join();
  for (int i = 0; i < kJtis; ++i) {
    EXPECT_NE(at_a[i].ok(), at_b[i].ok()) << "jti " << i << ": exactly one node wins";
    const Status& lost = at_a[i].ok() ? at_b[i] : at_a[i];
    EXPECT_EQ(lost.code(), StatusCode::kAlreadyExists) << lost.ToString();
  }
  EXPECT_EQ((*a)->UseAssertionJti("c/0", kExp).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ((*b)->UseAssertionJti("c/0", kExp).code(), StatusCode::kAlreadyExists);
}

TEST(PgSchemaTest, NodesStartingAtOnceApplyEachStepOnceAndANewerSchemaIsRefused) {
  auto url = FreshDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  static constexpr const char* kSteps[] = {
      "CREATE TABLE counter(n BIGINT NOT NULL)",
      "INSERT INTO counter VALUES(1)",
      "UPDATE counter SET n = n + 1",
  };
  std::vector<std::thread> nodes;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    nodes.emplace_back([&, i] {
      auto db = PgDb::Open(*url);
      results[i] = db.ok() ? ApplyPgSchema(**db, "counter", kSteps) : db.status();
    });
  }
  for (auto& t : nodes) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  auto db = PgDb::Open(*url);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*PgSchemaVersion(**db, "counter"), 3);
  EXPECT_EQ((*db)->Exec("read", "SELECT n FROM counter")->Int(0, 0), 2);  // each step once
  // An older binary (two steps) refuses the newer layout rather than writing to it.
  Status older = ApplyPgSchema(**db, "counter", std::span(kSteps, 2));
  EXPECT_EQ(older.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(older.message().find("newer"), std::string::npos) << older.message();
}

}  // namespace
}  // namespace custody::store::testing
