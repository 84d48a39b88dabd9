// The ToolPinStore conformance suite against each backend there is, opened through the
// factory: SQLite (a real file) and memory.
#include "store/stores.h"
#include "store/testing/tool_pin_store_conformance.h"

namespace custody::store::testing {
namespace {

Result<std::unique_ptr<ToolPinStore>> OpenSqlite(const std::filesystem::path& dir) {
  return OpenToolPinStore(StorageOptions::InDirectory(dir.string()));
}

Result<std::unique_ptr<ToolPinStore>> OpenMemory(const std::filesystem::path&) {
  return OpenToolPinStore(StorageOptions::InMemory());
}

INSTANTIATE_TEST_SUITE_P(Backends, ToolPinStoreConformance,
                         ::testing::Values(ToolPinStoreBackend{"Sqlite", OpenSqlite},
                                           ToolPinStoreBackend{"Memory", OpenMemory}),
                         BackendName<ToolPinStore>);

}  // namespace
}  // namespace custody::store::testing
