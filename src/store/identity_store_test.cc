// The IdentityStore conformance suite against each backend there is, opened through the
// factory: SQLite (a real file) and memory.
#include "store/stores.h"
#include "store/testing/identity_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<IdentityStore>> OpenSqlite(const std::filesystem::path& dir) {
  return OpenIdentityStore(StorageOptions::InDirectory(dir.string()));
}

Result<std::unique_ptr<IdentityStore>> OpenMemory(const std::filesystem::path&) {
  return OpenIdentityStore(StorageOptions::InMemory());
}

INSTANTIATE_TEST_SUITE_P(Backends, IdentityStoreConformance,
                         ::testing::Values(IdentityStoreBackend{"Sqlite", OpenSqlite},
                                           IdentityStoreBackend{"Memory", OpenMemory}),
                         BackendName<IdentityStore>);

}  // namespace
}  // namespace custody::store::testing
