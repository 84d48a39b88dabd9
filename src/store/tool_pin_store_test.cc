// The ToolPinStore conformance suite against each backend there is, opened through the
// factory: SQLite (a real file) and memory. And mcp.db's migration: a version 1 file (tools
// only) opens at version 2 with its tool pins intact.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "store/stores.h"
#include "store/testing/sqlite_file.h"
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

TEST(SqliteToolPinStoreMigration, AVersion1FileKeepsItsToolPinsAsTools) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody_pin_migration_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "mcp.db").string();
  // mcp.db as version 1 wrote it: a tool whose change is waiting for approval.
  { std::ofstream create(path); }  // an empty file is an empty database
  Status written =
      ExecOnFile(path,
                 "CREATE TABLE tool_pins (server TEXT NOT NULL, tool TEXT NOT NULL,"
                 " approved_hash TEXT NOT NULL, seen_hash TEXT NOT NULL,"
                 " first_seen_ms INTEGER NOT NULL, changed_ms INTEGER NOT NULL,"
                 " PRIMARY KEY (server, tool));"
                 "INSERT INTO tool_pins VALUES ('files', 'prompt:greet', 'h1', 'h2', 10, 20);"
                 "PRAGMA user_version = 1;");
  ASSERT_TRUE(written.ok()) << written.ToString();
  {
    auto store = OpenSqlite(dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto tools = (*store)->List(PinKind::kTool);
    ASSERT_TRUE(tools.ok()) << tools.status().ToString();
    ASSERT_EQ(tools->size(), 1u);
    const PinRecord& p = (*tools)[0];
    EXPECT_EQ(p.server, "files");
    EXPECT_EQ(p.name, "prompt:greet") << "a tool, whatever its name looks like";
    EXPECT_EQ(p.approved_hash, "h1");
    EXPECT_EQ(p.seen_hash, "h2");
    EXPECT_EQ(p.first_seen_ms, 10);
    EXPECT_EQ(p.changed_ms, 20);
    EXPECT_TRUE((*store)->List(PinKind::kPrompt)->empty());
    // Still refused until approved, and a prompt "greet" is another pin.
    EXPECT_FALSE((*store)->Observe(PinKind::kTool, "files", "prompt:greet", "h2", 30)->approved);
    EXPECT_TRUE((*store)->Observe(PinKind::kPrompt, "files", "greet", "h2", 30)->first_seen);
  }
  EXPECT_EQ(*QueryIntOnFile(path, "PRAGMA user_version"), 2);
  EXPECT_EQ(QueryIntOnFile(path, "SELECT count(*) FROM sqlite_master WHERE name='tool_pins'")
                .value_or(-1),
            0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace custody::store::testing
