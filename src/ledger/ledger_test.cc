#include "ledger/ledger.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "common/encoding.h"
#include "common/jcs.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "store/stores.h"
#include "store/testing/fault_vfs.h"
#include "store/testing/sqlite_file.h"

namespace custody::ledger {
namespace {

namespace fs = std::filesystem;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("custody-ledger-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto seed = std::vector<uint8_t>(32, 7);
    key_seed_ = seed;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string DbPath() const { return (dir_ / "ledger.db").string(); }

  std::unique_ptr<Ledger> Open(LedgerOptions options = {}) {
    if (options.origin.empty()) options.origin = "test.example/ledger";
    if (!options.on_commit_failed) {
      options.on_commit_failed = [this](const Status&) { ++failures_seen_; };
    }
    auto store = store::OpenLedgerFile(DbPath());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    auto key = crypto::Ed25519PrivateKey::FromSeed(key_seed_);
    auto ledger = Ledger::Open(std::move(*store), std::move(*key), options);
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    return ledger.ok() ? std::move(*ledger) : nullptr;
  }

  static std::string Event(int i) {
    return "{\"kind\":\"action.decision\",\"n\":" + std::to_string(i) +
           ",\"actor\":{\"agent\":\"a\"}}";
  }

  fs::path dir_;
  std::vector<uint8_t> key_seed_;
  std::atomic<int> failures_seen_{0};
};

TEST_F(LedgerTest, ReceiptsVerifyOfflineWithOnlyTheVerifierKey) {
  auto ledger = Open();
  ASSERT_NE(ledger, nullptr);
  auto verifier = NoteVerifier::FromVerifierKey(ledger->VerifierKey());
  ASSERT_TRUE(verifier.ok());
  for (int i = 0; i < 300; ++i) {  // crosses the first 256-wide tile boundary
    auto r = ledger->Append(Event(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->index, static_cast<uint64_t>(i));
    std::string canonical = *CanonicalizeJson(Event(i));
    EXPECT_EQ(r->leaf_hash, HashLeaf(canonical));
    EXPECT_TRUE(VerifyReceipt(*verifier, r->receipt, AsBytes(canonical)).ok()) << i;
    // The receipt does not verify for any other event.
    std::string other = *CanonicalizeJson(Event(i + 1));
    EXPECT_FALSE(VerifyReceipt(*verifier, r->receipt, AsBytes(other)).ok());
  }
  EXPECT_EQ(ledger->Size(), 300u);
}

// The ledger file and its WAL are the owner's alone, whatever the umask (a ledger made with
// `custody ledger append` is not under `custody serve`'s umask).
TEST_F(LedgerTest, TheDatabaseAndItsWalAreCreatedMode0600) {
  mode_t saved = ::umask(022);
  {
    auto ledger = Open();
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->Append(Event(1), {}).ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st {};
      ASSERT_EQ(::stat((DbPath() + suffix).c_str(), &st), 0) << suffix;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << DbPath() << suffix;
    }
  }
  ::umask(saved);
}

TEST_F(LedgerTest, StoresExactlyTheCanonicalBytes) {
  auto ledger = Open();
  auto r = ledger->Append(R"({ "z": 1.50, "a": [true, null], "m": "\u0041" })");
  ASSERT_TRUE(r.ok());
  auto entry = ledger->GetEntry(r->index);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->data, R"({"a":[true,null],"m":"A","z":1.5})");
  EXPECT_EQ(entry->leaf_hash, HashLeaf(entry->data));
}

TEST_F(LedgerTest, BadJsonIsRejectedAndAppendsNothing) {
  auto ledger = Open();
  ASSERT_TRUE(ledger->Append(Event(0)).ok());
  for (const char* bad : {"{\"a\":", "{\"a\":1,\"a\":2}", "nope", ""}) {
    auto r = ledger->Append(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ledger->Size(), 1u);
  ASSERT_TRUE(ledger->Append(Event(1)).ok());
  EXPECT_EQ(ledger->Size(), 2u);
}

TEST_F(LedgerTest, ConcurrentAppendsAreBatchedAndAllProvable) {
  LedgerOptions options;
  options.max_batch = 512;
  auto ledger = Open(options);
  auto verifier = *NoteVerifier::FromVerifierKey(ledger->VerifierKey());
  constexpr int kThreads = 8, kPerThread = 1000;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> indices;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<AppendResult>>> futures;
      std::vector<std::string> events;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = std::make_shared<std::promise<Result<AppendResult>>>();
        futures.push_back(p->get_future());
        events.push_back(Event(t * kPerThread + i));
        Status st = ledger->AppendAsync(
            events.back(), {}, [p](Result<AppendResult> r) { p->set_value(std::move(r)); });
        if (!st.ok()) failures++;
      }
      for (int i = 0; i < kPerThread; ++i) {
        auto r = futures[i].get();
        if (!r.ok() ||
            !VerifyReceipt(verifier, r->receipt, AsBytes(*CanonicalizeJson(events[i]))).ok()) {
          failures++;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        indices.insert(r->index);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(indices.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*indices.begin(), 0u);
  EXPECT_EQ(*indices.rbegin(), static_cast<uint64_t>(kThreads * kPerThread - 1));
  LedgerStats stats = ledger->Stats();
  EXPECT_EQ(stats.events, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.batches, stats.events);  // group commit really groups
  EXPECT_LE(stats.max_batch_seen, 512u);
}

TEST_F(LedgerTest, MaxDelayFillsBatchesUpToMaxBatch) {
  LedgerOptions options;
  options.max_batch = 10;
  options.max_delay = std::chrono::seconds(5);  // never reached: batches fill first
  auto ledger = Open(options);
  std::vector<std::future<Result<AppendResult>>> futures;
  for (int i = 0; i < 30; ++i) {
    auto p = std::make_shared<std::promise<Result<AppendResult>>>();
    futures.push_back(p->get_future());
    ASSERT_TRUE(
        ledger
            ->AppendAsync(Event(i), {}, [p](Result<AppendResult> r) { p->set_value(std::move(r)); })
            .ok());
  }
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  EXPECT_EQ(ledger->Stats().batches, 3u);
}

TEST_F(LedgerTest, EveryInclusionProofMatchesTheReferenceTree) {
  auto ledger = Open();
  std::vector<Hash> leaves;
  for (int i = 0; i < 600; ++i) {
    auto r = ledger->Append(Event(i));
    ASSERT_TRUE(r.ok());
    leaves.push_back(r->leaf_hash);
  }
  for (uint64_t n : {1ull, 2ull, 3ull, 255ull, 256ull, 257ull, 511ull, 512ull, 513ull, 600ull}) {
    Hash root = RootFromLeafHashes(std::span(leaves).first(n));
    for (uint64_t i = 0; i < n; ++i) {
      auto proof = ledger->InclusionProof(i, n);
      ASSERT_TRUE(proof.ok()) << i << "/" << n;
      EXPECT_TRUE(VerifyInclusion(i, n, leaves[i], *proof, root).ok()) << i << "/" << n;
    }
    for (uint64_t m = 0; m <= n; m += 37) {
      auto proof = ledger->ConsistencyProof(m, n);
      ASSERT_TRUE(proof.ok());
      Hash r1 = RootFromLeafHashes(std::span(leaves).first(m));
      EXPECT_TRUE(VerifyConsistency(m, n, *proof, r1, root).ok()) << m << "->" << n;
    }
  }
  EXPECT_FALSE(ledger->InclusionProof(600, 600).ok());
  EXPECT_FALSE(ledger->InclusionProof(0, 601).ok());
  EXPECT_FALSE(ledger->ConsistencyProof(5, 4).ok());
}

// A commit that fails (a full disk) leaves the ledger exactly at its last durable state, ready
// for the next append once the disk has room again: no entry lost, none duplicated, every
// receipt valid (issue #16: the in-memory tree used to advance before the commit, and the
// rollback then reloaded a size that was never written).
TEST_F(LedgerTest, AFailedCommitLeavesTheLedgerAtItsLastDurableState) {
  using store::testing::Fault;
  using store::testing::FaultVfs;
  FaultVfs::Install();
  auto ledger = Open();
  ASSERT_NE(ledger, nullptr);
  auto verifier = *NoteVerifier::FromVerifierKey(ledger->VerifierKey());
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(ledger->Append(Event(i)).ok());  // a full tile
  const std::string before = ledger->LatestCheckpoint()->note;

  EXPECT_TRUE(ledger->CommitHealth().ok());
  FaultVfs::Fail("ledger.db", Fault::kDiskFull);
  for (int i = 0; i < 3; ++i) {
    auto refused = ledger->Append(Event(1000 + i));
    ASSERT_FALSE(refused.ok()) << "no receipt for an event that is not durable";
    // The caller hears a clean unavailable: the reason, no file name, no SQLite context.
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(refused.status().message(),
              "the event was not recorded: the ledger cannot commit (database or disk is full)");
  }
  EXPECT_EQ(ledger->Size(), 300u);
  EXPECT_EQ(ledger->LatestCheckpoint()->note, before);
  EXPECT_EQ(failures_seen_, 3);  // each failed commit reached the operator's hook
  // Health says so, and keeps saying so while the store refuses writes.
  Status health = ledger->CommitHealth();
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_EQ(health.message(), "the ledger cannot commit: database or disk is full");
  EXPECT_FALSE(ledger->CommitHealth().ok());
  FaultVfs::Clear();
  // Room again: health recovers without waiting for an append.
  EXPECT_TRUE(ledger->CommitHealth().ok());

  for (int i = 300; i < 310; ++i) {
    auto r = ledger->Append(Event(i));
    ASSERT_TRUE(r.ok()) << "append after the disk has room again: " << r.status().ToString();
    EXPECT_EQ(r->index, static_cast<uint64_t>(i));
    EXPECT_TRUE(VerifyReceipt(verifier, r->receipt, AsBytes(*CanonicalizeJson(Event(i)))).ok());
  }
  EXPECT_EQ(ledger->Size(), 310u);
  auto old_receipt = ledger->ReceiptFor(299);
  ASSERT_TRUE(old_receipt.ok()) << old_receipt.status().ToString();
  EXPECT_TRUE(VerifyReceipt(verifier, *old_receipt, AsBytes(*CanonicalizeJson(Event(299)))).ok());
  ledger.reset();
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->Size(), 310u);
}

TEST_F(LedgerTest, ReopenResumesAndOldReceiptsStayValid) {
  std::vector<std::pair<std::string, std::string>> receipts;  // (canonical event, receipt)
  std::string vkey;
  std::string old_checkpoint;
  {
    auto ledger = Open();
    vkey = ledger->VerifierKey();
    for (int i = 0; i < 700; ++i) {
      auto r = ledger->Append(Event(i));
      ASSERT_TRUE(r.ok());
      receipts.emplace_back(*CanonicalizeJson(Event(i)), r->receipt);
    }
    old_checkpoint = ledger->LatestCheckpoint()->note;
  }
  auto ledger = Open();
  EXPECT_EQ(ledger->Size(), 700u);
  EXPECT_EQ(ledger->VerifierKey(), vkey);
  for (int i = 700; i < 1000; ++i) ASSERT_TRUE(ledger->Append(Event(i)).ok());
  auto verifier = *NoteVerifier::FromVerifierKey(vkey);
  for (auto& [event, receipt] : receipts) {
    EXPECT_TRUE(VerifyReceipt(verifier, receipt, AsBytes(event)).ok());
  }
  // Fresh receipts for old entries prove against the new checkpoint, which is consistent with
  // the old one.
  auto fresh = ledger->ReceiptFor(5);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(VerifyReceipt(verifier, *fresh, AsBytes(receipts[5].first)).ok());
  auto old_cp = *ParseCheckpointBody(*verifier.Verify(old_checkpoint));
  auto new_cp = *ParseCheckpointBody(*verifier.Verify(ledger->LatestCheckpoint()->note));
  auto proof = ledger->ConsistencyProof(old_cp.size, new_cp.size);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(VerifyConsistency(old_cp.size, new_cp.size, *proof, old_cp.root, new_cp.root).ok());
}

// Only full tiles of level 0 are stored as tile rows; a partial one is read from the leaf
// hashes stored with the leaves (rewriting it on every commit was half the pages written).
TEST_F(LedgerTest, PartialLevelZeroTilesComeFromTheLeaves) {
  auto sql = [this](const std::string& q) {
    auto n = store::testing::QueryIntOnFile(DbPath(), q);
    EXPECT_TRUE(n.ok()) << q << ": " << n.status().ToString();
    return n.ok() ? *n : -1;
  };
  Hash root;
  {
    auto ledger = Open();
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(ledger->Append(Event(i)).ok());
    root = ledger->LatestCheckpoint()->root;
    auto partial = ledger->store().GetTile(0, 1);
    ASSERT_TRUE(partial.ok()) << partial.status().ToString();
    ASSERT_EQ(partial->hashes.size(), 44u);
    for (size_t i = 0; i < 44; ++i) {
      EXPECT_EQ(partial->hashes[i], ledger->GetEntry(256 + i)->leaf_hash);
    }
    EXPECT_EQ(ledger->store().GetTile(0, 0)->hashes.size(), 256u);
    EXPECT_EQ(ledger->store().GetTile(0, 2).status().code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(sql("SELECT count(*) FROM tiles WHERE level = 0"), 1);  // the full tile only
  // A partial row left by an older version is a stale prefix: it is ignored, on reopening and
  // when read.
  ASSERT_TRUE(
      store::testing::ExecOnFile(
          DbPath(), "INSERT OR REPLACE INTO tiles(level, idx, hashes) VALUES(0, 1, zeroblob(320))")
          .ok());
  auto ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->LatestCheckpoint()->root, root);
  EXPECT_EQ(ledger->store().GetTile(0, 1)->hashes.size(), 44u);
  for (int i = 300; i < 600; ++i) ASSERT_TRUE(ledger->Append(Event(i)).ok());
  auto fresh = ledger->ReceiptFor(290);
  ASSERT_TRUE(fresh.ok());
  auto verifier = *NoteVerifier::FromVerifierKey(ledger->VerifierKey());
  EXPECT_TRUE(VerifyReceipt(verifier, *fresh, AsBytes(*CanonicalizeJson(Event(290)))).ok());
  // Tile 0/1 is full now and stored as a row, replacing the stale one.
  EXPECT_EQ(ledger->store().GetTile(0, 1)->hashes.size(), 256u);
  EXPECT_EQ(ledger->store().GetTile(0, 1)->hashes[0], ledger->GetEntry(256)->leaf_hash);
}

TEST_F(LedgerTest, RefusesAnotherOriginOrAnotherKey) {
  { ASSERT_NE(Open(), nullptr); }
  {
    auto store = store::OpenLedgerFile(DbPath());
    LedgerOptions options;
    options.origin = "other.example/log";
    auto r =
        Ledger::Open(std::move(*store), *crypto::Ed25519PrivateKey::FromSeed(key_seed_), options);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  }
  {
    auto store = store::OpenLedgerFile(DbPath());
    auto r = Ledger::Open(std::move(*store), *crypto::Ed25519PrivateKey::Generate(), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  }
}

// A decision is not queued behind a burst of telemetry: interactive appends go before the bulk
// events already waiting, which fill a batch only up to their share (docs/OTLP.md), and every
// bulk event is still committed.
TEST_F(LedgerTest, AnInteractiveAppendIsNotQueuedBehindBulkOnes) {
  LedgerOptions options;
  options.max_bulk_per_batch = 64;
  auto ledger = Open(options);
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Append(Event(0)).ok());  // interactive traffic: bulk gets its share only
  constexpr int kBulk = 4000;
  std::atomic<int> bulk_ok{0};
  for (int i = 1; i <= kBulk; ++i) {
    auto canonical = CanonicalizeJson(Event(i));
    ASSERT_TRUE(canonical.ok());
    ledger->AppendCanonicalAsync(
        std::move(*canonical), {},
        [&bulk_ok](Result<AppendResult> r) {
          if (r.ok()) ++bulk_ok;
        },
        Lane::kBulk);
  }
  // The sequencer commits bulk events while they are queued; on a busy machine it may have
  // committed most of them before the decision comes. Count from what was committed then.
  const uint64_t committed = ledger->Size();
  auto decision = ledger->Append(Event(-1));
  ASSERT_TRUE(decision.ok()) << decision.status().ToString();
  // First in, first out would put it after every bulk event still waiting (at kBulk + 1); it
  // goes in at most a batch or two after what was committed.
  const uint64_t waiting = kBulk + 1 - committed;
  EXPECT_LT(decision->index - committed,
            std::max<uint64_t>(waiting / 2, 4 * options.max_bulk_per_batch))
      << committed << " committed before it, " << waiting << " bulk events waiting";
  ledger->Close();
  EXPECT_EQ(bulk_ok.load(), kBulk);
  EXPECT_EQ(ledger->Size(), static_cast<uint64_t>(kBulk + 2));
}

TEST_F(LedgerTest, AppendAfterCloseFailsCleanly) {
  auto ledger = Open();
  ASSERT_TRUE(ledger->Append(Event(0)).ok());
  ledger->Close();
  auto r = ledger->Append(Event(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace custody::ledger
