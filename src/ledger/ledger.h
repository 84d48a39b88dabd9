// Ledger: the tamper-evident, append-only event log.
//
// Append() canonicalizes an event to RFC 8785 bytes (the leaf), then hands it to the sequencer.
// The sequencer thread group-commits batches: each batch is one durable LedgerStore transaction
// holding its leaves, the changed hash tiles and one C2SP checkpoint signed as a signed-note
// (Ed25519). Only after that commit does each caller get its receipt: a C2SP tlog-proof@v1
// proving its leaf against that checkpoint. No append is acknowledged before it is durable.
//
// Several nodes, one ledger: when the store is shared (LedgerStore::Shared, PostgreSQL), every
// node runs this sequencer over the same store with the same key. Each batch is built inside the
// store's sequencing transaction (CommitAtHead), which excludes the other writers: the node first
// catches up with the leaves the others appended (their hashes, checked against their signed
// checkpoint, so a fork is refused), then numbers its own leaves after them. Reads (checkpoint,
// size, proofs, receipts) catch up from the store's latest checkpoint first, outside that
// transaction, so every node serves the same log.
//
// Thread-safe. The Ledger owns its store and signing key. Close() (or the destructor) commits
// everything already queued, then stops the sequencer.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "crypto/ed25519.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/tile_tree.h"
#include "store/ledger_store.h"

namespace custody::ledger {

struct LedgerOptions {
  // C2SP origin line and signed-note key name. Required when the store is new; when the store
  // already has an origin, an empty value means "use it" and a different one is refused.
  std::string origin;
  // A batch is committed when it has this many events...
  size_t max_batch = 4096;
  // ...or this long after its first event arrived, whichever comes first. Zero commits whatever
  // is queued as soon as the previous commit has finished.
  std::chrono::microseconds max_delay{0};
  // At most this many bulk events (Lane::kBulk) a batch while interactive events come (one in
  // the last second; alone, bulk events fill whole batches). A commit's time grows with its
  // events, and an interactive event waits for the commit in flight and then its own: the bulk
  // share bounds both, so a decision is not held behind a burst of telemetry (docs/OTLP.md).
  size_t max_bulk_per_batch = 128;
  size_t tile_cache_tiles = 1024;
  // Called on the sequencer thread after each durable commit with the batch's event count and
  // the time from taking the batch to the end of the commit (fsync included). For metrics; it
  // must be cheap and must not call back into the Ledger.
  std::function<void(size_t events, std::chrono::microseconds commit)> on_batch_committed;
  // Called on the sequencer thread after each failed commit with the store's own status (for the
  // operator: it may name files). Callers of the failed appends get a clean Unavailable instead.
  std::function<void(const Status& failure)> on_commit_failed;
};

// Which queue an append waits in. Interactive events (decisions, identity, the gateway's) are
// taken first into every batch; bulk events (ingested telemetry, which no interactive caller
// waits on) fill the rest, up to LedgerOptions::max_bulk_per_batch, first in first out within
// their lane.
enum class Lane { kInteractive, kBulk };

struct AppendResult {
  uint64_t index = 0;
  Hash leaf_hash{};
  std::string receipt;  // C2SP tlog-proof@v1 text
};

// Observations of the sequencer, for metrics and benchmarks.
struct LedgerStats {
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t commit_micros_total = 0;  // time spent in durable commits (includes fsync)
  uint64_t max_batch_seen = 0;
  uint64_t caught_up = 0;  // leaves other nodes appended that this one took in (shared store)
  uint64_t refresh_failures = 0;  // Size() could not read a shared store (it kept its size)
};

class Ledger {
 public:
  using Callback = std::function<void(Result<AppendResult>)>;

  static Result<std::unique_ptr<Ledger>> Open(std::unique_ptr<store::LedgerStore> store,
                                              crypto::Ed25519PrivateKey key,
                                              const LedgerOptions& options);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Appends one event (any JSON value; objects in practice). InvalidArgument for JSON that is
  // not I-JSON, before anything is queued. Blocks until the event is durable.
  Result<AppendResult> Append(std::string_view event_json, const store::EventColumns& columns = {});
  // Same, but returns at once; `done` runs on the sequencer thread once the event is durable
  // (or failed). Returns the canonicalization error, if any, without calling `done`.
  Status AppendAsync(std::string_view event_json, const store::EventColumns& columns,
                     Callback done);
  // Appends bytes that are already RFC 8785 canonical (the caller guarantees it).
  void AppendCanonicalAsync(std::string canonical, const store::EventColumns& columns,
                            Callback done, Lane lane = Lane::kInteractive);

  // Commits everything queued and stops accepting appends. Idempotent.
  void Close();

  const std::string& origin() const { return origin_; }
  // The signed-note verifier key: name+hex8(keyid)+base64(0x01||pub).
  std::string VerifierKey() const;

  // The newest signed checkpoint (a signed note); FailedPrecondition while the log is empty.
  Result<store::StoredCheckpoint> LatestCheckpoint();
  uint64_t Size();
  Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size);
  Result<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2);
  // A tlog-proof receipt for `index` against the latest checkpoint.
  Result<std::string> ReceiptFor(uint64_t index);
  Result<store::StoredLeaf> GetEntry(uint64_t index) { return store_->GetLeaf(index); }
  store::LedgerStore& store() { return *store_; }
  LedgerStats Stats();
  // OK unless the last commit failed and the store still refuses a write (probed here, so a
  // ledger that nobody appends to recovers once the disk has room); then Unavailable with the
  // reason, e.g. "the ledger cannot commit: database or disk is full". Never names a file.
  Status CommitHealth() EXCLUDES(tree_mu_);

 private:
  struct Pending {
    std::string data;
    Hash leaf_hash;
    store::EventColumns columns;
    Callback done;
  };

  Ledger(std::unique_ptr<store::LedgerStore> store, crypto::Ed25519PrivateKey key,
         std::string origin, const LedgerOptions& options);
  void Enqueue(Pending p, Lane lane) EXCLUDES(queue_mu_);
  void Run() EXCLUDES(queue_mu_);
  void CommitBatch(std::vector<Pending>& batch) EXCLUDES(tree_mu_);
  // Numbers `b`'s leaves from `head` (after catching up to it), appends them to the tree and
  // fills in the tiles and signed checkpoint.
  Status PrepareLocked(uint64_t head, store::LedgerBatch& b) REQUIRES(tree_mu_);
  // Rebuilds the tree from the last durable state this node knows (checkpoint_) when a reload
  // failed before (the store was unreachable); nothing to do otherwise.
  Status EnsureTreeLocked() REQUIRES(tree_mu_);
  // Brings the tree and checkpoint up to `head` leaves that other nodes committed; DataLoss if
  // the store holds fewer leaves than this node committed or its checkpoint disagrees.
  Status CatchUpLocked(uint64_t head) REQUIRES(tree_mu_);
  // Shared store: catches up with the store's latest checkpoint. Nothing to do otherwise.
  Status Refresh() EXCLUDES(tree_mu_);
  // Refresh, when the store is shared and `size` is beyond what this node knows.
  Status RefreshBeyond(uint64_t size) EXCLUDES(tree_mu_);

  std::unique_ptr<store::LedgerStore> store_;
  crypto::Ed25519PrivateKey key_;
  std::optional<NoteSigner> signer_;  // set once in Open(), signs with key_
  const std::string origin_;
  const LedgerOptions options_;

  Mutex queue_mu_;
  CondVar queue_cv_;
  std::deque<Pending> queue_ GUARDED_BY(queue_mu_);
  std::deque<Pending> bulk_queue_ GUARDED_BY(queue_mu_);
  bool closing_ GUARDED_BY(queue_mu_) = false;

  Mutex tree_mu_;
  TileTree tree_ GUARDED_BY(tree_mu_);
  std::optional<store::StoredCheckpoint> checkpoint_ GUARDED_BY(tree_mu_);
  LedgerStats stats_ GUARDED_BY(tree_mu_);
  std::string commit_failure_ GUARDED_BY(tree_mu_);  // reason of the last commit, if it failed
  bool tree_stale_ GUARDED_BY(tree_mu_) = false;     // a reload failed: EnsureTreeLocked
  const bool shared_;                                // store_->Shared()

  std::thread sequencer_;
};

}  // namespace custody::ledger
