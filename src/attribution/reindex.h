// Re-indexing from the ledger. The action index (store/attribution_store.h) is derived from the
// ledger's action.decision, action.outcome and containment events, so whatever the index lost (a
// crash before a queued batch was written, a write that never succeeded) can be derived again.
//
// ActionRowOf is the one place that reads an index row back out of a decision event. Reindex
// writes the rows of every event from a ledger index on: idempotently (a decision's row is
// written whole, then its outcome, in ledger order; a containment already indexed is kept), and
// raising the index's high-water mark as it goes, so an interrupted run resumes where it stopped.
// AttributionService runs it from the mark at start-up; `custody index rebuild` runs it offline.
//
// Functions only; thread-safe as far as the stores are. Boost.JSON stays in reindex.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "store/attribution_store.h"
#include "store/ledger_store.h"

namespace custody::attribution {

// The action row of the action.decision event in `leaf` (no outcome). InvalidArgument if the
// leaf is not a decision, DataLoss if it is not JSON.
Result<store::ActionRow> ActionRowOf(const store::StoredLeaf& leaf);

// The decision of action `action_id`, read from the ledger (by event id), with its outcome if
// the ledger holds one: for an action the index does not hold (yet). nullopt if the ledger has
// no decision of that id.
Result<std::optional<store::ActionRow>> ActionFromLedger(store::LedgerStore& ledger,
                                                         const std::string& action_id);

struct ReindexStats {
  uint64_t from = 0;  // the first ledger index read
  uint64_t to = 0;    // the ledger's size when the run began: the index's mark now
  uint64_t decisions = 0;
  uint64_t outcomes = 0;
  uint64_t containments = 0;  // containments written (those already indexed are not counted)
  uint64_t skipped = 0;       // outcomes whose decision is not in the ledger, unreadable events
};

// Indexes every ledger event at `from` and after (up to the ledger's size when the call began),
// then raises the index's mark to that size. `from` 0 rebuilds the whole index.
Result<ReindexStats> Reindex(store::LedgerStore& ledger, store::AttributionStore& index,
                             uint64_t from);

}  // namespace custody::attribution
