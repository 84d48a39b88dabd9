// Temporary forwarding header: LedgerStore and its value types are store/ledger_store.h
// (namespace custody::store). Kept only until the files being edited in parallel (events/)
// name them there; then it goes (issue #15).
#pragma once

#include "store/ledger_store.h"  // IWYU pragma: export

namespace custody::ledger {
using store::EventColumns;
using store::LedgerBatch;
using store::LedgerStore;
using store::StoredCheckpoint;
using store::StoredLeaf;
using store::StoredTile;
}  // namespace custody::ledger
