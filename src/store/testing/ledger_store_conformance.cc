#include "store/testing/ledger_store_conformance.h"

#include <vector>

namespace custody::store::testing {
namespace {

using Hash = crypto::Sha256Digest;
using Indexes = std::vector<uint64_t>;

Hash H(uint64_t i, uint8_t salt = 0) {
  Hash h{};
  for (size_t b = 0; b < 8; ++b) h[b] = static_cast<uint8_t>(i >> (8 * b));
  h[31] = salt;
  return h;
}

StoredLeaf Leaf(uint64_t i, EventColumns columns = {}) {
  StoredLeaf l;
  l.index = i;
  l.data = "{\"n\":" + std::to_string(i) + "}";
  l.leaf_hash = H(i);
  l.columns = std::move(columns);
  return l;
}

// A batch of leaves [from, to) with a checkpoint at size `to` and the given tile rows.
LedgerBatch Batch(uint64_t from, uint64_t to, std::vector<StoredTile> tiles = {}) {
  LedgerBatch b;
  for (uint64_t i = from; i < to; ++i) b.leaves.push_back(Leaf(i));
  b.tiles = std::move(tiles);
  b.checkpoint = StoredCheckpoint{to, H(to, 0xcc), "note at " + std::to_string(to) + "\n"};
  return b;
}

StoredTile Row(uint8_t level, uint64_t index, size_t width, uint8_t salt = 0) {
  StoredTile t;
  t.level = level;
  t.index = index;
  for (size_t i = 0; i < width; ++i) t.hashes.push_back(H(index * kLedgerTileWidth + i, salt));
  return t;
}

TEST_P(LedgerStoreConformance, AnEmptyStoreHasNothing) {
  EXPECT_EQ(*store_->LeafCount(), 0u);
  EXPECT_FALSE(store_->LatestCheckpoint()->has_value());
  EXPECT_FALSE(store_->GetCheckpoint(0)->has_value());
  EXPECT_EQ(store_->GetLeaf(0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTile(0, 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTile(1, 0).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->GetMeta("origin")->has_value());
  int visited = 0;
  ASSERT_TRUE(store_->ScanLeaves(0, [&](const StoredLeaf&) { return ++visited, true; }).ok());
  ASSERT_TRUE(
      store_->ScanCheckpoints([&](const StoredCheckpoint&) { return ++visited, true; }).ok());
  EXPECT_EQ(visited, 0);
}

TEST_P(LedgerStoreConformance, MetaIsKeptAndReplaced) {
  ASSERT_TRUE(store_->PutMeta("origin", "example.com/log").ok());
  const std::string key(32, '\0');  // any bytes
  ASSERT_TRUE(store_->PutMeta("public_key", key).ok());
  EXPECT_EQ(store_->GetMeta("origin")->value_or(""), "example.com/log");
  EXPECT_EQ(store_->GetMeta("public_key")->value_or(""), key);
  ASSERT_TRUE(store_->PutMeta("origin", "other.example/log").ok());
  EXPECT_EQ(store_->GetMeta("origin")->value_or(""), "other.example/log");
}

TEST_P(LedgerStoreConformance, ABatchIsReadBackExactly) {
  LedgerBatch b = Batch(0, 3);
  b.leaves[1].columns = {"ev-1", "action.decision", "sid-1", "planner", "2026-01-01T00:00:00Z"};
  b.leaves[2].data = std::string("{\"bytes\":\"\x01\xff\"}", 14);  // stored as bytes, not text
  ASSERT_TRUE(store_->CommitBatch(b).ok());
  EXPECT_EQ(*store_->LeafCount(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    auto leaf = store_->GetLeaf(i);
    ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
    EXPECT_EQ(leaf->index, i);
    EXPECT_EQ(leaf->data, b.leaves[i].data);
    EXPECT_EQ(leaf->leaf_hash, b.leaves[i].leaf_hash);
  }
  auto with_columns = store_->GetLeaf(1);
  EXPECT_EQ(with_columns->columns.event_id, "ev-1");
  EXPECT_EQ(with_columns->columns.kind, "action.decision");
  EXPECT_EQ(with_columns->columns.session, "sid-1");
  EXPECT_EQ(with_columns->columns.agent, "planner");
  EXPECT_EQ(with_columns->columns.time, "2026-01-01T00:00:00Z");
  auto without = store_->GetLeaf(0);
  EXPECT_TRUE(without->columns.event_id.empty() && without->columns.kind.empty() &&
              without->columns.session.empty() && without->columns.agent.empty() &&
              without->columns.time.empty());
  EXPECT_EQ(store_->GetLeaf(3).status().code(), StatusCode::kNotFound);
  auto cp = store_->LatestCheckpoint();
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ((*cp)->size, 3u);
  EXPECT_EQ((*cp)->root, H(3, 0xcc));
  EXPECT_EQ((*cp)->note, "note at 3\n");
}

TEST_P(LedgerStoreConformance, AFailedBatchWritesNothing) {
  ASSERT_TRUE(store_->CommitBatch(Batch(0, 2)).ok());
  // Leaf 1 is stored already: the whole batch is refused, its new leaf, tile and checkpoint too.
  LedgerBatch clash = Batch(1, 3, {Row(1, 0, 3)});
  EXPECT_FALSE(store_->CommitBatch(clash).ok());
  EXPECT_EQ(*store_->LeafCount(), 2u);
  EXPECT_EQ(store_->GetLeaf(2).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, 2u);
  EXPECT_FALSE(store_->GetCheckpoint(3)->has_value());
  EXPECT_EQ(store_->GetTile(1, 0).status().code(), StatusCode::kNotFound);
  // The store still takes the next good batch.
  ASSERT_TRUE(store_->CommitBatch(Batch(2, 4)).ok());
  EXPECT_EQ(*store_->LeafCount(), 4u);
}

// A batch far larger than the sequencer's usual one (a backend may write it in one statement or
// several): every leaf, every tile row and the checkpoint come back exactly, and a batch that
// clashes on its very last leaf leaves nothing of itself behind.
TEST_P(LedgerStoreConformance, ALargeBatchIsAllOrNothing) {
  constexpr uint64_t kLeaves = 1000;
  LedgerBatch b = Batch(0, kLeaves,
                        {Row(0, 0, kLedgerTileWidth), Row(0, 1, kLedgerTileWidth),
                         Row(0, 2, kLedgerTileWidth), Row(1, 0, 3, 7)});
  for (uint64_t i = 0; i < kLeaves; i += 7) {
    b.leaves[i].columns = {"ev-" + std::to_string(i), "action.decision",
                           "sid-" + std::to_string(i % 5), "agent", "2026-01-01T00:00:00Z"};
  }
  Status st = store_->CommitBatch(b);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(*store_->LeafCount(), kLeaves);
  uint64_t next = 0;
  ASSERT_TRUE(store_
                  ->ScanLeaves(0,
                               [&](const StoredLeaf& leaf) {
                                 const StoredLeaf& want = b.leaves[next];
                                 EXPECT_EQ(leaf.index, next);
                                 EXPECT_EQ(leaf.data, want.data);
                                 EXPECT_EQ(leaf.leaf_hash, want.leaf_hash);
                                 EXPECT_EQ(leaf.columns.event_id, want.columns.event_id);
                                 EXPECT_EQ(leaf.columns.session, want.columns.session);
                                 ++next;
                                 return true;
                               })
                  .ok());
  ASSERT_EQ(next, kLeaves);
  for (uint64_t t = 0; t < 4; ++t) ASSERT_TRUE(store_->GetTile(0, t).ok()) << t;
  ASSERT_TRUE(store_->GetTile(1, 0).ok());
  for (uint64_t t = 0; t < 3; ++t) EXPECT_EQ(store_->GetTile(0, t)->hashes, b.tiles[t].hashes);
  EXPECT_EQ(store_->GetTile(0, 3)->hashes.size(), kLeaves - 3 * kLedgerTileWidth);  // partial
  EXPECT_EQ(store_->GetTile(1, 0)->hashes, b.tiles[3].hashes);
  EXPECT_EQ(*store_->FindLeaves(LedgerStore::Column::kSession, "sid-2", ""),
            (*store_->FindLeaves(LedgerStore::Column::kSession, "sid-2", "action.decision")));
  EXPECT_EQ((*store_->LatestCheckpoint())->size, kLeaves);

  // Leaves 1000..1998 are new, 999 is stored: the whole batch is refused.
  LedgerBatch clash =
      Batch(kLeaves, 2 * kLeaves - 1, {Row(0, 3, kLedgerTileWidth, 9), Row(1, 0, 7, 9)});
  clash.leaves.push_back(Leaf(kLeaves - 1));
  clash.checkpoint.size = 2 * kLeaves;
  EXPECT_FALSE(store_->CommitBatch(clash).ok());
  EXPECT_EQ(*store_->LeafCount(), kLeaves);
  EXPECT_EQ(store_->GetLeaf(kLeaves).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTile(0, 3)->hashes.size(), kLeaves - 3 * kLedgerTileWidth);
  EXPECT_EQ(store_->GetTile(1, 0)->hashes, b.tiles[3].hashes);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, kLeaves);
  EXPECT_FALSE(store_->GetCheckpoint(2 * kLeaves)->has_value());
  // The same clash through CommitAtHead, numbered at a stale head (as a second node would).
  LedgerBatch stale = Batch(0, kLeaves);
  st = store_->CommitAtHead(stale, [&](uint64_t, LedgerBatch& out) {
    for (size_t i = 0; i < out.leaves.size(); ++i) out.leaves[i].index = kLeaves - 1 + i;
    out.checkpoint.size = 2 * kLeaves - 1;
    return OkStatus();
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(*store_->LeafCount(), kLeaves);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, kLeaves);
  // And the store takes the next good batch.
  st = store_->CommitBatch(Batch(kLeaves, kLeaves + 1));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(LedgerStoreConformance, CommitAtHeadNumbersTheBatchAfterWhatIsStored) {
  ASSERT_TRUE(store_->CommitBatch(Batch(0, 3)).ok());
  LedgerBatch b = Batch(0, 2);  // numbered by prepare, not here
  uint64_t seen = 99;
  Status st = store_->CommitAtHead(b, [&](uint64_t head, LedgerBatch& out) {
    seen = head;
    for (size_t i = 0; i < out.leaves.size(); ++i) {
      out.leaves[i].index = head + i;
      out.leaves[i].leaf_hash = H(head + i);
    }
    out.checkpoint = StoredCheckpoint{head + out.leaves.size(), H(5, 0xcc), "note at 5\n"};
    return OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen, 3u);
  EXPECT_EQ(*store_->LeafCount(), 5u);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, 5u);
  EXPECT_EQ(store_->GetLeaf(4)->leaf_hash, H(4));
  // A prepare that fails writes nothing, and its status comes back as it is.
  LedgerBatch refused = Batch(0, 1);
  st = store_->CommitAtHead(
      refused, [](uint64_t, LedgerBatch&) { return DataLossError("the tree disagrees"); });
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(*store_->LeafCount(), 5u);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, 5u);
}

TEST_P(LedgerStoreConformance, LeafHashesAreARangeInOrder) {
  ASSERT_TRUE(store_->CommitBatch(Batch(0, 300)).ok());
  auto hashes = store_->LeafHashes(250, 300);
  ASSERT_TRUE(hashes.ok()) << hashes.status().ToString();
  ASSERT_EQ(hashes->size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ((*hashes)[i], H(250 + i));
  EXPECT_TRUE(store_->LeafHashes(7, 7)->empty());
  EXPECT_EQ(store_->LeafHashes(299, 301).status().code(), StatusCode::kNotFound);
}

// Only full tiles of level 0 are rows; a partial one is the hashes of the leaves stored so far.
TEST_P(LedgerStoreConformance, PartialLevelZeroTilesComeFromTheLeaves) {
  const uint64_t w = kLedgerTileWidth;
  // A partial level-0 row in a batch is not what GetTile answers: the leaves are.
  ASSERT_TRUE(store_->CommitBatch(Batch(0, w + 44, {Row(0, 0, w), Row(0, 1, 44, 0x77)})).ok());
  auto full = store_->GetTile(0, 0);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->hashes, Row(0, 0, w).hashes);
  auto partial = store_->GetTile(0, 1);
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_EQ(partial->level, 0);
  EXPECT_EQ(partial->index, 1u);
  ASSERT_EQ(partial->hashes.size(), 44u);
  for (size_t i = 0; i < 44; ++i) EXPECT_EQ(partial->hashes[i], H(w + i)) << i;
  EXPECT_EQ(store_->GetTile(0, 2).status().code(), StatusCode::kNotFound);
  // It grows with the leaves, and is a row once full.
  ASSERT_TRUE(store_->CommitBatch(Batch(w + 44, 2 * w + 1, {Row(0, 1, w, 0x55)})).ok());
  EXPECT_EQ(store_->GetTile(0, 1)->hashes, Row(0, 1, w, 0x55).hashes);
  EXPECT_EQ(store_->GetTile(0, 2)->hashes.size(), 1u);
}

TEST_P(LedgerStoreConformance, UpperTileRowsAreReplacedAsTheyGrow) {
  ASSERT_TRUE(store_->CommitBatch(Batch(0, 1, {Row(1, 0, 1)})).ok());
  EXPECT_EQ(store_->GetTile(1, 0)->hashes, Row(1, 0, 1).hashes);
  ASSERT_TRUE(store_->CommitBatch(Batch(1, 2, {Row(1, 0, 2, 9)})).ok());
  auto row = store_->GetTile(1, 0);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->level, 1);
  EXPECT_EQ(row->hashes, Row(1, 0, 2, 9).hashes);
  EXPECT_EQ(store_->GetTile(1, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTile(2, 0).status().code(), StatusCode::kNotFound);
}

TEST_P(LedgerStoreConformance, ScansGoInOrderStopWhenToldAndMayUseTheStore) {
  // More leaves and checkpoints than one chunk of a chunked scan.
  for (uint64_t from = 0; from < 2100; from += 100) {
    ASSERT_TRUE(store_->CommitBatch(Batch(from, from + 100)).ok());
  }
  uint64_t next = 5;
  ASSERT_TRUE(store_
                  ->ScanLeaves(5,
                               [&](const StoredLeaf& l) {
                                 EXPECT_EQ(l.index, next++);
                                 // A callback may read the store (the verifier reads tiles).
                                 EXPECT_TRUE(store_->GetLeaf(l.index).ok());
                                 return true;
                               })
                  .ok());
  EXPECT_EQ(next, 2100u);
  int seen = 0;
  ASSERT_TRUE(store_->ScanLeaves(2000, [&](const StoredLeaf&) { return ++seen < 3; }).ok());
  EXPECT_EQ(seen, 3);

  std::vector<uint64_t> sizes;
  ASSERT_TRUE(store_
                  ->ScanCheckpoints([&](const StoredCheckpoint& cp) {
                    sizes.push_back(cp.size);
                    EXPECT_TRUE(store_->GetCheckpoint(cp.size)->has_value());
                    return true;
                  })
                  .ok());
  ASSERT_EQ(sizes.size(), 21u);
  EXPECT_EQ(sizes.front(), 100u);
  EXPECT_EQ(sizes.back(), 2100u);
  EXPECT_TRUE(std::is_sorted(sizes.begin(), sizes.end()));
  seen = 0;
  ASSERT_TRUE(store_->ScanCheckpoints([&](const StoredCheckpoint&) { return ++seen < 2; }).ok());
  EXPECT_EQ(seen, 2);
  EXPECT_EQ((*store_->LatestCheckpoint())->size, 2100u);
  EXPECT_EQ((*store_->GetCheckpoint(700))->note, "note at 700\n");
  EXPECT_FALSE(store_->GetCheckpoint(701)->has_value());
}

TEST_P(LedgerStoreConformance, FindLeavesByColumnAndKindInIndexOrder) {
  LedgerBatch b = Batch(0, 6);
  b.leaves[0].columns = {"e0", "session.start", "s1", "planner", ""};
  b.leaves[1].columns = {"e1", "action.decision", "s1", "planner", ""};
  b.leaves[2].columns = {"e2", "session.start", "s2", "worker", ""};
  b.leaves[3].columns = {"e3", "action.decision", "s1", "planner", ""};
  b.leaves[4].columns = {"", "", "", "", ""};
  b.leaves[5].columns = {"e5", "action.outcome", "s2", "worker", ""};
  ASSERT_TRUE(store_->CommitBatch(b).ok());
  using C = LedgerStore::Column;
  EXPECT_EQ(*store_->FindLeaves(C::kSession, "s1"), (Indexes{0, 1, 3}));
  EXPECT_EQ(*store_->FindLeaves(C::kSession, "s1", "action.decision"), (Indexes{1, 3}));
  EXPECT_EQ(*store_->FindLeaves(C::kAgent, "worker"), (Indexes{2, 5}));
  EXPECT_EQ(*store_->FindLeaves(C::kAgent, "worker", "session.start"), (Indexes{2}));
  EXPECT_EQ(*store_->FindLeaves(C::kEventId, "e5"), (Indexes{5}));
  EXPECT_TRUE(store_->FindLeaves(C::kEventId, "e5", "session.start")->empty());
  EXPECT_TRUE(store_->FindLeaves(C::kSession, "nobody")->empty());
  EXPECT_TRUE(store_->FindLeaves(C::kSession, "")->empty()) << "an empty value finds nothing";
}

}  // namespace
}  // namespace custody::store::testing
