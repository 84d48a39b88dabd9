// The AdminTokenStore conformance suite against each backend there is, opened through the
// factory: SQLite (a real file) and memory.
#include "store/stores.h"
#include "store/testing/admin_token_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<AdminTokenStore>> OpenSqlite(const std::filesystem::path& dir) {
  return OpenAdminTokenStore(StorageOptions::InDirectory(dir.string()));
}

Result<std::unique_ptr<AdminTokenStore>> OpenMemory(const std::filesystem::path&) {
  return OpenAdminTokenStore(StorageOptions::InMemory());
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminTokenStoreConformance,
                         ::testing::Values(AdminTokenStoreBackend{"Sqlite", OpenSqlite},
                                           AdminTokenStoreBackend{"Memory", OpenMemory}),
                         BackendName<AdminTokenStore>);

}  // namespace
}  // namespace custody::store::testing
