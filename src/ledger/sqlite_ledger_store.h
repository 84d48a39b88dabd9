// Temporary forwarding header: SqliteLedgerStore is store/sqlite/sqlite_ledger_store.h, and
// code outside store/ opens stores through store/stores.h. Kept only until the files being
// edited in parallel are moved onto the factory; then it goes (issue #15).
#pragma once

#include "ledger/ledger_store.h"               // IWYU pragma: export
#include "store/sqlite/sqlite_ledger_store.h"  // IWYU pragma: export

namespace custody::ledger {
using store::SqliteLedgerStore;
}  // namespace custody::ledger
