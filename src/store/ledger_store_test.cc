// The LedgerStore conformance suite against each backend there is, opened through the factory:
// SQLite (a real file) and memory.
#include "store/stores.h"
#include "store/testing/ledger_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<LedgerStore>> OpenSqlite(const std::filesystem::path& dir) {
  return OpenLedgerStore(StorageOptions::InDirectory(dir.string()));
}

Result<std::unique_ptr<LedgerStore>> OpenMemory(const std::filesystem::path&) {
  return OpenLedgerStore(StorageOptions::InMemory());
}

INSTANTIATE_TEST_SUITE_P(Backends, LedgerStoreConformance,
                         ::testing::Values(LedgerStoreBackend{"Sqlite", OpenSqlite},
                                           LedgerStoreBackend{"Memory", OpenMemory}),
                         BackendName<LedgerStore>);

}  // namespace
}  // namespace custody::store::testing
