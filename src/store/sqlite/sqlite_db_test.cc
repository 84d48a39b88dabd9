#include "store/sqlite/sqlite_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace custody::store {
namespace {

TEST(SqliteDb, ASecondOpenerIsRefusedAndTheFirstKeepsItsData) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_sqlite_db_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "attribution.db").string();
  {
    auto first = SqliteDb::Open(path, "attribution store", Durability::kNormal);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_TRUE((*first)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(42);").ok());

    auto second = SqliteDb::Open(path, "attribution store", Durability::kNormal);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("attribution store " + path +
                                             " is locked by another process"),
              std::string::npos)
        << second.status().ToString();
    // The first connection still reads and writes.
    EXPECT_TRUE((*first)->Exec("INSERT INTO t VALUES(43);").ok());
  }
  // Closed: the file opens again with both rows (the WAL was checkpointed at close).
  auto again = SqliteDb::Open(path, "attribution store", Durability::kNormal);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  Stmt s(**again, "SELECT count(*), sum(x) FROM t");
  ASSERT_EQ(s.Step(), kSqliteRow);
  EXPECT_EQ(s.Int(0), 2);
  EXPECT_EQ(s.Int(1), 85);
  std::filesystem::remove_all(dir);
}

// Options::owner_lock_file: one owner at a time (refused at once, the first keeps writing), a
// connection without the lock shares the file and sees each commit, and the lock goes with the
// owner.
TEST(SqliteDb, AnOwnerLockAdmitsOneOwnerAndSharesTheFileWithReaders) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody_sqlite_db_owner_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "identity.db").string();
  SqliteDb::Options owner;
  owner.exclusive = false;
  owner.owner_lock_file = path + ".lock";
  SqliteDb::Options reader;
  reader.exclusive = false;
  reader.create_if_missing = false;
  {
    auto first = SqliteDb::Open(path, "identity database", owner);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_TRUE((*first)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);").ok());
    auto second = SqliteDb::Open(path, "identity database", owner);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("is locked by another process"), std::string::npos)
        << second.status().ToString();

    auto r = SqliteDb::Open(path, "identity database", reader);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    // A transaction in progress on the owner is invisible to the reader, which is not blocked
    // by it; the commit is visible to the reader's next statement.
    ASSERT_TRUE((*first)->Exec("BEGIN IMMEDIATE; INSERT INTO t VALUES(2);").ok());
    {
      Stmt s(**r, "SELECT count(*) FROM t");
      ASSERT_EQ(s.Step(), kSqliteRow);
      EXPECT_EQ(s.Int(0), 1);
    }
    ASSERT_TRUE((*first)->Exec("COMMIT").ok());
    Stmt s(**r, "SELECT count(*) FROM t");
    ASSERT_EQ(s.Step(), kSqliteRow);
    EXPECT_EQ(s.Int(0), 2);
  }
  auto again = SqliteDb::Open(path, "identity database", owner);
  EXPECT_TRUE(again.ok()) << "the lock was not released: " << again.status().ToString();
  std::filesystem::remove_all(dir);
}

TEST(SqliteDb, AFileThatIsNotADatabaseIsDataLossAndIsLeftAsItWas) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody_sqlite_db_bad_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "mcp.db").string();
  const std::string junk(8192, 'x');
  { std::ofstream(path, std::ios::binary) << junk; }
  auto db = SqliteDb::Open(path, "MCP store", Durability::kFull);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kDataLoss) << db.status().ToString();
  EXPECT_NE(db.status().message().find("MCP store " + path), std::string::npos)
      << db.status().ToString();
  std::ifstream in(path, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, junk);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace custody::store
