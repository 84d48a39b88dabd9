// `custody serve` on PostgreSQL: the real binary with storage.backend = postgres against a real
// server (a throwaway cluster, store/testing/pg_cluster.h; under CTest the fixture's), one fresh
// database per test. What a user notices: the server starts, keeps what it acknowledged across a
// SIGKILL, writes no SQLite file, never shows the database password, and a database it cannot
// reach stops it with a clear error.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <filesystem>

#include "serve_util.h"
#include "store/testing/pg_cluster.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Get;
using testing::PostJson;
using testing::ServeProcess;
using testing::TempDir;

constexpr const char* kPassword = "s3cret-pg-pw";

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

TEST(ServePostgres, KeepsWhatItAcknowledgedAcrossSigkillAndWritesNoSqliteFile) {
  std::string url = DatabaseUrl();
  ASSERT_FALSE(url.empty());
  ::setenv("CUSTODY_STORAGE_POSTGRES_URL", url.c_str(), 1);
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
  for (const char* f : {"ledger.db", "identity.db", "attribution.db", "custody.db", "mcp.db"}) {
    EXPECT_FALSE(fs::exists(dir / f)) << f << " was written although storage is PostgreSQL";
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

}  // namespace
}  // namespace custody
