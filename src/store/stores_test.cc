#include "store/stores.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace custody::store {
namespace {

class StoresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_stores_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StoresTest, ADataDirectoryGetsOnePrivateFilePerStore) {
  mode_t saved = ::umask(022);
  auto stores = OpenStores(StorageOptions::InDirectory(dir_.string()));
  ::umask(saved);
  ASSERT_TRUE(stores.ok()) << stores.status().ToString();
  EXPECT_NE(stores->admin_tokens, nullptr);
  EXPECT_NE(stores->ledger, nullptr);
  EXPECT_NE(stores->identity, nullptr);
  EXPECT_NE(stores->attribution, nullptr);
  for (const char* name : {"ledger.db", "identity.db", "attribution.db", "custody.db"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
}

TEST_F(StoresTest, MemoryStoresTouchNoFile) {
  auto stores = OpenStores(StorageOptions::InMemory());
  ASSERT_TRUE(stores.ok()) << stores.status().ToString();
  EXPECT_EQ(*stores->ledger->LeafCount(), 0u);
  EXPECT_TRUE(stores->admin_tokens->List()->empty());
  EXPECT_TRUE(stores->identity->ListAgents()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(StoresTest, AMissingFileIsNotFoundWhenNotToBeCreated) {
  StorageOptions o = StorageOptions::InDirectory(dir_.string());
  EXPECT_EQ(OpenLedgerStore(o, {.read_only = true, .create_if_missing = false}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(OpenLedgerStore(o, {.read_only = false, .create_if_missing = false}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(OpenAdminTokenStore(o, /*create_if_missing=*/false).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(std::filesystem::is_empty(dir_)) << "nothing was created";
}

}  // namespace
}  // namespace custody::store
