#include "ledger/ledger.h"

#include <algorithm>

#include "common/jcs.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"

namespace custody::ledger {
namespace {

// What a store failure says, for a client or a probe: its last part ("database or disk is full",
// "disk I/O error"), without the context before it, which may name files.
std::string StorageReason(const Status& st) {
  std::string_view m = st.message();
  if (size_t colon = m.rfind(": "); colon != std::string_view::npos) m = m.substr(colon + 2);
  // Words that could be a path or a URL are left out ("TCP/IP" stays).
  std::string out;
  for (size_t pos = 0; pos < m.size();) {
    size_t end = m.find(' ', pos);
    if (end == std::string_view::npos) end = m.size();
    std::string_view word = m.substr(pos, end - pos);
    if (!word.empty() && word.front() != '/' && word.find("://") == std::string_view::npos) {
      if (!out.empty()) out += ' ';
      out += word;
    }
    pos = end + 1;
  }
  return out.empty() ? "storage error" : out;
}

constexpr const char* kOriginMetaKey = "origin";
constexpr const char* kPublicKeyMetaKey = "public_key";

std::string MakeReceipt(uint64_t index, std::vector<Hash> proof, const std::string& note) {
  Receipt r;
  r.index = index;
  r.proof = std::move(proof);
  r.signed_checkpoint = note;
  return FormatReceipt(r);
}

}  // namespace

Ledger::Ledger(std::unique_ptr<store::LedgerStore> store, crypto::Ed25519PrivateKey key,
               std::string origin, const LedgerOptions& options)
    : store_(std::move(store)),
      key_(std::move(key)),
      origin_(std::move(origin)),
      options_(options),
      tree_(*store_, options.tile_cache_tiles),
      shared_(store_->Shared()) {}

Result<std::unique_ptr<Ledger>> Ledger::Open(std::unique_ptr<store::LedgerStore> store,
                                             crypto::Ed25519PrivateKey key,
                                             const LedgerOptions& options) {
  if (options.max_batch == 0) return InvalidArgumentError("max_batch must be at least 1");
  ASSIGN_OR_RETURN(std::optional<std::string> stored_origin, store->GetMeta(kOriginMetaKey));
  std::string origin = options.origin;
  if (stored_origin) {
    if (!origin.empty() && origin != *stored_origin) {
      return FailedPreconditionError("ledger origin is \"" + *stored_origin +
                                     "\"; refusing to open it as \"" + origin + "\"");
    }
    origin = *stored_origin;
  } else {
    if (origin.empty()) return InvalidArgumentError("a new ledger needs an origin");
    RETURN_IF_ERROR(store->PutMeta(kOriginMetaKey, origin));
  }
  // The public key is recorded for information only; verification always uses a key the
  // verifier trusts, never this column.
  std::string pub(reinterpret_cast<const char*>(key.public_key().data()), 32);
  ASSIGN_OR_RETURN(std::optional<std::string> stored_pub, store->GetMeta(kPublicKeyMetaKey));
  if (stored_pub && *stored_pub != pub) {
    return FailedPreconditionError(
        "the signing key does not match the key this ledger was created with");
  }
  if (!stored_pub) RETURN_IF_ERROR(store->PutMeta(kPublicKeyMetaKey, pub));

  std::unique_ptr<Ledger> ledger(
      new Ledger(std::move(store), std::move(key), std::move(origin), options));
  ASSIGN_OR_RETURN(NoteSigner signer, NoteSigner::Create(ledger->origin_, ledger->key_));
  ledger->signer_.emplace(std::move(signer));

  // Recover: the leaves, tiles and checkpoint of a batch are one transaction, so the leaf count
  // and the latest checkpoint agree unless the file was tampered with. On a shared store another
  // node may commit between the two reads: the checkpoint, read first, is where this node starts.
  ASSIGN_OR_RETURN(std::optional<store::StoredCheckpoint> cp, ledger->store_->LatestCheckpoint());
  ASSIGN_OR_RETURN(uint64_t count, ledger->store_->LeafCount());
  uint64_t cp_size = cp ? cp->size : 0;
  if (ledger->shared_ && count > cp_size) count = cp_size;
  if (cp_size != count) {
    return DataLossError("ledger has " + std::to_string(count) +
                         " leaves but its latest checkpoint covers " + std::to_string(cp_size) +
                         "; run `custody ledger verify`");
  }
  {
    // Nobody else has the ledger yet (the sequencer starts below): the lock is uncontended and
    // taken for the analysis, which checks every access to tree_ and checkpoint_.
    MutexLock lock(ledger->tree_mu_);
    RETURN_IF_ERROR(ledger->tree_.Load(count));
    if (cp && ledger->tree_.Root() != cp->root) {
      return DataLossError("stored tiles do not match the latest checkpoint at size " +
                           std::to_string(cp_size) + "; run `custody ledger verify`");
    }
    ledger->checkpoint_ = std::move(cp);
  }
  ledger->sequencer_ = std::thread([l = ledger.get()] { l->Run(); });
  return ledger;
}

Ledger::~Ledger() { Close(); }

void Ledger::Close() {
  {
    MutexLock lock(queue_mu_);
    closing_ = true;
  }
  queue_cv_.NotifyAll();
  if (sequencer_.joinable()) sequencer_.join();
}

std::string Ledger::VerifierKey() const { return signer_->VerifierKey(); }

Status Ledger::AppendAsync(std::string_view event_json, const store::EventColumns& columns,
                           Callback done) {
  ASSIGN_OR_RETURN(std::string canonical, CanonicalizeJson(event_json));
  AppendCanonicalAsync(std::move(canonical), columns, std::move(done));
  return OkStatus();
}

void Ledger::AppendCanonicalAsync(std::string canonical, const store::EventColumns& columns,
                                  Callback done, Lane lane) {
  Pending p;
  p.leaf_hash = HashLeaf(canonical);  // hashed on the caller's thread, off the sequencer
  p.data = std::move(canonical);
  p.columns = columns;
  p.done = std::move(done);
  Enqueue(std::move(p), lane);
}

void Ledger::Enqueue(Pending p, Lane lane) {
  bool wake;
  {
    MutexLock lock(queue_mu_);
    if (closing_) {
      lock.Unlock();
      p.done(UnavailableError("ledger is closed"));
      return;
    }
    (lane == Lane::kBulk ? bulk_queue_ : queue_).push_back(std::move(p));
    const size_t queued = queue_.size() + bulk_queue_.size();
    wake = queued == 1 || queued >= options_.max_batch;
  }
  // Notified after the unlock, so the woken sequencer does not block on the mutex at once.
  if (wake) queue_cv_.NotifyOne();
}

Result<AppendResult> Ledger::Append(std::string_view event_json,
                                    const store::EventColumns& columns) {
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  RETURN_IF_ERROR(AppendAsync(event_json, columns, [&promise](Result<AppendResult> r) {
    promise.set_value(std::move(r));
  }));
  return future.get();
}

void Ledger::Run() {
  std::vector<Pending> batch;
  bool last_took_bulk = false;
  auto last_interactive = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (true) {
    {
      MutexLock lock(queue_mu_);
      queue_cv_.Wait(queue_mu_, [&]() REQUIRES(queue_mu_) {
        return closing_ || !queue_.empty() || !bulk_queue_.empty();
      });
      if (queue_.empty() && bulk_queue_.empty()) return;  // closing and drained
      if (options_.max_delay.count() > 0 && !closing_) {
        auto deadline = std::chrono::steady_clock::now() + options_.max_delay;
        queue_cv_.WaitUntil(queue_mu_, deadline, [&]() REQUIRES(queue_mu_) {
          return closing_ || queue_.size() + bulk_queue_.size() >= options_.max_batch;
        });
      }
      // Interactive events first. Bulk ones fill the rest, up to their share while interactive
      // events came in the last second (alone, they fill whole batches); and a batch with
      // interactive events takes none when the one before took some. A decision then waits
      // for a short commit in flight and a short one of its own, and the bulk lane still moves
      // at least every other commit.
      const size_t n = std::min(queue_.size(), options_.max_batch);
      const auto now = std::chrono::steady_clock::now();
      if (n > 0) last_interactive = now;
      const bool bulk_turn = n == 0 || !last_took_bulk;
      const size_t share = now - last_interactive < std::chrono::seconds(1)
                               ? std::max<size_t>(1, options_.max_bulk_per_batch)
                               : options_.max_batch;
      const size_t m =
          bulk_turn ? std::min({bulk_queue_.size(), options_.max_batch - n, share}) : 0;
      last_took_bulk = m > 0;
      batch.clear();
      batch.reserve(n + m);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      for (size_t i = 0; i < m; ++i) {
        batch.push_back(std::move(bulk_queue_.front()));
        bulk_queue_.pop_front();
      }
    }
    CommitBatch(batch);
  }
}

Status Ledger::EnsureTreeLocked() {
  if (!tree_stale_) return OkStatus();
  RETURN_IF_ERROR(
      tree_.Load(checkpoint_ ? checkpoint_->size : 0).WithContext("reloading the ledger's tree"));
  tree_stale_ = false;
  return OkStatus();
}

Status Ledger::CatchUpLocked(uint64_t head) {
  RETURN_IF_ERROR(EnsureTreeLocked());
  const uint64_t have = tree_.size();
  if (head == have) return OkStatus();
  if (head < have) {
    return DataLossError("the ledger store holds " + std::to_string(head) +
                         " entries, fewer than the " + std::to_string(have) +
                         " this node committed; run `custody ledger verify`");
  }
  // A short gap is cheapest as the leaf hashes (one read; the tile cache stays warm); a long
  // one (a node that was down) as the tree's right edge.
  constexpr uint64_t kAppendGap = 1 << 16;
  Status st;
  if (head - have <= kAppendGap) {
    Result<std::vector<Hash>> hashes = store_->LeafHashes(have, head);
    st = hashes.status();
    if (st.ok()) {
      for (const Hash& h : *hashes) tree_.Append(h);
      (void)tree_.TakeDirtyTiles();  // the nodes that appended them stored their tiles
      tree_.Committed();
    }
  } else {
    st = tree_.Load(head);
  }
  Result<std::optional<store::StoredCheckpoint>> cp =
      st.ok() ? store_->GetCheckpoint(head) : Result<std::optional<store::StoredCheckpoint>>(st);
  if (cp.ok() && !*cp) {
    cp = DataLossError("no checkpoint at size " + std::to_string(head));
  }
  if (cp.ok() && (*cp)->root != tree_.Root()) {
    cp = DataLossError("the checkpoint another node signed at size " + std::to_string(head) +
                       " does not match the entries stored; run `custody ledger verify`");
  }
  if (!cp.ok()) {
    // Back to what this node knew; the next batch or read tries again.
    Status rolled = tree_.Load(have);
    if (!rolled.ok()) tree_stale_ = true;  // rebuilt before its next use
    return cp.status().WithContext("catching up with the shared ledger");
  }
  checkpoint_ = std::move(**cp);
  stats_.caught_up += head - have;
  return OkStatus();
}

Status Ledger::Refresh() {
  if (!shared_) return OkStatus();
  // Read outside the tree lock: the sequencer may be committing meanwhile.
  ASSIGN_OR_RETURN(std::optional<store::StoredCheckpoint> latest, store_->LatestCheckpoint());
  if (!latest) return OkStatus();
  MutexLock lock(tree_mu_);
  if (checkpoint_ && latest->size <= checkpoint_->size) return OkStatus();
  return CatchUpLocked(latest->size);
}

Status Ledger::PrepareLocked(uint64_t head, store::LedgerBatch& b) {
  RETURN_IF_ERROR(CatchUpLocked(head));
  const uint64_t start = tree_.size();
  for (size_t i = 0; i < b.leaves.size(); ++i) {
    tree_.Append(b.leaves[i].leaf_hash);
    b.leaves[i].index = start + i;
  }
  Checkpoint cp;
  cp.origin = origin_;
  cp.size = tree_.size();
  cp.root = tree_.Root();
  ASSIGN_OR_RETURN(std::string note, SignCheckpoint(*signer_, cp));
  b.tiles = tree_.TakeDirtyTiles();
  b.checkpoint = store::StoredCheckpoint{cp.size, cp.root, std::move(note)};
  return OkStatus();
}

void Ledger::CommitBatch(std::vector<Pending>& batch) {
  auto started = std::chrono::steady_clock::now();
  int64_t committed_micros = -1;  // set when the batch is durable
  std::vector<Result<AppendResult>> results;
  results.reserve(batch.size());
  Status failure;
  {
    MutexLock lock(tree_mu_);
    store::LedgerBatch b;
    b.leaves.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      store::StoredLeaf leaf;
      leaf.data = std::move(batch[i].data);
      leaf.leaf_hash = batch[i].leaf_hash;
      leaf.columns = std::move(batch[i].columns);
      b.leaves.push_back(std::move(leaf));
    }
    Status st;
    if (shared_) {
      // Runs on this thread inside the store's transaction, with tree_mu_ still held here.
      st = store_->CommitAtHead(b, [this](uint64_t head, store::LedgerBatch& out) {
        tree_mu_.AssertHeld();
        return PrepareLocked(head, out);
      });
    } else {
      st = EnsureTreeLocked();
      if (st.ok()) st = PrepareLocked(tree_.size(), b);
      if (st.ok()) st = store_->CommitBatch(b);
    }
    if (!st.ok()) {
      // Back to the last durable state. When even that cannot be read (the store is
      // unreachable), the tree is rebuilt before its next use (EnsureTreeLocked).
      Status rolled = tree_stale_ ? OkStatus() : tree_.Rollback();
      failure = st.WithContext("ledger append not committed");
      if (!rolled.ok()) {
        // The store cannot be read either (unreachable): rebuilt before the tree's next use.
        tree_stale_ = true;
        failure = st.WithContext(
            "ledger append not committed, and the last durable state "
            "could not be reloaded yet (" +
            rolled.message() + ")");
      }
      commit_failure_ = StorageReason(st);
      Status answer = UnavailableError("the event was not recorded: the ledger cannot commit (" +
                                       commit_failure_ + ")");
      for (size_t i = 0; i < batch.size(); ++i) results.emplace_back(answer);
    } else {
      tree_.Committed();
      commit_failure_.clear();
      checkpoint_ = b.checkpoint;
      const uint64_t size = b.checkpoint.size;
      std::vector<Hash> proof;
      RightEdgeCache edge;  // every proof in the batch shares the same right edge
      for (size_t i = 0; i < batch.size(); ++i) {
        uint64_t index = b.leaves[i].index;
        Status ps = InclusionProofInto(index, size, tree_, &proof, &edge);
        if (!ps.ok()) {
          results.emplace_back(ps);
          continue;
        }
        AppendResult r;
        r.index = index;
        r.leaf_hash = b.leaves[i].leaf_hash;
        r.receipt = MakeReceipt(index, proof, b.checkpoint.note);
        results.emplace_back(std::move(r));
      }
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
      stats_.batches++;
      stats_.events += batch.size();
      stats_.commit_micros_total += static_cast<uint64_t>(micros);
      stats_.max_batch_seen = std::max<uint64_t>(stats_.max_batch_seen, batch.size());
      committed_micros = micros;
    }
  }
  if (committed_micros >= 0 && options_.on_batch_committed) {
    options_.on_batch_committed(batch.size(), std::chrono::microseconds(committed_micros));
  }
  if (!failure.ok() && options_.on_commit_failed) options_.on_commit_failed(failure);
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

Status Ledger::CommitHealth() {
  MutexLock lock(tree_mu_);
  if (commit_failure_.empty()) return OkStatus();
  // Nothing may have been appended since the failure: see whether the store takes a write now.
  Status probe = store_->PutMeta("write_probe", std::to_string(tree_.size()));
  if (probe.ok()) {
    commit_failure_.clear();
    return OkStatus();
  }
  return UnavailableError("the ledger cannot commit: " + StorageReason(probe));
}

Result<store::StoredCheckpoint> Ledger::LatestCheckpoint() {
  RETURN_IF_ERROR(Refresh());
  MutexLock lock(tree_mu_);
  if (!checkpoint_) return FailedPreconditionError("the ledger is empty: no checkpoint yet");
  return *checkpoint_;
}

uint64_t Ledger::Size() {
  // A store that cannot be read now leaves the size this node knows: every caller reads the
  // entries from the store next, and that read reports the failure.
  Status refreshed = Refresh();
  MutexLock lock(tree_mu_);
  if (!refreshed.ok()) stats_.refresh_failures++;
  return checkpoint_ ? checkpoint_->size : 0;
}

LedgerStats Ledger::Stats() {
  MutexLock lock(tree_mu_);
  return stats_;
}

// Reads beyond what this node knows catch up first when other nodes append to the store.
Status Ledger::RefreshBeyond(uint64_t size) {
  if (!shared_) return OkStatus();
  {
    MutexLock lock(tree_mu_);
    if (size <= (checkpoint_ ? checkpoint_->size : 0)) return OkStatus();
  }
  return Refresh();
}

Result<std::vector<Hash>> Ledger::InclusionProof(uint64_t index, uint64_t size) {
  RETURN_IF_ERROR(RefreshBeyond(size));
  MutexLock lock(tree_mu_);
  RETURN_IF_ERROR(EnsureTreeLocked());
  uint64_t have = checkpoint_ ? checkpoint_->size : 0;
  if (size > have) {
    return InvalidArgumentError("size " + std::to_string(size) + " exceeds the ledger size " +
                                std::to_string(have));
  }
  if (index >= size) {
    return InvalidArgumentError("index " + std::to_string(index) + " is not below size " +
                                std::to_string(size));
  }
  return ledger::InclusionProof(index, size, tree_);
}

Result<std::vector<Hash>> Ledger::ConsistencyProof(uint64_t size1, uint64_t size2) {
  RETURN_IF_ERROR(RefreshBeyond(size2));
  MutexLock lock(tree_mu_);
  RETURN_IF_ERROR(EnsureTreeLocked());
  uint64_t have = checkpoint_ ? checkpoint_->size : 0;
  if (size2 > have) {
    return InvalidArgumentError("size " + std::to_string(size2) + " exceeds the ledger size " +
                                std::to_string(have));
  }
  if (size1 > size2) {
    return InvalidArgumentError("from (" + std::to_string(size1) + ") is greater than to (" +
                                std::to_string(size2) + ")");
  }
  return ledger::ConsistencyProof(size1, size2, tree_);
}

Result<std::string> Ledger::ReceiptFor(uint64_t index) {
  RETURN_IF_ERROR(RefreshBeyond(index + 1));
  MutexLock lock(tree_mu_);
  RETURN_IF_ERROR(EnsureTreeLocked());
  if (!checkpoint_ || index >= checkpoint_->size) {
    return NotFoundError("no ledger entry at index " + std::to_string(index));
  }
  ASSIGN_OR_RETURN(std::vector<Hash> proof,
                   ledger::InclusionProof(index, checkpoint_->size, tree_));
  return MakeReceipt(index, std::move(proof), checkpoint_->note);
}

}  // namespace custody::ledger
