// Several nodes, one ledger: Ledger instances on separate PgLedgerStore connections to one
// database (what several `custody serve` processes are), appending at the same time. Checked
// with the independent checks: every receipt offline, the whole store with VerifyLedger, and
// consistency proofs between checkpoints that different nodes signed.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "crypto/ed25519.h"
#include "ledger/checkpoint.h"
#include "ledger/ledger.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "ledger/verifier.h"
#include "store/postgres/pg_ledger_store.h"
#include "store/testing/pg_cluster.h"

namespace custody::store::testing {
namespace {

constexpr const char* kOrigin = "custody.test/nodes";

crypto::Ed25519PrivateKey Key() {
  std::array<uint8_t, 32> seed{};
  seed.fill(7);  // every node holds the same key
  return std::move(*crypto::Ed25519PrivateKey::FromSeed(seed));
}

ledger::NoteVerifier Verifier() {
  return ledger::NoteVerifier::FromPublicKey(kOrigin, Key().public_key());
}

std::unique_ptr<ledger::Ledger> OpenNode(const std::string& url) {
  auto store = PgLedgerStore::Open(url);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  ledger::LedgerOptions o;
  o.origin = kOrigin;
  o.max_batch = 64;
  auto l = ledger::Ledger::Open(std::move(*store), Key(), o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(*l) : nullptr;
}

struct Appended {
  std::string event;
  ledger::AppendResult result;
};

TEST(SharedLedgerTest, ThreeNodesAppendingAtOnceMakeOneLogWithoutGapsOrForks) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto db = (*cluster)->NewDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  std::vector<std::unique_ptr<ledger::Ledger>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(OpenNode(*db));
    ASSERT_NE(nodes.back(), nullptr);
  }

  // 3 nodes x 3 threads x 150 appends, each thread waiting for its receipts in small groups so
  // that batches from different nodes interleave.
  constexpr int kThreads = 3, kPerThread = 150;
  std::vector<std::vector<Appended>> got(nodes.size() * kThreads);
  std::vector<std::thread> threads;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, n, t] {
        auto& out = got[n * kThreads + static_cast<size_t>(t)];
        for (int i = 0; i < kPerThread; i += 5) {
          std::vector<std::future<Result<ledger::AppendResult>>> pending;
          std::vector<std::string> events;
          for (int k = i; k < i + 5; ++k) {
            // Keys in JCS order, so these are the leaf's bytes.
            std::string ev = "{\"i\":" + std::to_string(k) + ",\"node\":" + std::to_string(n) +
                             ",\"t\":" + std::to_string(t) + "}";
            auto p = std::make_shared<std::promise<Result<ledger::AppendResult>>>();
            pending.push_back(p->get_future());
            events.push_back(ev);
            ASSERT_TRUE(
                nodes[n]
                    ->AppendAsync(
                        ev, {}, [p](Result<ledger::AppendResult> r) { p->set_value(std::move(r)); })
                    .ok());
          }
          for (size_t k = 0; k < pending.size(); ++k) {
            auto r = pending[k].get();
            ASSERT_TRUE(r.ok()) << r.status().ToString();
            out.push_back(Appended{events[k], std::move(*r)});
          }
        }
      });
    }
  }
  for (auto& th : threads) th.join();

  const uint64_t total = nodes.size() * kThreads * kPerThread;
  ledger::NoteVerifier verifier = Verifier();
  std::set<uint64_t> indexes;
  std::vector<ledger::Checkpoint> signed_by_nodes;
  for (size_t g = 0; g < got.size(); ++g) {
    ASSERT_EQ(got[g].size(), static_cast<size_t>(kPerThread));
    for (const Appended& a : got[g]) {
      EXPECT_TRUE(indexes.insert(a.result.index).second) << "index given twice: " << a.result.index;
      std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(a.event.data()),
                                     a.event.size());
      Status st = ledger::VerifyReceipt(verifier, a.result.receipt, bytes, kOrigin);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    auto receipt = ledger::ParseReceipt(got[g].back().result.receipt);
    ASSERT_TRUE(receipt.ok());
    auto cp = ledger::OpenCheckpoint(verifier, receipt->signed_checkpoint, kOrigin);
    ASSERT_TRUE(cp.ok()) << cp.status().ToString();
    signed_by_nodes.push_back(*cp);
  }
  // No gaps: the indexes are exactly 0..total-1.
  ASSERT_EQ(indexes.size(), total);
  EXPECT_EQ(*indexes.begin(), 0u);
  EXPECT_EQ(*indexes.rbegin(), total - 1);

  // Every node serves the same latest checkpoint, the one that covers everything.
  std::string latest;
  for (auto& node : nodes) {
    auto cp = node->LatestCheckpoint();
    ASSERT_TRUE(cp.ok()) << cp.status().ToString();
    EXPECT_EQ(cp->size, total);
    if (latest.empty()) latest = cp->note;
    EXPECT_EQ(cp->note, latest);
    EXPECT_EQ(node->Size(), total);
  }
  auto final_cp = ledger::OpenCheckpoint(verifier, latest, kOrigin);
  ASSERT_TRUE(final_cp.ok());

  // No forks: any checkpoint any node signed is consistent with the final one, by a proof any
  // node builds (here, a node other than the one whose thread got the receipt).
  for (size_t g = 0; g < signed_by_nodes.size(); ++g) {
    const ledger::Checkpoint& older = signed_by_nodes[g];
    auto& prover = nodes[(g / kThreads + 1) % nodes.size()];
    auto proof = prover->ConsistencyProof(older.size, final_cp->size);
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    Status st =
        ledger::VerifyConsistency(older.size, final_cp->size, *proof, older.root, final_cp->root);
    EXPECT_TRUE(st.ok()) << "checkpoint at " << older.size << ": " << st.ToString();
  }
  // A receipt for any entry from any node, whoever appended it.
  auto receipt = nodes[2]->ReceiptFor(0);
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();

  // The whole store, checked independently (every leaf, tile and checkpoint).
  for (auto& node : nodes) node->Close();
  auto store = PgLedgerStore::Open(*db, PgLedgerStore::OpenOptions{.read_only = true});
  ASSERT_TRUE(store.ok());
  auto report = ledger::VerifyLedger(**store, verifier, kOrigin);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->leaves, total);
  EXPECT_EQ(report->root, final_cp->root);
}

TEST(SharedLedgerTest, ANodeThatOnlyReadsServesWhatOthersAppended) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto db = (*cluster)->NewDatabase();
  ASSERT_TRUE(db.ok());
  auto writer = OpenNode(*db);
  auto reader = OpenNode(*db);
  ASSERT_TRUE(writer && reader);
  EXPECT_EQ(reader->LatestCheckpoint().status().code(), StatusCode::kFailedPrecondition);
  // More than a tile's width, so the reader's catch-up crosses a full tile.
  for (int i = 0; i < 300; ++i) {
    auto r = writer->Append("{\"i\":" + std::to_string(i) + "}");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto cp = reader->LatestCheckpoint();
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(cp->size, 300u);
  EXPECT_EQ(cp->note, writer->LatestCheckpoint()->note);
  auto receipt = reader->ReceiptFor(299);
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  std::string ev = "{\"i\":299}";
  EXPECT_TRUE(ledger::VerifyReceipt(
                  Verifier(), *receipt,
                  std::span(reinterpret_cast<const uint8_t*>(ev.data()), ev.size()), kOrigin)
                  .ok());
  // The reader appends after everything the writer appended.
  auto mine = reader->Append("{\"from\":\"reader\"}");
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_EQ(mine->index, 300u);
  EXPECT_GE(reader->Stats().caught_up, 300u);
}

TEST(SharedLedgerTest, ANodeWithAnotherKeyIsRefusedBeforeItWrites) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok());
  auto db = (*cluster)->NewDatabase();
  ASSERT_TRUE(db.ok());
  auto first = OpenNode(*db);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Append("{\"a\":1}").ok());
  auto store = PgLedgerStore::Open(*db);
  ASSERT_TRUE(store.ok());
  ledger::LedgerOptions o;
  o.origin = kOrigin;
  auto other = ledger::Ledger::Open(std::move(*store), *crypto::Ed25519PrivateKey::Generate(), o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition) << other.status().ToString();
  EXPECT_EQ(first->Size(), 1u);
}

// A node whose view of the log disagrees with what is stored (a fork: here, a checkpoint that
// does not match the stored entries) refuses to build on it and writes nothing.
TEST(SharedLedgerTest, ACheckpointThatDisagreesWithTheEntriesStopsTheNextAppend) {
  auto cluster = PgCluster::Shared();
  ASSERT_TRUE(cluster.ok());
  auto db = (*cluster)->NewDatabase();
  ASSERT_TRUE(db.ok());
  auto a = OpenNode(*db);
  auto b = OpenNode(*db);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Append("{\"a\":1}").ok());
  ASSERT_TRUE(b->Append("{\"b\":1}").ok());  // b is at size 2 now
  ASSERT_TRUE(a->Append("{\"a\":2}").ok());  // size 3, signed by a
  // Someone rewrites the entry at index 2 behind the nodes' backs.
  auto raw = PgDb::Open(*db);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(
      (*raw)
          ->Exec("tamper", "UPDATE ledger_leaves SET leaf_hash = sha256('x'::bytea) WHERE idx = 2")
          .ok());
  auto refused = b->Append("{\"b\":2}");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  auto count = (*raw)->Exec("count", "SELECT count(*) FROM ledger_leaves");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->Int(0, 0), 3);
}

}  // namespace
}  // namespace custody::store::testing
