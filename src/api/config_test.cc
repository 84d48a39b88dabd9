#include "api/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace custody::api {
namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("custody_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsAreLoopbackAndLocalDataDir) {
  auto c = LoadConfig({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:8750");
  EXPECT_EQ(c->data_dir, "./custody-data");
  EXPECT_EQ(c->TokenDbPath(), "./custody-data/custody.db");
  EXPECT_EQ(c->log.level, "info");
  EXPECT_FALSE(c->admin.protect_reads);
}

TEST(Config, FileThenEnvironmentThenFlags) {
  std::string path = WriteTemp("layers.toml", R"(
listen = "127.0.0.1:9000"
data_dir = "/tmp/a"
[ledger]
batch_size = 128
origin = "example.com/log"
[log]
level = "debug"
[admin]
protect_reads = true
)");
  ConfigSources s;
  s.file = path;
  s.env = {{"CUSTODY_LISTEN", "127.0.0.1:9001"},
           {"CUSTODY_LEDGER_BATCH_SIZE", "64"},
           {"CUSTODY_SOURCE_DIR", "/ignored"}};
  s.overrides = {{"listen", "127.0.0.1:0"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:0");  // flag beats env beats file
  EXPECT_EQ(c->ledger.batch_size, 64);  // env beats file
  EXPECT_EQ(c->data_dir, "/tmp/a");     // file beats default
  EXPECT_EQ(c->ledger.origin, "example.com/log");
  EXPECT_EQ(c->log.level, "debug");
  EXPECT_TRUE(c->admin.protect_reads);
}

TEST(Config, McpServersAreTablesOfCommandArgsAndEnv) {
  auto c = ParseConfigToml(R"([mcp]
request_timeout_ms = 5000
[mcp.servers.everything]
command = "node"
args = ["dist/index.js", "stdio"]
env = { A = "1" }
)",
                           "m.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->mcp.request_timeout_ms, 5000);
  ASSERT_EQ(c->mcp.servers.count("everything"), 1u);
  const auto& s = c->mcp.servers.at("everything");
  EXPECT_EQ(s.command, "node");
  EXPECT_EQ(s.args, (std::vector<std::string>{"dist/index.js", "stdio"}));
  EXPECT_EQ(s.env.at("A"), "1");
  EXPECT_EQ(c->McpAudience(), "https://custody.local/mcp");

  auto typo = ParseConfigToml("[mcp.servers.x]\ncommand = \"n\"\ncomand = \"n\"\n", "t.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("t.toml:3:"), std::string::npos);
  EXPECT_NE(typo.status().message().find("unknown key mcp.servers.x.comand"), std::string::npos);
  auto nocmd = ParseConfigToml("[mcp.servers.x]\nargs = [\"a\"]\n", "n.toml");
  ASSERT_FALSE(nocmd.ok());
  EXPECT_NE(nocmd.status().message().find("needs exactly one of command"), std::string::npos);
  auto badargs = ParseConfigToml("[mcp.servers.x]\ncommand = \"n\"\nargs = [1]\n", "b.toml");
  ASSERT_FALSE(badargs.ok());
  EXPECT_NE(badargs.status().message().find("array of strings"), std::string::npos);
  auto badname = ParseConfigToml("[mcp.servers.\"a/b\"]\ncommand = \"n\"\n", "x.toml");
  ASSERT_FALSE(badname.ok());
}

TEST(Config, McpServersMayBeRemoteUrlsWithHeaders) {
  auto c = ParseConfigToml(R"([mcp.servers.remote]
url = "https://tools.example.com/mcp"
headers = { Authorization = "Bearer ${UPSTREAM_TOKEN}" }
ca_file = "/etc/custody/upstream-ca.pem"
)",
                           "r.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& s = c->mcp.servers.at("remote");
  EXPECT_EQ(s.url, "https://tools.example.com/mcp");
  EXPECT_EQ(s.headers.at("Authorization"), "Bearer ${UPSTREAM_TOKEN}");
  EXPECT_EQ(s.ca_file, "/etc/custody/upstream-ca.pem");
  EXPECT_TRUE(s.command.empty());

  auto both =
      ParseConfigToml("[mcp.servers.x]\ncommand = \"n\"\nurl = \"http://h/mcp\"\n", "b.toml");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("exactly one of command"), std::string::npos);
  auto scheme = ParseConfigToml("[mcp.servers.x]\nurl = \"ftp://h/mcp\"\n", "s.toml");
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.status().message().find("http:// or https://"), std::string::npos);
  auto stray =
      ParseConfigToml("[mcp.servers.x]\ncommand = \"n\"\nheaders = { A = \"b\" }\n", "h.toml");
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.status().message().find("url servers only"), std::string::npos);
}

TEST(Config, UnknownKeysAndBadValuesAreErrorsWithPositions) {
  auto c = ParseConfigToml("listen = \"x\"\nlisten_addr = \"y\"\n", "a.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("a.toml:2:1"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("unknown key listen_addr"), std::string::npos);
  c = ParseConfigToml("[nope]\nx = 1\n", "b.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("unknown section [nope]"), std::string::npos);
  c = ParseConfigToml("[ledger]\nbatch_size = \"big\"\n", "c.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("c.toml:2:"), std::string::npos);
  EXPECT_NE(c.status().message().find("must be an integer"), std::string::npos);
  c = ParseConfigToml("listen = \n", "d.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("d.toml:1:"), std::string::npos) << c.status().message();

  ConfigSources s;
  s.env = {{"CUSTODY_WORKER_THREADS", "many"}};
  auto e = LoadConfig(s);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("CUSTODY_WORKER_THREADS"), std::string::npos);
  s.env = {{"CUSTODY_LOG_LEVEL", "loud"}};
  EXPECT_FALSE(LoadConfig(s).ok());
  s.env = {{"CUSTODY_TLS_CERT", "/x.pem"}};
  EXPECT_FALSE(LoadConfig(s).ok());  // a certificate without a key
  s.env = {};
  s.overrides = {{"no.such", "1"}};
  EXPECT_FALSE(LoadConfig(s).ok());
  s.overrides = {{"ledger.batch_size", "0"}};
  EXPECT_FALSE(LoadConfig(s).ok());
  s.overrides = {};
  s.file = "/nonexistent/custody.toml";
  auto f = LoadConfig(s);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent/custody.toml"), std::string::npos);
}

TEST(Config, ParseListen) {
  auto hp = ParseListen("127.0.0.1:8750");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 8750);
  hp = ParseListen("[::1]:0");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 0);
  EXPECT_EQ(ParseListen("localhost:1")->host, "127.0.0.1");
  EXPECT_FALSE(ParseListen("127.0.0.1").ok());
  EXPECT_FALSE(ParseListen("127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseListen(":80").ok());
  EXPECT_FALSE(ParseListen("::1:80").ok());
}

}  // namespace
}  // namespace custody::api
