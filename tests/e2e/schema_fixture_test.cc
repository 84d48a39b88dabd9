// Database files written before schema versions existed (tests/fixtures/v0, made by `custody
// serve` of that time, see tests/fixtures/README.md) open with today's stores: each is migrated
// in place to the current version and the rows the old code wrote are still read through the
// store API. The same files marked with a newer version are refused, untouched, naming both
// versions. A read-only ledger open reads an old file without writing it, as `custody ledger
// verify` does.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "ledger/note.h"
#include "ledger/verifier.h"
#include "store/stores.h"
#include "store/testing/sqlite_file.h"
#include "subprocess.h"

namespace custody {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kCurrentVersion = 1;
// mcp.db is at version 2 (resources and prompts pinned beside tools).
constexpr int64_t kMcpVersion = 2;
// identity.db is at version 5 (refresh token families and consents of the authorization code
// flow, then its authorization codes, then the browser's part of a sign-in and approver
// sessions, then the expiry index of client assertion jtis).
constexpr int64_t kIdentityVersion = 5;
// attribution.db is at version 4 (session counters kept in the store, for several nodes; then
// approvals; then the index the expiry loop asks for the approvals due by).
constexpr int64_t kAttributionVersion = 4;
int64_t CurrentVersion(const std::string& file) {
  if (file == "identity.db") return kIdentityVersion;
  if (file == "attribution.db") return kAttributionVersion;
  return file == "mcp.db" ? kMcpVersion : kCurrentVersion;
}
// What the fixtures hold (tests/fixtures/README.md).
constexpr const char* kAdminTokenId = "0db749c7f94e5ab7";
constexpr const char* kAgent = "fixture-agent";
constexpr const char* kSession = "01a24700-2842-71a8-8c22-02cee306a480";
constexpr const char* kPolicyHash =
    "7c70862a1e42bca66cb84ac9742f5bd1ef77292f45a8ae746e57180d83b8677b";
constexpr const char* kActionId = "01a24700-2aa8-70f7-9e16-f116bbb6ec78";
constexpr const char* kFirstEvent =
    R"({"event_id":"fixture-1","kind":"fixture.note","note":"written before schema versions",)"
    R"("time":"2025-01-01T00:00:00Z"})";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// PRAGMA user_version of a closed file, read (or written) with a connection of its own.
int64_t UserVersion(const std::string& path) {
  auto v = store::testing::QueryIntOnFile(path, "PRAGMA user_version");
  return v.ok() ? *v : -1;
}

void SetUserVersion(const std::string& path, int64_t v) {
  Status st = store::testing::ExecOnFile(path, "PRAGMA user_version = " + std::to_string(v));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// The stores' factory (store/stores.h), on one file.
store::StorageOptions At(const std::string& path) {
  store::StorageOptions o;
  o.ledger_path = o.identity_path = o.attribution_path = o.admin_token_path = o.tool_pin_path =
      path;
  return o;
}

constexpr store::LedgerOpenOptions kReadOnly = {.read_only = true, .create_if_missing = false};

// Opens a file with one store's Open and drops it; the status is what a caller would see.
struct Opener {
  const char* file;
  std::function<Status(const std::string&)> open;
};

template <typename T>
Status Drop(const Result<T>& r) {
  return r.status();
}

// Every store's Open, creating a missing file; with `read_only_ledger`, also the ledger's
// read-only open (`custody ledger verify`), which never creates.
std::vector<Opener> Openers(bool read_only_ledger) {
  std::vector<Opener> out = {
      {"ledger.db", [](const std::string& p) { return Drop(store::OpenLedgerStore(At(p))); }},
      {"identity.db", [](const std::string& p) { return Drop(store::OpenIdentityStore(At(p))); }},
      {"custody.db", [](const std::string& p) { return Drop(store::OpenAdminTokenStore(At(p))); }},
      {"attribution.db",
       [](const std::string& p) { return Drop(store::OpenAttributionStore(At(p))); }},
      {"mcp.db", [](const std::string& p) { return Drop(store::OpenToolPinStore(At(p))); }},
  };
  if (read_only_ledger) {
    out.push_back({"ledger.db", [](const std::string& p) {
                     return Drop(store::OpenLedgerStore(At(p), kReadOnly));
                   }});
  }
  return out;
}

class SchemaFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("custody_schema_fixture_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A private copy of a fixture file (the committed one is never opened).
  std::string Copy(const std::string& name) {
    fs::path to = dir_ / name;
    fs::remove(to);
    fs::copy_file(fs::path(CUSTODY_FIXTURE_DIR) / name, to);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(UserVersion(to.string()), 0) << name << " is not a file from before versions";
    return to.string();
  }
  static ledger::NoteVerifier Verifier() {
    std::string vkey = ReadFile(fs::path(CUSTODY_FIXTURE_DIR) / "ledger.vkey");
    while (!vkey.empty() && vkey.back() == '\n') vkey.pop_back();
    return *ledger::NoteVerifier::FromVerifierKey(vkey);
  }

  fs::path dir_;
};

TEST_F(SchemaFixtureTest, LedgerIsMigratedAndKeepsItsLeavesAndCheckpoints) {
  std::string path = Copy("ledger.db");
  {
    auto store = store::OpenLedgerStore(At(path));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(*(*store)->LeafCount(), 7u);
    auto leaf = (*store)->GetLeaf(0);
    ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
    EXPECT_EQ(leaf->data, kFirstEvent);
    EXPECT_EQ(leaf->columns.kind, "fixture.note");
    EXPECT_EQ(leaf->columns.event_id, "fixture-1");
    auto decision = (*store)->GetLeaf(5);
    ASSERT_TRUE(decision.ok()) << decision.status().ToString();
    EXPECT_EQ(decision->columns.kind, "action.decision");
    EXPECT_EQ(decision->columns.session, kSession);
    EXPECT_EQ(decision->columns.agent, kAgent);
    auto found = (*store)->FindLeaves(store::LedgerStore::Column::kSession, kSession, "");
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(*found, (std::vector<uint64_t>{3, 5, 6}));
    auto latest = (*store)->LatestCheckpoint();
    ASSERT_TRUE(latest.ok() && latest->has_value());
    EXPECT_EQ((*latest)->size, 7u);
    auto origin = (*store)->GetMeta("origin");
    ASSERT_TRUE(origin.ok() && origin->has_value());
    auto report = ledger::VerifyLedger(**store, Verifier(), **origin);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->leaves, 7u);
    EXPECT_EQ(report->checkpoints, 7u);
  }
  EXPECT_EQ(UserVersion(path), kCurrentVersion);
  // A migrated file opens again, for writing and read-only.
  auto again = store::OpenLedgerStore(At(path));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  again->reset();
  auto ro = store::OpenLedgerStore(At(path), kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(*(*ro)->LeafCount(), 7u);
}

TEST_F(SchemaFixtureTest, ReadOnlyLedgerOpenReadsAnOldFileWithoutWritingIt) {
  std::string path = Copy("ledger.db");
  std::string before = ReadFile(path);
  {
    auto store = store::OpenLedgerStore(At(path), kReadOnly);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto origin = (*store)->GetMeta("origin");
    ASSERT_TRUE(origin.ok() && origin->has_value());
    auto report = ledger::VerifyLedger(**store, Verifier(), **origin);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->leaves, 7u);
  }
  EXPECT_EQ(UserVersion(path), 0);
  EXPECT_TRUE(ReadFile(path) == before) << "a read-only open changed the file";
}

TEST_F(SchemaFixtureTest, CliLedgerVerifyWorksOnAFixtureCopy) {
  std::string path = Copy("ledger.db");
  std::string vkey = (fs::path(CUSTODY_FIXTURE_DIR) / "ledger.vkey").string();
  std::string out;
  ASSERT_EQ(
      testing::RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", path, "--vkey", vkey}, &out),
      0)
      << out;
  EXPECT_NE(out.find("\"ok\":true,\"leaves\":7,\"checkpoints\":7"), std::string::npos) << out;
  EXPECT_EQ(UserVersion(path), 0);  // verify only reads

  SetUserVersion(path, 99);
  EXPECT_NE(
      testing::RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", path, "--vkey", vkey}, &out),
      0);
  EXPECT_NE(out.find("has schema version 99, newer than version 1"), std::string::npos) << out;
  EXPECT_EQ(UserVersion(path), 99);
}

TEST_F(SchemaFixtureTest, IdentityIsMigratedAndKeepsItsAgentSessionAndKey) {
  std::string path = Copy("identity.db");
  {
    auto store = store::OpenIdentityStore(At(path));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto agent = (*store)->GetAgent(kAgent);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    EXPECT_EQ(agent->environment, identity::Environment::kDev);
    EXPECT_EQ(agent->business_owner, "ops");
    EXPECT_TRUE(agent->HasPermission("assert_initiator"));
    EXPECT_FALSE(agent->client_secret_sha256.empty());
    EXPECT_FALSE(agent->disabled);
    auto session = (*store)->GetSession(kSession);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    EXPECT_EQ(session->agent, kAgent);
    EXPECT_EQ(session->initiator, "alice@example.com");
    EXPECT_FALSE(session->revoked);
    auto keys = (*store)->ListSigningKeys();
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    ASSERT_EQ(keys->size(), 1u);
    EXPECT_NE((*keys)[0].private_pem.find("PRIVATE KEY"), std::string::npos);
    // Version 2's tables are there and empty.
    EXPECT_TRUE((*store)->ListConsents()->empty());
    EXPECT_EQ((*store)->FindRefreshToken(std::string(64, '0')).status().code(),
              StatusCode::kNotFound);
  }
  EXPECT_EQ(UserVersion(path), kIdentityVersion);
}

TEST_F(SchemaFixtureTest, AdminTokensAreMigratedAndKeepTheQuickstartToken) {
  std::string path = Copy("custody.db");
  {
    auto store = store::OpenAdminTokenStore(At(path), /*create_if_missing=*/false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto token = (*store)->Get(kAdminTokenId);
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    ASSERT_TRUE(token->has_value());
    EXPECT_EQ((*token)->role, "admin");
    EXPECT_EQ((*token)->label, "quickstart");
    EXPECT_FALSE((*token)->revoked_unix_ms.has_value());
    EXPECT_NE((*token)->hash, crypto::Sha256Digest{});
    EXPECT_TRUE((*store)->CheckWritable().ok());
  }
  EXPECT_EQ(UserVersion(path), kCurrentVersion);
}

TEST_F(SchemaFixtureTest, AttributionIsMigratedAndKeepsItsPolicySetAndAction) {
  std::string path = Copy("attribution.db");
  {
    auto store = store::OpenAttributionStore(At(path));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto active = (*store)->ActivePolicySet();
    ASSERT_TRUE(active.ok()) << active.status().ToString();
    ASSERT_TRUE(active->has_value());
    EXPECT_EQ((*active)->hash, kPolicyHash);
    EXPECT_NE((*active)->policies.find("work-on-github"), std::string::npos);
    EXPECT_EQ((*active)->ledger_index, 4);
    auto action = (*store)->GetAction(kActionId);
    ASSERT_TRUE(action.ok()) << action.status().ToString();
    ASSERT_TRUE(action->has_value());
    EXPECT_EQ((*action)->decision, "allow");
    EXPECT_EQ((*action)->target, "github/create_issue");
    EXPECT_EQ((*action)->decision_index, 5);
    EXPECT_EQ((*action)->outcome_index, 6);
    EXPECT_EQ((*action)->status, "ok");
    EXPECT_EQ(*(*store)->HasUsed(kAgent, "github/create_issue"), true);
  }
  EXPECT_EQ(UserVersion(path), kAttributionVersion);
}

TEST_F(SchemaFixtureTest, ToolPinsAreMigrated) {
  std::string path = Copy("mcp.db");
  {
    auto store = store::OpenToolPinStore(At(path));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto pins = (*store)->List(store::PinKind::kTool);
    ASSERT_TRUE(pins.ok()) << pins.status().ToString();
    EXPECT_TRUE(pins->empty());  // the fixture server had no MCP upstream
    auto seen =
        (*store)->Observe(store::PinKind::kTool, "github", "create_issue", std::string(64, 'a'), 1);
    ASSERT_TRUE(seen.ok()) << seen.status().ToString();
    EXPECT_TRUE(seen->first_seen);
  }
  EXPECT_EQ(UserVersion(path), kMcpVersion);
}

TEST_F(SchemaFixtureTest, ANewFileGetsTheCurrentVersion) {
  for (const Opener& o : Openers(/*read_only_ledger=*/false)) {
    SCOPED_TRACE(o.file);
    std::string path = (dir_ / o.file).string();
    Status st = o.open(path);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(UserVersion(path), CurrentVersion(o.file));
    st = o.open(path);  // and opens again as it is
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_F(SchemaFixtureTest, AFileFromANewerCustodyIsRefusedUntouched) {
  for (const Opener& o : Openers(/*read_only_ledger=*/true)) {
    SCOPED_TRACE(o.file);
    std::string path = Copy(o.file);
    SetUserVersion(path, 99);
    std::string before = ReadFile(path);
    Status st = o.open(path);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
    EXPECT_NE(st.message().find(path + " has schema version 99, newer than version " +
                                std::to_string(CurrentVersion(o.file))),
              std::string::npos)
        << st.ToString();
    EXPECT_EQ(UserVersion(path), 99);
    EXPECT_TRUE(ReadFile(path) == before) << "a refused open changed the file";
  }
}

}  // namespace
}  // namespace custody
