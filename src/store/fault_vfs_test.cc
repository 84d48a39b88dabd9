// FaultVfs: the fault injection the other modules' tests rely on really fails SQLite's writes
// (as a full disk or an I/O error would) and, once cleared, the database is whole and writable.
#include "store/testing/fault_vfs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "store/sqlite/sqlite_db.h"

namespace custody::store {
namespace {

using testing::Fault;
using testing::FaultVfs;

class FaultVfsTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    FaultVfs::Install();
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_fault_vfs_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    FaultVfs::Clear();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

int64_t Rows(SqliteDb& db) {
  Stmt s(db, "SELECT count(*) FROM t");
  return s.Step() == kSqliteRow ? s.Int(0) : -1;
}

TEST_P(FaultVfsTest, AFailedWriteIsAnErrorAndTheDatabaseRecoversWhenTheFaultClears) {
  std::string path = (dir_ / "faulty.db").string();
  auto db = SqliteDb::Open(path, "test store", Durability::kFull);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);").ok());

  // Another file is not affected by a fault armed for this one.
  auto other = SqliteDb::Open((dir_ / "other.db").string(), "other store", Durability::kFull);
  ASSERT_TRUE(other.ok());
  const int refused_before = FaultVfs::Refused();
  FaultVfs::Fail("faulty.db", GetParam());
  EXPECT_TRUE((*other)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);").ok());

  Status st = (*db)->Exec("INSERT INTO t VALUES(2);");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("test store"), std::string::npos) << st.ToString();
  EXPECT_GT(FaultVfs::Refused(), refused_before);
  (void)(*db)->Exec("ROLLBACK");  // nothing to roll back unless SQLite kept the transaction

  FaultVfs::Clear();
  EXPECT_EQ(Rows(**db), 1) << "the failed insert left nothing behind";
  ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES(3);").ok());
  EXPECT_EQ(Rows(**db), 2);
  db->reset();
  auto again = SqliteDb::Open(path, "test store", Durability::kFull);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Rows(**again), 2);
}

INSTANTIATE_TEST_SUITE_P(DiskFullAndIoError, FaultVfsTest,
                         ::testing::Values(Fault::kDiskFull, Fault::kIoError));

}  // namespace
}  // namespace custody::store
