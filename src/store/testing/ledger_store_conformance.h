// The conformance suite every LedgerStore backend passes (store/testing/conformance.h): meta,
// atomic batches, leaves and their index columns, scans that let the callback use the store,
// FindLeaves, tile rows (partial level-0 tiles read from the leaves), checkpoints. Cases in
// ledger_store_conformance.cc (custody_store_testkit).
#pragma once

#include "store/ledger_store.h"
#include "store/testing/conformance.h"

namespace custody::store::testing {

using LedgerStoreBackend = StoreBackend<LedgerStore>;
class LedgerStoreConformance : public Conformance<LedgerStore> {};

}  // namespace custody::store::testing
