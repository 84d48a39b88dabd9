// `custody serve` on PostgreSQL: the real binary with storage.backend = postgres against a real
// server (a throwaway cluster, store/testing/pg_cluster.h; under CTest the fixture's), one fresh
// database per test. What a user notices: the server starts, keeps what it acknowledged across a
// SIGKILL, writes no SQLite file, never shows the database password, and a database it cannot
// reach stops it with a clear error. Private keys are stored wrapped with the key-encryption key
// (two nodes with one KEK sign with one ledger key and publish one JWKS; another KEK, a KEK file
// others can read, or none at all stop it); the schema is upgraded by `custody migrate`, not by
// a node restarting; `custody ledger` reads and verifies a PostgreSQL ledger.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "serve_util.h"
#include "store/postgres/pg_db.h"
#include "store/testing/pg_cluster.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Get;
using testing::PostJson;
using testing::RunCommand;
using testing::ServeProcess;
using testing::TempDir;

constexpr const char* kPassword = "s3cret-pg-pw";
// Two key-encryption keys, as 64 hex digits (the other encoding, base64, in KekFile).
const std::string kKek(64, 'a');
const std::string kOtherKek(64, 'b');

// A fresh database's URL with a password in it (the test cluster trusts loopback, so the
// password is accepted and ignored: it is there to be kept out of every output).
std::string DatabaseUrl() {
  auto cluster = store::testing::PgCluster::Shared();
  EXPECT_TRUE(cluster.ok()) << cluster.status().ToString();
  if (!cluster.ok()) return "";
  auto url = (*cluster)->NewDatabase();
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  if (!url.ok()) return "";
  std::string u = *url;
  return u.replace(u.find("custody@"), 8, std::string("custody:") + kPassword + "@");
}

uint64_t CheckpointSize(ServeProcess& s) {
  auto r = s.Client().Send(Get("/v1/ledger/checkpoint"));
  EXPECT_TRUE(r.ok() && r->status == 200);
  if (!r.ok()) return 0;
  // The C2SP checkpoint: origin, size, root.
  size_t nl = r->body.find('\n');
  return std::stoull(r->body.substr(nl + 1, r->body.find('\n', nl + 1) - nl - 1));
}

// A KEK file holding 32 bytes in base64, with `mode`.
fs::path KekFile(const fs::path& dir, const std::string& name, mode_t mode, char fill = 'k') {
  fs::create_directories(dir);
  fs::path p = dir / name;
  {
    std::ofstream out(p);
    // 44 base64 characters: 32 bytes.
    out << std::string(43, fill) << "=\n";
  }
  ::chmod(p.c_str(), mode);
  return p;
}

std::unique_ptr<store::PgDb> Db(const std::string& url) {
  auto db = store::PgDb::Open(url);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

// Everything a refused start could have written, to compare before and after.
std::string DatabaseState(store::PgDb& db) {
  std::string out;
  for (const char* q :
       {"SELECT count(*) FROM ledger_leaves", "SELECT count(*) FROM ledger_meta",
        "SELECT count(*) FROM signing_keys", "SELECT count(*) FROM admin_tokens",
        "SELECT string_agg(component || '=' || version, ',' ORDER BY component) FROM "
        "custody_schema",
        "SELECT encode(value, 'hex') FROM ledger_meta WHERE key = 'wrapped_signing_key'"}) {
    auto rows = db.Exec("state", q);
    EXPECT_TRUE(rows.ok()) << q << ": " << rows.status().ToString();
    if (rows.ok() && rows->size() > 0) out += std::string(rows->Text(0, 0)) + ";";
  }
  return out;
}

// The whole output of a process that stopped (or never started).
std::string AllOutput(ServeProcess& s) {
  std::string all;
  for (const std::string& line : s.DrainOutput()) all += line + "\n";
  return all;
}

std::string Jwks(ServeProcess& s) {
  auto r = s.Client().Send(Get("/.well-known/jwks.json"));
  EXPECT_TRUE(r.ok() && r->status == 200);
  return r.ok() ? r->body : "";
}

// Sets an environment variable for one test, and unsets it at the end.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServePostgres, KeepsWhatItAcknowledgedAcrossSigkillAndWritesNoSqliteFile) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ::setenv("CUSTODY_STORAGE_POSTGRES_URL", url.c_str(), 1);
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres");
  fs::path dir = root / "data";  // created by custody serve, mode 0700
  const std::vector<std::string> flags = {"--set", "storage.backend=postgres"};
  uint64_t size = 0;
  std::string admin;
  {
    ServeProcess s(dir, flags, /*quickstart=*/true, /*merge_stderr=*/true);
    ASSERT_TRUE(s.started());
    admin = s.token();
    for (int n = 1; n <= 2; ++n) {
      auto appended =
          s.Client().Send(PostJson(R"({"kind":"pg-e2e","n":)" + std::to_string(n) + "}", admin));
      ASSERT_TRUE(appended.ok());
      ASSERT_EQ(appended->status, 201) << appended->body;
      EXPECT_NE(appended->body.find("\"receipt\""), std::string::npos) << appended->body;
    }
    json::object agent{{"name", "pg-agent"},        {"description", "on postgres"},
                       {"environment", "dev"},      {"grants", json::array{"tools/*"}},
                       {"max_delegation_depth", 2}, {"client_secret", true}};
    auto registered = s.Client().Send(PostJson(json::serialize(agent), admin, "/v1/agents"));
    ASSERT_TRUE(registered.ok());
    ASSERT_EQ(registered->status, 201) << registered->body;
    size = CheckpointSize(s);
    EXPECT_GE(size, 3u);  // the two events and the registration
    s.Stop(SIGKILL);
    for (const std::string& line : s.DrainOutput()) {
      EXPECT_EQ(line.find(kPassword), std::string::npos) << line;
      // libpq's notices (schema steps' "already exists, skipping") are not log lines.
      EXPECT_EQ(line.find("NOTICE"), std::string::npos) << line;
    }
    for (const std::string& line : s.lines()) {
      EXPECT_EQ(line.find(kPassword), std::string::npos) << line;
    }
  }
  for (const char* f :
       {"ledger.db", "identity.db", "attribution.db", "custody.db", "mcp.db", "ledger.key"}) {
    EXPECT_FALSE(fs::exists(dir / f)) << f << " was written although storage is PostgreSQL";
  }
  // The private keys are in the database, wrapped: no PEM, and the wrapped form's prefix.
  {
    auto db = Db(url);
    ASSERT_TRUE(db);
    auto keys = db->Exec("keys", "SELECT private_pem FROM signing_keys");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    ASSERT_GE(keys->size(), 1);
    for (int i = 0; i < keys->size(); ++i) {
      std::string stored(keys->Text(i, 0));
      EXPECT_EQ(stored.find("PRIVATE KEY"), std::string::npos) << stored;
      EXPECT_EQ(stored.rfind("cwk1:", 0), 0u) << stored;
    }
    auto meta = db->Exec("meta", "SELECT key, value FROM ledger_meta");
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    bool have_ledger_key = false;
    for (int i = 0; i < meta->size(); ++i) {
      std::vector<uint8_t> v = meta->Bytes(i, 1);
      std::string value(v.begin(), v.end());
      EXPECT_EQ(value.find("PRIVATE KEY"), std::string::npos) << meta->Text(i, 0);
      if (meta->Text(i, 0) == "wrapped_signing_key") {
        have_ledger_key = true;
        EXPECT_EQ(value.rfind("cwk1:", 0), 0u) << value;
      }
    }
    EXPECT_TRUE(have_ledger_key);
  }
  // Restarted on the same database: the same ledger, the same agent, the same admin token.
  ServeProcess again(dir, flags, /*quickstart=*/true);
  ASSERT_TRUE(again.started());
  EXPECT_EQ(CheckpointSize(again), size);
  auto agent = again.Client().Send([&] {
    auto r = Get("/v1/agents/pg-agent");
    r.headers.Set("Authorization", "Bearer " + admin);
    return r;
  }());
  ASSERT_TRUE(agent.ok());
  EXPECT_EQ(agent->status, 200) << agent->body;
  EXPECT_NE(agent->body.find("on postgres"), std::string::npos) << agent->body;
  ::unsetenv("CUSTODY_STORAGE_POSTGRES_URL");
  fs::remove_all(root);
}

TEST(ServePostgres, AnUnreachableDatabaseStopsItWithAClearErrorWithoutThePassword) {
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres-down");
  ServeProcess s(root / "data",
                 {"--set", "storage.backend=postgres", "--set",
                  std::string("storage.postgres_url=postgresql://custody:") + kPassword +
                      "@127.0.0.1:1/custody"},
                 /*quickstart=*/true, /*merge_stderr=*/true);
  EXPECT_FALSE(s.started());
  int status = s.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  std::string all;
  for (const std::string& line : s.lines()) all += line + "\n";
  for (const std::string& line : s.DrainOutput()) all += line + "\n";
  EXPECT_NE(all.find("127.0.0.1:1/custody"), std::string::npos) << all;
  EXPECT_EQ(all.find(kPassword), std::string::npos) << all;
  fs::remove_all(root);
}

TEST(ServePostgres, NodesWithOneKekShareTheLedgerKeyAndJwksAndAnotherKekIsRefusedWritingNothing) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  fs::path root = TempDir("serve-postgres-kek");
  fs::path kek = KekFile(root / "secrets", "kek", 0600);
  const std::vector<std::string> flags = {"--set", "storage.backend=postgres", "--set",
                                          "storage.key_encryption_key_file=" + kek.string()};
  ServeProcess a(root / "a", flags);
  ASSERT_TRUE(a.started());
  ServeProcess b(root / "b", flags);  // another node: its own data directory, the same database
  ASSERT_TRUE(b.started());
  EXPECT_FALSE(a.vkey().empty());
  EXPECT_EQ(a.vkey(), b.vkey()) << "two nodes of one deployment sign with two ledger keys";
  std::string jwks = Jwks(a);
  EXPECT_NE(jwks.find("\"kid\""), std::string::npos) << jwks;
  EXPECT_EQ(Jwks(b), jwks);
  // What node A signs, node B's verifier key checks: the checkpoint names its origin and
  // carries a signature line of that key's name.
  auto appended = a.Client().Send(PostJson(R"({"kind":"kek-e2e"})", a.token()));
  ASSERT_TRUE(appended.ok());
  ASSERT_EQ(appended->status, 201) << appended->body;
  auto cp = a.Client().Send(Get("/tlog/checkpoint"));
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->status, 200) << cp->body;
  const std::string origin = b.vkey().substr(0, b.vkey().find('+'));
  EXPECT_EQ(cp->body.substr(0, cp->body.find('\n')), origin);
  EXPECT_NE(cp->body.find("\u2014 " + origin + " "), std::string::npos) << cp->body;

  // A third node with another KEK (the same file name, other bytes) stops, names the cause and
  // writes nothing to the database.
  auto db = Db(url);
  ASSERT_TRUE(db);
  std::string state = DatabaseState(*db);
  fs::path other = KekFile(root / "other", "kek", 0600, 'A');
  ServeProcess c(root / "c",
                 {"--set", "storage.backend=postgres", "--set",
                  "storage.key_encryption_key_file=" + other.string()},
                 /*quickstart=*/true, /*merge_stderr=*/true);
  EXPECT_FALSE(c.started());
  int status = c.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  std::string out = AllOutput(c);
  EXPECT_NE(out.find("the key encryption key does not open the stored ledger key: wrong key?"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find(kPassword), std::string::npos) << out;
  EXPECT_EQ(DatabaseState(*db), state);

  // The same key given through the environment instead of the file opens it.
  {
    ScopedEnv env_kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", std::string(43, 'k') + "=");
    ServeProcess d(root / "d", {"--set", "storage.backend=postgres"});
    ASSERT_TRUE(d.started());
    EXPECT_EQ(d.vkey(), a.vkey());
  }
  fs::remove_all(root);
}

TEST(ServePostgres, AKekFileOthersCanReadOrNoKekAtAllIsRefusedWithAClearError) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  fs::path root = TempDir("serve-postgres-kek-mode");
  fs::path kek = KekFile(root / "secrets", "kek", 0644);
  {
    ServeProcess s(root / "data",
                   {"--set", "storage.backend=postgres", "--set",
                    "storage.key_encryption_key_file=" + kek.string()},
                   /*quickstart=*/true, /*merge_stderr=*/true);
    EXPECT_FALSE(s.started());
    int status = s.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
    std::string out = AllOutput(s);
    EXPECT_NE(out.find("mode 0644"), std::string::npos) << out;
    EXPECT_NE(out.find("0600"), std::string::npos) << out;
  }
  {
    ServeProcess s(root / "data", {"--set", "storage.backend=postgres"}, /*quickstart=*/true,
                   /*merge_stderr=*/true);
    EXPECT_FALSE(s.started());
    int status = s.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
    std::string out = AllOutput(s);
    EXPECT_NE(out.find("storage.key_encryption_key_file"), std::string::npos) << out;
    EXPECT_NE(out.find("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY"), std::string::npos) << out;
  }
  {
    // Both ways at once: which one wins would be a guess.
    ScopedEnv env_kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
    ::chmod(kek.c_str(), 0600);
    ServeProcess s(root / "data",
                   {"--set", "storage.backend=postgres", "--set",
                    "storage.key_encryption_key_file=" + kek.string()},
                   /*quickstart=*/true, /*merge_stderr=*/true);
    EXPECT_FALSE(s.started());
    int status = s.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
    std::string out = AllOutput(s);
    EXPECT_NE(out.find("not both"), std::string::npos) << out;
    EXPECT_EQ(out.find(kKek), std::string::npos) << out;
  }
  // Nothing was created in the database by any of these refusals.
  auto db = Db(url);
  ASSERT_TRUE(db);
  auto tables = db->Exec("tables", "SELECT to_regclass('custody_schema') IS NULL");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->Text(0, 0), "t");
  fs::remove_all(root);
}

// `custody migrate` with the same flags as serve; its JSON lines by component.
std::map<std::string, std::pair<int64_t, int64_t>> Migrate(const fs::path& data,
                                                           const std::vector<std::string>& flags,
                                                           int* rc, std::string* raw) {
  std::vector<std::string> argv = {CUSTODY_BINARY, "migrate", "--data-dir", data.string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  *rc = RunCommand(argv, raw);
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  size_t pos = 0;
  while (pos < raw->size()) {
    size_t nl = raw->find('\n', pos);
    if (nl == std::string::npos) nl = raw->size();
    std::string line = raw->substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("{\"component\"", 0) != 0) continue;
    auto o = json::parse(line).as_object();
    out[std::string(o.at("component").as_string())] = {o.at("from").as_int64(),
                                                       o.at("to").as_int64()};
  }
  return out;
}

TEST(ServePostgres, AnOlderSchemaIsRefusedNamingMigrateAndMigrateOrServeMigrateUpgradesIt) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres-migrate");
  const std::vector<std::string> flags = {"--set", "storage.backend=postgres"};
  // A fresh database is created by the first node (nothing to migrate from).
  {
    ServeProcess s(root / "data", flags);
    ASSERT_TRUE(s.started());
  }
  int rc = 0;
  std::string out;
  auto versions = Migrate(root / "data", flags, &rc, &out);
  EXPECT_EQ(rc, 0) << out;
  ASSERT_TRUE(versions.count("ledger")) << out;
  for (const auto& [component, v] : versions) EXPECT_EQ(v.first, v.second) << component;
  EXPECT_EQ(out.find(kPassword), std::string::npos) << out;

  // The database as an older release left it: without the MCP pins (component mcp_pins).
  auto db = Db(url);
  ASSERT_TRUE(db);
  const int64_t pins_version = versions["mcp_pins"].second;
  ASSERT_GE(pins_version, 1);
  auto Downgrade = [&] {
    ASSERT_TRUE(db->Exec("drop", "DROP TABLE mcp_pins").ok());
    ASSERT_TRUE(db->Exec("forget", "DELETE FROM custody_schema WHERE component = 'mcp_pins'").ok());
  };
  Downgrade();
  {
    ServeProcess s(root / "data", flags, /*quickstart=*/true, /*merge_stderr=*/true);
    EXPECT_FALSE(s.started());
    int status = s.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
    std::string all = AllOutput(s);
    EXPECT_NE(all.find("custody migrate"), std::string::npos) << all;
    EXPECT_NE(all.find("mcp_pins"), std::string::npos) << all;
    EXPECT_EQ(all.find(kPassword), std::string::npos) << all;
  }
  auto refused = db->Exec("pins", "SELECT to_regclass('mcp_pins') IS NULL");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->Text(0, 0), "t") << "a refused start migrated the schema anyway";

  versions = Migrate(root / "data", flags, &rc, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(versions["mcp_pins"], std::make_pair(int64_t{0}, pins_version)) << out;
  {
    ServeProcess s(root / "data", flags);
    EXPECT_TRUE(s.started());
  }
  // Or in one step: serve --migrate.
  Downgrade();
  {
    std::vector<std::string> with_migrate = flags;
    with_migrate.push_back("--migrate");
    ServeProcess s(root / "data", with_migrate);
    EXPECT_TRUE(s.started());
  }
  fs::remove_all(root);
}

TEST(ServePostgres, ANewerSchemaIsRefusedByServeAndMigrate) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres-newer");
  const std::vector<std::string> flags = {"--set", "storage.backend=postgres"};
  {
    ServeProcess s(root / "data", flags);
    ASSERT_TRUE(s.started());
  }
  auto db = Db(url);
  ASSERT_TRUE(db);
  ASSERT_TRUE(
      db->Exec("newer", "UPDATE custody_schema SET version = 99 WHERE component = 'ledger'").ok());
  for (bool migrate_flag : {false, true}) {
    std::vector<std::string> f = flags;
    if (migrate_flag) f.push_back("--migrate");
    ServeProcess s(root / "data", f, /*quickstart=*/true, /*merge_stderr=*/true);
    EXPECT_FALSE(s.started());
    int status = s.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
    std::string all = AllOutput(s);
    EXPECT_NE(all.find("newer than this custody"), std::string::npos) << all;
  }
  int rc = 0;
  std::string out;
  Migrate(root / "data", flags, &rc, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("newer than this custody"), std::string::npos) << out;
  fs::remove_all(root);
}

TEST(ServePostgres, LedgerCommandsReadAndVerifyAPostgresLedgerWithoutShowingThePassword) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres-ledger-cli");
  std::string vkey;
  {
    ServeProcess s(root / "data", {"--set", "storage.backend=postgres"});
    ASSERT_TRUE(s.started());
    vkey = s.vkey();
    for (int n = 1; n <= 5; ++n) {
      auto r =
          s.Client().Send(PostJson(R"({"kind":"cli","n":)" + std::to_string(n) + "}", s.token()));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 201) << r->body;
    }
  }
  auto Ledger = [&](std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {CUSTODY_BINARY, "ledger"};
    argv.insert(argv.end(), args.begin(), args.end());
    int rc = RunCommand(argv, out);
    EXPECT_EQ(out->find(kPassword), std::string::npos) << *out;
    return rc;
  };
  std::string out;
  ASSERT_EQ(Ledger({"verify", "--postgres-url", url, "--vkey", vkey}, &out), 0) << out;
  auto report = json::parse(out).as_object();
  EXPECT_TRUE(report.at("ok").as_bool());
  const int64_t leaves = report.at("leaves").as_int64();
  EXPECT_GE(leaves, 5);

  ASSERT_EQ(Ledger({"checkpoint", "--postgres-url", url}, &out), 0) << out;
  EXPECT_EQ(out.substr(0, out.find('\n')), vkey.substr(0, vkey.find('+')));
  EXPECT_NE(out.find("\n" + std::to_string(leaves) + "\n"), std::string::npos) << out;

  ASSERT_EQ(Ledger({"proof", "--postgres-url", url, "--index", "2"}, &out), 0) << out;
  auto proof = json::parse(out).as_object();
  EXPECT_EQ(proof.at("size").as_int64(), leaves);
  EXPECT_FALSE(proof.at("hashes").as_array().empty());
  // The receipt verifies offline against the verifier key (custody ledger verify-receipt needs
  // the event; here the receipt's checkpoint must carry the node's signature line).
  EXPECT_NE(proof.at("receipt").as_string().find("\u2014 "), std::string::npos) << out;

  ASSERT_EQ(
      Ledger({"consistency", "--postgres-url", url, "--from", "2", "--to", std::to_string(leaves)},
             &out),
      0)
      << out;
  EXPECT_FALSE(json::parse(out).as_object().at("hashes").as_array().empty());

  // Verification needs a key from outside the database, and the wrong one fails.
  EXPECT_NE(Ledger({"verify", "--postgres-url", url}, &out), 0);
  EXPECT_NE(out.find("--vkey"), std::string::npos) << out;
  std::string other = vkey;
  other.back() = other.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(Ledger({"verify", "--postgres-url", url, "--vkey", other}, &out), 0) << out;
  // One source only; an unreachable server is an error without the password.
  EXPECT_EQ(Ledger({"checkpoint", "--postgres-url", url, "--db", "x.db"}, &out), 2) << out;
  std::string down = std::string("postgresql://custody:") + kPassword + "@127.0.0.1:1/custody";
  EXPECT_NE(Ledger({"checkpoint", "--postgres-url", down}, &out), 0);
  EXPECT_NE(out.find("127.0.0.1:1/custody"), std::string::npos) << out;
  fs::remove_all(root);
}

TEST(ServePostgres, MigrateOnSqliteBringsEachFileToItsVersionAndNeedsTheDataDirectory) {
  fs::path root = TempDir("migrate-sqlite");
  fs::create_directories(root / "data");
  ::chmod((root / "data").c_str(), 0700);
  int rc = 0;
  std::string out;
  auto versions = Migrate(root / "data", {}, &rc, &out);
  EXPECT_EQ(rc, 0) << out;
  for (const char* c : {"admin_tokens", "ledger", "identity", "attribution", "mcp_pins"}) {
    ASSERT_TRUE(versions.count(c)) << c << " missing from " << out;
    EXPECT_EQ(versions[c].first, 0) << c;
    EXPECT_GE(versions[c].second, 1) << c;
  }
  EXPECT_TRUE(fs::exists(root / "data" / "ledger.db"));
  // Again: nothing left to do.
  auto again = Migrate(root / "data", {}, &rc, &out);
  EXPECT_EQ(rc, 0) << out;
  for (const auto& [component, v] : again) {
    EXPECT_EQ(v.first, v.second) << component;
    EXPECT_EQ(v.second, versions[component].second) << component;
  }
  // A data directory that is not there is an error, not a new set of files.
  Migrate(root / "typo", {}, &rc, &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(root / "typo"));
  fs::remove_all(root);
}

TEST(ServePostgres, NodesStartingTogetherOnAnEmptyDatabaseShareOneLedgerKeyAndOneSigningKey) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ScopedEnv pg("CUSTODY_STORAGE_POSTGRES_URL", url);
  ScopedEnv kek("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek);
  fs::path root = TempDir("serve-postgres-together");
  // Each node is started by its own thread, which stays alive while the node is in use: a
  // child started by a thread is killed when that thread ends (PR_SET_PDEATHSIG).
  std::vector<std::unique_ptr<ServeProcess>> nodes(3);
  std::vector<std::thread> starting;
  std::promise<void> done;
  std::shared_future<void> finished = done.get_future().share();
  std::vector<std::promise<void>> up(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    starting.emplace_back([&, i] {
      nodes[i] = std::make_unique<ServeProcess>(
          root / ("n" + std::to_string(i)),
          std::vector<std::string>{"--set", "storage.backend=postgres"});
      up[i].set_value();
      finished.wait();
      nodes[i].reset();
    });
  }
  struct JoinAtEnd {
    std::promise<void>& done;
    std::vector<std::thread>& threads;
    const fs::path& root;
    ~JoinAtEnd() {
      done.set_value();
      for (auto& t : threads) t.join();
      fs::remove_all(root);
    }
  } join_at_end{done, starting, root};
  for (auto& u : up) u.get_future().wait();
  for (auto& n : nodes) ASSERT_TRUE(n->started()) << "a node refused a schema another created";
  std::string jwks = Jwks(*nodes[0]);
  for (auto& n : nodes) {
    EXPECT_EQ(n->vkey(), nodes[0]->vkey());
    EXPECT_EQ(Jwks(*n), jwks);
  }
  auto db = Db(url);
  ASSERT_TRUE(db);
  auto keys = db->Exec("keys", "SELECT count(*) FROM signing_keys");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->Int(0, 0), 1);
}

}  // namespace
}  // namespace custody
