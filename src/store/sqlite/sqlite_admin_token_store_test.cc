#include "store/sqlite/sqlite_admin_token_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace custody::store {
namespace {

std::string TempPath(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody_store_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return (dir / "custody.db").string();
}

AdminTokenRecord Rec(std::string id, std::string role, int64_t t) {
  AdminTokenRecord r;
  r.id = std::move(id);
  r.role = std::move(role);
  r.hash.fill(static_cast<uint8_t>(t));
  r.created_unix_ms = t;
  return r;
}

TEST(SqliteAdminTokenStore, InsertGetListRevoke) {
  std::string path = TempPath("basic");
  auto store = SqliteAdminTokenStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);  // no group/other access
  ASSERT_TRUE((*store)->Insert(Rec("aaaa", "admin", 1)).ok());
  ASSERT_TRUE((*store)->Insert(Rec("bbbb", "reader", 2)).ok());
  EXPECT_EQ((*store)->Insert(Rec("aaaa", "admin", 3)).code(), StatusCode::kAlreadyExists);
  auto got = (*store)->Get("bbbb");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->role, "reader");
  EXPECT_EQ((*got)->hash[0], 2);
  EXPECT_FALSE((*got)->revoked_unix_ms.has_value());
  auto missing = (*store)->Get("cccc");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE((*store)->Revoke("aaaa", 100).ok());
  ASSERT_TRUE((*store)->Revoke("aaaa", 200).ok());
  EXPECT_EQ((*store)->Revoke("zzzz", 1).code(), StatusCode::kNotFound);
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "aaaa");
  EXPECT_EQ((*list)[0].revoked_unix_ms.value_or(0), 100);  // the first revocation time stays
  EXPECT_TRUE((*store)->CheckWritable().ok());
}

TEST(SqliteAdminTokenStore, SecondConnectionSeesRevocation) {
  std::string path = TempPath("shared");
  auto server = SqliteAdminTokenStore::Open(path);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Insert(Rec("aaaa", "admin", 1)).ok());
  auto cli = SqliteAdminTokenStore::Open(path, /*create_if_missing=*/false);
  ASSERT_TRUE(cli.ok());
  ASSERT_TRUE((*cli)->Revoke("aaaa", 5).ok());
  auto got = (*server)->Get("aaaa");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->revoked_unix_ms.value_or(0), 5);
  EXPECT_EQ(SqliteAdminTokenStore::Open(path + ".missing", false).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace custody::store
