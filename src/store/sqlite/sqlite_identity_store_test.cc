// SqliteIdentityStore's group commit (CreateSessionAsync, UseAssertionJtiAsync): what it
// answered ok is in the file when it is opened again, a store closed with sessions or jtis still
// queued stores them first, and a failed write (a full disk) fails every session and jti of its
// transaction, stores none of them, and leaves the store ready for the next.
#include "store/sqlite/sqlite_identity_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <vector>

#include "store/sqlite/sqlite_db.h"
#include "store/testing/fault_vfs.h"

namespace custody::store {
namespace {

using identity::Session;
using testing::Fault;
using testing::FaultVfs;

Session MakeSession(const std::string& sid) {
  Session s;
  s.sid = sid;
  s.root_sid = sid;
  s.agent = "planner";
  s.instance = "spiffe://custody.local/agent/planner/instance/1";
  s.initiator = "alice";
  s.scopes = {"db/read"};
  s.jti = "jti-" + sid;
  s.created_at = 100;
  s.expires_at = 1000;
  return s;
}

class SqliteIdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultVfs::Install();
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_sqlite_identity_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "identity.db").string();
  }
  void TearDown() override {
    FaultVfs::Clear();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<SqliteIdentityStore> Open() {
    auto s = SqliteIdentityStore::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // Queues `n` sessions named prefix0.. and returns their answers' futures.
  static std::vector<std::future<Status>> Queue(SqliteIdentityStore& store,
                                                const std::string& prefix, int n) {
    std::vector<std::future<Status>> answers;
    for (int i = 0; i < n; ++i) {
      auto p = std::make_shared<std::promise<Status>>();
      answers.push_back(p->get_future());
      store.CreateSessionAsync(MakeSession(prefix + std::to_string(i)),
                               [p](Status st) { p->set_value(std::move(st)); });
    }
    return answers;
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteIdentityStoreTest, WhatWasAnsweredOkIsInTheFileWhenItIsOpenedAgain) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (auto& f : Queue(*store, "a", 100)) ASSERT_TRUE(f.get().ok());
  // Queued and not waited for: closing the store stores them before it returns.
  auto unwaited = Queue(*store, "b", 50);
  store.reset();
  for (auto& f : unwaited) EXPECT_TRUE(f.get().ok());

  store = Open();
  ASSERT_NE(store, nullptr);
  for (const char* sid : {"a0", "a99", "b0", "b49"}) {
    auto s = store->GetSession(sid);
    ASSERT_TRUE(s.ok()) << sid << ": " << s.status().ToString();
    EXPECT_EQ(s->jti, std::string("jti-") + sid);
    EXPECT_EQ(s->scopes, std::vector<std::string>{"db/read"});
  }
}

TEST_F(SqliteIdentityStoreTest, AFullDiskFailsTheWholeBatchAndTheNextOneIsStored) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateSession(MakeSession("before")).ok());
  FaultVfs::Fail("identity.db", Fault::kDiskFull);
  for (auto& f : Queue(*store, "lost", 20)) {
    Status st = f.get();
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_NE(st.message().find("identity database"), std::string::npos) << st.ToString();
  }
  FaultVfs::Clear();
  for (auto& f : Queue(*store, "after", 20)) EXPECT_TRUE(f.get().ok());
  store.reset();

  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetSession("before").ok());
  EXPECT_TRUE(store->GetSession("after19").ok());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(store->GetSession("lost" + std::to_string(i)).status().code(), StatusCode::kNotFound)
        << "a session answered with an error is not in the file";
  }
}

// Queues `n` assertion jtis named prefix0.. and returns their answers' futures.
std::vector<std::future<Status>> QueueJtis(SqliteIdentityStore& store, const std::string& prefix,
                                           int n) {
  std::vector<std::future<Status>> answers;
  for (int i = 0; i < n; ++i) {
    auto p = std::make_shared<std::promise<Status>>();
    answers.push_back(p->get_future());
    store.UseAssertionJtiAsync(prefix + std::to_string(i), 1000,
                               [p](Status st) { p->set_value(std::move(st)); });
  }
  return answers;
}

TEST_F(SqliteIdentityStoreTest, AJtiAnsweredOkIsRefusedAfterTheFileIsOpenedAgain) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (auto& f : QueueJtis(*store, "c/a", 100)) ASSERT_TRUE(f.get().ok());
  // Jtis and sessions queued together, not waited for: closing stores them first.
  auto jtis = QueueJtis(*store, "c/b", 50);
  auto sessions = Queue(*store, "s", 50);
  store.reset();
  for (auto& f : jtis) EXPECT_TRUE(f.get().ok());
  for (auto& f : sessions) EXPECT_TRUE(f.get().ok());

  store = Open();
  ASSERT_NE(store, nullptr);
  for (const char* jti : {"c/a0", "c/a99", "c/b0", "c/b49"}) {
    EXPECT_EQ(store->UseAssertionJti(jti, 1000).code(), StatusCode::kAlreadyExists) << jti;
  }
  EXPECT_TRUE(store->GetSession("s49").ok());
  EXPECT_TRUE(store->UseAssertionJti("c/c0", 1000).ok());
}

// The minutely purge deletes by the expiry index (schema version 5): it reads the expired jtis,
// not every jti of the last minutes while it holds the store.
TEST_F(SqliteIdentityStoreTest, ThePurgeOfAssertionJtisGoesByTheirExpiry) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store->UseAssertionJti("c/" + std::to_string(i), 100 + i).ok());
  }
  ASSERT_TRUE(store->PurgeAssertionJtis(110).ok());
  EXPECT_TRUE(store->UseAssertionJti("c/0", 1000).ok()) << "expired before 110: purged";
  EXPECT_EQ(store->UseAssertionJti("c/10", 1000).code(), StatusCode::kAlreadyExists);
  store.reset();

  SqliteDb::Options existing;
  existing.create_if_missing = false;
  auto db = SqliteDb::Open(path_, "identity store", existing);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Stmt plan(**db, "EXPLAIN QUERY PLAN DELETE FROM assertion_jtis WHERE expires_at < 1");
  ASSERT_TRUE(plan.ok());
  std::string detail;
  while (plan.Step() == SQLITE_ROW) detail += plan.Text(3) + "; ";
  EXPECT_NE(detail.find("USING INDEX assertion_jtis_expiry"), std::string::npos) << detail;
}

TEST_F(SqliteIdentityStoreTest, AJtiThatCannotBeStoredFailsAndTheNextOneIsStored) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->UseAssertionJti("c/before", 1000).ok());
  FaultVfs::Fail("identity.db", Fault::kIoError);
  auto lost = QueueJtis(*store, "c/lost", 20);
  auto lost_sessions = Queue(*store, "lost", 5);
  for (auto& f : lost) {
    Status st = f.get();
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_EQ(st.message().find(dir_.string()), std::string::npos)
        << "names no path: " << st.ToString();
  }
  for (auto& f : lost_sessions) EXPECT_FALSE(f.get().ok());
  EXPECT_EQ(store->UseAssertionJti("c/sync", 1000).code(), StatusCode::kUnavailable);
  FaultVfs::Clear();
  // Nothing of the failed transaction was kept: the same jtis are fresh, and the store works.
  for (auto& f : QueueJtis(*store, "c/lost", 20)) EXPECT_TRUE(f.get().ok());
  EXPECT_TRUE(store->UseAssertionJti("c/sync", 1000).ok());
  EXPECT_EQ(store->UseAssertionJti("c/before", 1000).code(), StatusCode::kAlreadyExists);
  store.reset();

  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->UseAssertionJti("c/lost19", 1000).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store->GetSession("lost0").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace custody::store
