// Reading committed ledger entries as OCSF records, in ledger order: what `custody export` and
// the [export.ocsf] sink share. Reads only the LedgerStore (SQLite or PostgreSQL alike).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "export/ocsf.h"
#include "store/ledger_store.h"

namespace custody::ocsf {

// Maps the entries [from, to) of `store` in index order and hands each record (one line of
// NDJSON, without its newline) to `fn`; stops early when `fn` returns false. An entry that is not
// JSON fails the read (DataLoss: the ledger holds only JSON).
Status ForEachRecord(store::LedgerStore& store, uint64_t from, uint64_t to, const Options& options,
                     const std::function<bool(uint64_t index, const std::string& record)>& fn);

// The index of the first entry whose event time is at or after `since_ms` (Unix ms), scanning
// from `from`; `to` when there is none. Event times are monotonic in practice, not by contract,
// so this is where export starts, not a filter.
Result<uint64_t> FirstAtOrAfter(store::LedgerStore& store, uint64_t from, uint64_t to,
                                int64_t since_ms);

// "2026-12-05T10:00:00Z" (RFC 3339, UTC or with an offset), or Unix milliseconds as digits ->
// Unix ms. InvalidArgument otherwise.
Result<int64_t> ParseSince(const std::string& text);

}  // namespace custody::ocsf
