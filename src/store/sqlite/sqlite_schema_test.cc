// Schema versions: a new file gets the current layout, an older one is migrated in place with
// its data, a failed step leaves the file as it was, and a file from a newer Custody is refused
// untouched with both versions named.
#include "store/sqlite/sqlite_schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "store/sqlite/sqlite_db.h"

namespace custody::store {
namespace {

constexpr const char* kV1 = "CREATE TABLE IF NOT EXISTS t(x INTEGER NOT NULL);";
constexpr const char* kV2 = "ALTER TABLE t ADD COLUMN y TEXT NOT NULL DEFAULT 'two';";
constexpr const char* kOne[] = {kV1};
constexpr const char* kTwo[] = {kV1, kV2};

class SqliteSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_schema_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "s.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result<std::unique_ptr<SqliteDb>> Open(std::span<const char* const> steps) {
    return SqliteDb::Open(path_, "test store", Durability::kNormal, steps);
  }
  static int64_t Version(SqliteDb& db) { return *SchemaVersion(db.raw(), "test store"); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteSchemaTest, ANewFileGetsTheCurrentVersion) {
  auto db = Open(kTwo);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(Version(**db), 2);
  EXPECT_TRUE((*db)->Exec("INSERT INTO t(x, y) VALUES(1, 'a')").ok());
}

TEST_F(SqliteSchemaTest, AnOlderFileIsMigratedInPlaceWithItsData) {
  {
    auto db = Open(kOne);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_EQ(Version(**db), 1);
    ASSERT_TRUE((*db)->Exec("INSERT INTO t(x) VALUES(7)").ok());
  }
  auto db = Open(kTwo);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(Version(**db), 2);
  Stmt s(**db, "SELECT x, y FROM t");
  ASSERT_EQ(s.Step(), kSqliteRow);
  EXPECT_EQ(s.Int(0), 7);
  EXPECT_EQ(s.Text(1), "two");
}

TEST_F(SqliteSchemaTest, AFileFromBeforeVersionsIsVersionZeroAndKeepsItsData) {
  {
    auto db = SqliteDb::Open(path_, "test store", Durability::kNormal);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x INTEGER NOT NULL); INSERT INTO t VALUES(3);").ok());
    ASSERT_EQ(Version(**db), 0);
  }
  auto db = Open(kTwo);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(Version(**db), 2);
  Stmt s(**db, "SELECT count(*), sum(x) FROM t WHERE y = 'two'");
  ASSERT_EQ(s.Step(), kSqliteRow);
  EXPECT_EQ(s.Int(0), 1);
  EXPECT_EQ(s.Int(1), 3);
}

TEST_F(SqliteSchemaTest, AFailedStepLeavesTheFileAsItWas) {
  {
    auto db = Open(kOne);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t(x) VALUES(1)").ok());
  }
  constexpr const char* kBroken[] = {kV1, "ALTER TABLE t ADD COLUMN z TEXT; CREATE TABLE t(x);"};
  auto db = Open(kBroken);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(db.status().message().find("from schema version 1 to 2"), std::string::npos)
      << db.status().ToString();
  auto again = Open(kOne);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Version(**again), 1);
  sqlite3_stmt* st = (*again)->Prepared("SELECT * FROM t");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(sqlite3_column_count(st), 1) << "the half-applied step's column is gone";
}

TEST_F(SqliteSchemaTest, AFileFromANewerCustodyIsRefusedUntouched) {
  {
    auto db = Open(kTwo);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t(x) VALUES(1); PRAGMA user_version = 5;").ok());
  }
  auto db = Open(kTwo);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("test store " + path_ +
                                       " has schema version 5, newer than version 2"),
            std::string::npos)
      << db.status().ToString();
  auto raw = SqliteDb::Open(path_, "test store", Durability::kNormal);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(Version(**raw), 5);
}

}  // namespace
}  // namespace custody::store
