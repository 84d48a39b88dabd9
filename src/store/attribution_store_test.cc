// The AttributionStore conformance suite against each backend there is: SQLite (a real file)
// and memory.
#include "store/memory/memory_attribution_store.h"
#include "store/sqlite/sqlite_attribution_store.h"
#include "store/testing/attribution_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<AttributionStore>> OpenSqlite(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(auto s, SqliteAttributionStore::Open((dir / "attribution.db").string()));
  return std::unique_ptr<AttributionStore>(std::move(s));
}

Result<std::unique_ptr<AttributionStore>> OpenMemory(const std::filesystem::path&) {
  return std::unique_ptr<AttributionStore>(std::make_unique<MemoryAttributionStore>());
}

INSTANTIATE_TEST_SUITE_P(Backends, AttributionStoreConformance,
                         ::testing::Values(AttributionStoreBackend{"Sqlite", OpenSqlite},
                                           AttributionStoreBackend{"Memory", OpenMemory}),
                         BackendName<AttributionStore>);

}  // namespace
}  // namespace custody::store::testing
