// The CredentialStore conformance suite against SQLite (credentials.db, a real file) and memory,
// opened through the factory. PostgreSQL: postgres/pg_credential_store_test.cc.
#include "store/stores.h"
#include "store/testing/credential_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<CredentialStore>> OpenSqlite(const std::filesystem::path& dir) {
  return OpenCredentialStore(StorageOptions::InDirectory(dir.string()));
}

Result<std::unique_ptr<CredentialStore>> OpenMemory(const std::filesystem::path&) {
  return OpenCredentialStore(StorageOptions::InMemory());
}

INSTANTIATE_TEST_SUITE_P(Backends, CredentialStoreConformance,
                         ::testing::Values(CredentialStoreBackend{"Sqlite", OpenSqlite},
                                           CredentialStoreBackend{"Memory", OpenMemory}),
                         BackendName<CredentialStore>);

}  // namespace
}  // namespace custody::store::testing
