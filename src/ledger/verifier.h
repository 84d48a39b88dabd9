// Offline verification of a whole ledger store (`custody ledger verify`).
//
// Trusts nothing in the store but the verifier key it is given: it recomputes every leaf hash
// from the stored bytes, rebuilds the tree and compares every stored tile hash with it, checks
// every checkpoint's signature and root, and checks a consistency proof (built from the stored
// tiles) between each pair of consecutive checkpoints. The first problem found is returned as
// DataLoss naming the bad leaf index, tile or checkpoint.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "store/ledger_store.h"

namespace custody::ledger {

struct LedgerVerifyReport {
  uint64_t leaves = 0;
  uint64_t checkpoints = 0;
  Hash root{};
};

Result<LedgerVerifyReport> VerifyLedger(store::LedgerStore& store, const NoteVerifier& verifier,
                                        const std::string& origin);

// One stored leaf as VerifyLedger checks it: it is at index `expected`, its bytes hash to its
// stored leaf hash, and they are RFC 8785 canonical. Its leaf hash, or DataLoss naming the leaf.
// (Also the server-side verification's step, src/api/routes.cc.)
Result<Hash> CheckStoredLeaf(const store::StoredLeaf& leaf, uint64_t expected);

}  // namespace custody::ledger
