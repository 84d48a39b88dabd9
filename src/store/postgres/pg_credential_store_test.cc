// The CredentialStore conformance suite against PostgreSQL: a fresh database of the shared test
// cluster per case (store/testing/pg_cluster.h).
#include "store/postgres/pg_credential_store.h"

#include "store/testing/credential_store_conformance.h"
#include "store/testing/pg_cluster.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<CredentialStore>> OpenPostgresCredentials(const std::filesystem::path&) {
  ASSIGN_OR_RETURN(PgCluster * cluster, PgCluster::Shared());
  ASSIGN_OR_RETURN(std::string url, cluster->NewDatabase());
  ASSIGN_OR_RETURN(auto store, PgCredentialStore::Open(url));
  return std::unique_ptr<CredentialStore>(std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, CredentialStoreConformance,
                         ::testing::Values(CredentialStoreBackend{"Postgres",
                                                                  OpenPostgresCredentials}),
                         BackendName<CredentialStore>);

}  // namespace
}  // namespace custody::store::testing
