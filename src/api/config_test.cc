#include "api/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include "store/stores.h"

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
  // No made-up host: unset, the issuer is the URL the service listens on (Service::Open).
  EXPECT_EQ(c->identity.issuer, "");
}

TEST(Config, IssuerIsTakenAsConfigured) {
  ConfigSources sources;
  sources.env = {{"CUSTODY_IDENTITY_ISSUER", "https://custody.example.com"}};
  auto c = LoadConfig(sources);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->identity.issuer, "https://custody.example.com");
  EXPECT_EQ(c->McpAudience(), "https://custody.example.com/mcp");
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
  EXPECT_EQ(c->McpAudience(), "/mcp");  // on a Config whose issuer Service has not resolved
  c->identity.issuer = "https://custody.example";
  EXPECT_EQ(c->McpAudience(), "https://custody.example/mcp");

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

// The key table is what the parser accepts: these tests go through every row, so a key added to
// one and not the other, or a default written down wrongly, fails here.

bool IsServerKey(const ConfigKey& k) { return k.name.starts_with("mcp.servers.NAME."); }
// A key of one [mcp.servers.NAME] or [oauth.clients."ID"] table: the file only.
bool IsFileOnlyKey(const ConfigKey& k) {
  return IsServerKey(k) || k.name.starts_with("oauth.clients.ID.") ||
         k.name.starts_with("console.idp_roles.");
}

// A value of the key's type that differs from its default, as --set or a variable gives it.
std::string OtherValue(const ConfigKey& k) {
  switch (k.type) {
    case ConfigType::kInteger:
      return std::to_string(std::stoll(std::string(k.default_text)) + 1);
    case ConfigType::kBoolean:
      return k.default_text == "true" ? "false" : "true";
    default:
      return "custody-test-value";
  }
}

// `text` (as --set would take it) as a TOML value of the key's type.
std::string TomlValue(const ConfigKey& k, std::string_view text) {
  switch (k.type) {
    case ConfigType::kInteger:
    case ConfigType::kBoolean:
      return std::string(text);
    case ConfigType::kStringArray:
      return "[\"" + std::string(text) + "\"]";
    case ConfigType::kStringTable:
      return "{ A = \"" + std::string(text) + "\" }";
    case ConfigType::kString:
      break;
  }
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

TEST(ConfigKeys, NamesAndEnvironmentVariablesAreUniqueAndFollowTheRule) {
  std::set<std::string_view> names, envs;
  for (const ConfigKey& k : ConfigKeys()) {
    SCOPED_TRACE(std::string(k.name));
    EXPECT_TRUE(names.insert(k.name).second) << "duplicate key";
    EXPECT_FALSE(k.description.empty());
    EXPECT_EQ(k.description.find('\n'), std::string_view::npos);
    if (IsFileOnlyKey(k)) {
      EXPECT_TRUE(k.env.empty()) << "server and client keys are file only";
      continue;
    }
    std::string expected = "CUSTODY_";
    for (char ch : k.name) {
      expected += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(k.env, expected);
    EXPECT_TRUE(envs.insert(k.env).second) << "duplicate variable";
  }
  // The keys the old hand-written list in config.h missed are here now.
  for (std::string_view key :
       {"identity.issuer", "identity.svid_lifetime_s", "identity.trusted_issuers_file",
        "mcp.await_outcome", "mcp.session_idle_timeout_ms", "mcp.max_sessions_per_custody_session",
        "mcp.servers.NAME.url", "mcp.servers.NAME.headers", "mcp.servers.NAME.ca_file"}) {
    EXPECT_EQ(names.count(key), 1u) << key;
  }
}

TEST(ConfigKeys, EveryKeyIsSettableAndItsDefaultIsConfigsDefault) {
  const Config defaults;
  auto loaded_defaults = LoadConfig({});
  ASSERT_TRUE(loaded_defaults.ok()) << loaded_defaults.status().ToString();
  EXPECT_EQ(*loaded_defaults, defaults);
  for (const ConfigKey& k : ConfigKeys()) {
    if (IsFileOnlyKey(k)) continue;
    SCOPED_TRACE(std::string(k.name));
    std::string other = OtherValue(k);

    // --set's path.
    Config c;
    Status st = SetConfigValue(c, k.name, other);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_NE(c, defaults) << "setting the key changed nothing";
    st = SetConfigValue(c, k.name, k.default_text);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(c, defaults) << "the table's default is not Config{}'s: " << k.default_text;
    // A value of another type is refused (so the row's type is the field's).
    if (k.type == ConfigType::kInteger) {
      EXPECT_FALSE(SetConfigValue(c, k.name, "true").ok());
    } else if (k.type == ConfigType::kBoolean) {
      EXPECT_FALSE(SetConfigValue(c, k.name, "2").ok());
    } else {
      EXPECT_TRUE(SetConfigValue(c, k.name, "not a number").ok());
    }

    // The file, as a dotted key.
    std::string toml = std::string(k.name) + " = " + TomlValue(k, other) + "\n";
    auto f = ParseConfigToml(toml, "k.toml");
    ASSERT_TRUE(f.ok()) << toml << f.status().ToString();
    EXPECT_NE(*f, defaults) << toml;
    toml = std::string(k.name) + " = " + TomlValue(k, k.default_text) + "\n";
    f = ParseConfigToml(toml, "k.toml");
    ASSERT_TRUE(f.ok()) << toml << f.status().ToString();
    EXPECT_EQ(*f, defaults) << toml;

    // The environment variable and the flag, through LoadConfig (which also validates, so a
    // changed value may be refused: then it was read).
    ConfigSources env;
    env.env = {{std::string(k.env), std::string(k.default_text)}};
    auto e = LoadConfig(env);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(*e, defaults);
    env.env = {{std::string(k.env), other}};
    e = LoadConfig(env);
    EXPECT_TRUE(!e.ok() || *e != defaults) << k.env << " was not read";
    ConfigSources flag;
    flag.overrides = {{std::string(k.name), std::string(k.default_text)}};
    auto o = LoadConfig(flag);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_EQ(*o, defaults);
    flag.overrides = {{std::string(k.name), other}};
    o = LoadConfig(flag);
    EXPECT_TRUE(!o.ok() || *o != defaults) << "--set " << k.name << " was not applied";

    // A near miss is refused everywhere.
    std::string typo = std::string(k.name) + "x";
    EXPECT_EQ(SetConfigValue(c, typo, other).message(), "unknown config key " + typo);
    flag.overrides = {{typo, other}};
    EXPECT_FALSE(LoadConfig(flag).ok());
    f = ParseConfigToml(typo + " = " + TomlValue(k, other) + "\n", "t.toml");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.status().message().find("unknown key " + typo), std::string::npos)
        << f.status().message();
  }
}

TEST(ConfigKeys, ServerKeysAreAcceptedInTheFileOnly) {
  int server_keys = 0;
  for (const ConfigKey& k : ConfigKeys()) {
    if (!IsServerKey(k)) continue;
    ++server_keys;
    SCOPED_TRACE(std::string(k.name));
    std::string key(k.name.substr(std::string_view("mcp.servers.NAME.").size()));
    // A key with choices takes its last one (not the default), any other a URL-like string.
    std::string_view sample =
        k.choices.empty() ? "http://h/x" : k.choices.substr(k.choices.rfind('|') + 1);
    std::string line = key + " = " + TomlValue(k, sample) + "\n";
    // A server needs exactly one of command and url; try the key alone, then with either.
    bool accepted = false;
    for (std::string companion : {"", "command = \"c\"\n", "url = \"http://h/mcp\"\n"}) {
      std::string toml = "[mcp.servers.s]\n" + companion + line;
      auto with = ParseConfigToml(toml, "s.toml");
      if (!with.ok()) continue;
      accepted = true;
      auto without = ParseConfigToml("[mcp.servers.s]\n" + companion, "s.toml");
      if (companion.empty()) {
        EXPECT_EQ(with->mcp.servers.count("s"), 1u);
      } else {
        ASSERT_TRUE(without.ok()) << without.status().ToString();
        EXPECT_NE(with->mcp.servers.at("s"), without->mcp.servers.at("s")) << "key ignored";
      }
    }
    EXPECT_TRUE(accepted) << "no [mcp.servers.s] with this key parses";
    // A value of another type is refused ("1" is none of string, array, table).
    auto wrong = ParseConfigToml("[mcp.servers.s]\n" + key + " = 1\n", "w.toml");
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.status().message().find("mcp.servers.s." + key + " must be "),
              std::string::npos)
        << wrong.status().message();
    // Neither a variable nor --set reaches it.
    Config c;
    EXPECT_FALSE(SetConfigValue(c, "mcp.servers.s." + key, "x").ok());
    EXPECT_FALSE(SetConfigValue(c, k.name, "x").ok());
  }
  EXPECT_EQ(server_keys, 9);
  // protocol is one of its choices.
  auto bad = ParseConfigToml("[mcp.servers.s]\ncommand = \"c\"\nprotocol = \"2024\"\n", "p.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("protocol must be \"auto\", \"2026-07-28\" or \"2025\""),
            std::string::npos)
      << bad.status().message();
  // So is identity, and an unknown one is named by its key.
  auto unknown =
      ParseConfigToml("[mcp.servers.s]\ncommand = \"c\"\nidentity = \"bearer\"\n", "i.toml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(
      unknown.status().message().find("mcp.servers.s.identity must be \"none\" or \"txn-token\""),
      std::string::npos)
      << unknown.status().message();
  auto txn = ParseConfigToml(
      "[mcp.servers.s]\nurl = \"http://h/mcp\"\nidentity = \"txn-token\"\n"
      "txn_audience = \"https://tools.example\"\n",
      "t.toml");
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  EXPECT_EQ(txn->mcp.servers.at("s").identity, "txn-token");
  EXPECT_EQ(txn->mcp.servers.at("s").txn_audience, "https://tools.example");
  EXPECT_EQ(Config::McpServer{}.identity, "none");
}

TEST(ConfigKeys, CheckedRangesAndChoicesComeFromTheTable) {
  for (const ConfigKey& k : ConfigKeys()) {
    if (IsServerKey(k)) continue;
    SCOPED_TRACE(std::string(k.name));
    ConfigSources s;
    if (k.type == ConfigType::kInteger && k.max != INT64_MAX) {
      s.overrides = {{std::string(k.name), std::to_string(k.max + 1)}};
      auto c = LoadConfig(s);
      ASSERT_FALSE(c.ok());
      EXPECT_EQ(c.status().message(), std::string(k.name) + " must be in [" +
                                          std::to_string(k.min) + ", " + std::to_string(k.max) +
                                          "], got " + std::to_string(k.max + 1));
      s.overrides = {{std::string(k.name), std::to_string(k.min)}};
      EXPECT_TRUE(LoadConfig(s).ok());
    }
    if (!k.choices.empty()) {
      s.overrides = {{std::string(k.name), "none-of-them"}};
      EXPECT_FALSE(LoadConfig(s).ok());
      for (size_t pos = 0; pos <= k.choices.size();) {
        size_t bar = std::min(k.choices.find('|', pos), k.choices.size());
        s.overrides = {{std::string(k.name), std::string(k.choices.substr(pos, bar - pos))}};
        // A choice that needs a companion key gets it.
        if (s.overrides[0].second == "postgres") {
          s.overrides.emplace_back("storage.postgres_url", "postgresql://db.example/custody");
        }
        EXPECT_TRUE(LoadConfig(s).ok()) << s.overrides[0].second;
        pos = bar + 1;
      }
    }
    if (k.non_empty) {
      s.overrides = {{std::string(k.name), ""}};
      auto c = LoadConfig(s);
      ASSERT_FALSE(c.ok());
      EXPECT_EQ(c.status().message(), std::string(k.name) + " must not be empty");
    }
  }
  // The messages the hand-written checks gave.
  ConfigSources s;
  s.overrides = {{"log.level", "loud"}};
  EXPECT_EQ(LoadConfig(s).status().message(), "log.level must be debug, info, warn or error");
  s.overrides = {{"attribution.arguments", "all"}};
  EXPECT_EQ(LoadConfig(s).status().message(), "attribution.arguments must be digest or redacted");
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

TEST(Config, ListenUrl) {
  EXPECT_EQ(ListenUrl({"127.0.0.1", 8750}, false), "http://127.0.0.1:8750");
  EXPECT_EQ(ListenUrl({"::1", 8443}, true), "https://[::1]:8443");
  EXPECT_EQ(ListenUrl(*ParseListen("localhost:9"), false), "http://127.0.0.1:9");
}

TEST(ConfigOAuth, ClientsAreTablesByClientIdAndLoginNeedsAClientId) {
  auto c = ParseConfigToml(R"(
[oauth]
dev_grants = "fake/*"
[oauth.clients."https://app.example/client.json"]
redirect_uris = ["https://app.example/cb", "http://127.0.0.1:3000/cb"]
agent = "assistant"
name = "App"
[oauth.clients.cli]
redirect_uris = ["http://localhost/cb"]
agent = "assistant"
)",
                           "o.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->oauth.clients.size(), 2u);
  const auto& app = c->oauth.clients.at("https://app.example/client.json");
  EXPECT_EQ(app.redirect_uris.size(), 2u);
  EXPECT_EQ(app.agent, "assistant");
  EXPECT_EQ(app.name, "App");
  EXPECT_EQ(c->oauth.dev_grants, "fake/*");
  auto bad = ParseConfigToml("[oauth.clients.x]\nagent = \"a\"\n", "o.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("needs redirect_uris and agent"), std::string::npos);
  bad = ParseConfigToml(
      "[oauth.clients.x]\nredirect_uris = [\"https://a/cb\"]\nagent = \"a\"\n"
      "secret = \"s\"\n",
      "o.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown key"), std::string::npos);
  ConfigSources env;
  env.env = {{"CUSTODY_LOGIN_ISSUER", "https://idp.example"}};
  EXPECT_FALSE(LoadConfig(env).ok()) << "login.issuer without login.client_id";
  env.env["CUSTODY_LOGIN_CLIENT_ID"] = "custody";
  env.env["CUSTODY_LOGIN_CLIENT_SECRET"] = "s3cret";
  auto loaded = LoadConfig(env);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->login.client_secret, "s3cret");
  // private_key_jwt: exactly one of the secret and the key file.
  env.env["CUSTODY_LOGIN_PRIVATE_KEY_FILE"] = "login.pem";
  auto both = LoadConfig(env);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("exactly one of login.client_secret"), std::string::npos);
  env.env.erase("CUSTODY_LOGIN_CLIENT_SECRET");
  env.env["CUSTODY_LOGIN_PRIVATE_KEY_KID"] = "k1";
  loaded = LoadConfig(env);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->login.private_key_file, "login.pem");
  EXPECT_EQ(loaded->login.private_key_kid, "k1");
  env.env.erase("CUSTODY_LOGIN_PRIVATE_KEY_FILE");
  auto neither = LoadConfig(env);
  ASSERT_FALSE(neither.ok()) << "login.issuer with neither a secret nor a key";
}

TEST(ConfigStorage, PostgresNeedsItsUrlAndTheUrlNeedsPostgres) {
  ConfigSources s;
  s.overrides = {{"storage.backend", "postgres"}};
  auto no_url = LoadConfig(s);
  ASSERT_FALSE(no_url.ok());
  EXPECT_NE(no_url.status().message().find("needs storage.postgres_url"), std::string::npos)
      << no_url.status().message();
  s.overrides = {{"storage.postgres_url", "postgresql://u:s3cret@db.example/custody"}};
  auto no_backend = LoadConfig(s);
  ASSERT_FALSE(no_backend.ok());
  EXPECT_NE(no_backend.status().message().find("storage.backend is sqlite"), std::string::npos);
  EXPECT_EQ(no_backend.status().message().find("s3cret"), std::string::npos);
  s.overrides.emplace_back("storage.backend", "postgres");
  auto both = LoadConfig(s);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  store::StorageOptions o = both->Storage();
  EXPECT_EQ(o.backend, store::Backend::kPostgres);
  EXPECT_EQ(o.postgres_url, "postgresql://u:s3cret@db.example/custody");
  EXPECT_EQ(o.postgres_pool_size, 8u);
  EXPECT_EQ(Config{}.Storage().backend, store::Backend::kSqlite);  // the embedded default
}

TEST(ConfigApproval, DefaultsHoldForEveryActionAndSeparateDuties) {
  auto c = LoadConfig({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->approval.ttl_ms, 15 * 60'000);
  EXPECT_EQ(c->approval.request_ttl_ms, 60 * 60'000);
  EXPECT_TRUE(c->approval.single_use);
  EXPECT_FALSE(c->approval.allow_self_approval);
  EXPECT_EQ(c->approval.hold_ms, 0);
  EXPECT_EQ(c->approval.person_type, "User");
  EXPECT_EQ(c->approval.base_url, "");
  EXPECT_EQ(c->approval.webhook.url, "");
  EXPECT_EQ(c->approval.webhook.secret_file, "");
  EXPECT_EQ(c->approval.webhook.timeout_ms, 5000);
  EXPECT_EQ(c->approval.webhook.max_attempts, 5);
}

TEST(ConfigApproval, EveryKeyFromTheFileAndTheEnvironment) {
  std::string path = WriteTemp("approval.toml", R"(
[approval]
ttl_ms = 60000
request_ttl_ms = 120000
single_use = false
allow_self_approval = true
hold_ms = 30000
person_type = "Acme::Person"
base_url = "https://custody.example.com"
[approval.webhook]
url = "https://hooks.example.com/custody"
secret_file = "/etc/custody/webhook.secret"
timeout_ms = 2000
max_attempts = 3
)");
  ConfigSources s;
  s.file = path;
  s.env = {{"CUSTODY_APPROVAL_MAX_ATTEMPTS", "ignored: no such key"},
           {"CUSTODY_APPROVAL_WEBHOOK_MAX_ATTEMPTS", "7"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const Config::Approval& a = c->approval;
  EXPECT_EQ(a.ttl_ms, 60000);
  EXPECT_EQ(a.request_ttl_ms, 120000);
  EXPECT_FALSE(a.single_use);
  EXPECT_TRUE(a.allow_self_approval);
  EXPECT_EQ(a.hold_ms, 30000);
  EXPECT_EQ(a.person_type, "Acme::Person");
  EXPECT_EQ(a.base_url, "https://custody.example.com");
  EXPECT_EQ(a.webhook.url, "https://hooks.example.com/custody");
  EXPECT_EQ(a.webhook.secret_file, "/etc/custody/webhook.secret");
  EXPECT_EQ(a.webhook.timeout_ms, 2000);
  EXPECT_EQ(a.webhook.max_attempts, 7);  // the variable beats the file

  // A misspelt key in either section is refused with its position.
  auto typo = ParseConfigToml("[approval.webhook]\nsecret = \"whsec_x\"\n", "w.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("w.toml:2:10: unknown key approval.webhook.secret"),
            std::string::npos)
      << typo.status().message();
  typo = ParseConfigToml("[approval]\nttl = \"15m\"\n", "t.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown key approval.ttl"), std::string::npos);
  typo = ParseConfigToml("[approval.hook]\nurl = \"https://h\"\n", "h.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown section [approval.hook]"), std::string::npos);
}

// LoadConfig's message for these overrides ("" when accepted).
std::string Refusal(std::vector<std::pair<std::string, std::string>> overrides) {
  ConfigSources s;
  s.overrides = std::move(overrides);
  auto c = LoadConfig(s);
  return c.ok() ? "" : c.status().message();
}

// The browser sign-ins' flood bounds (identity::AuthorizationServerOptions) are keys, with
// ranges; 0 turns the bound per address off, nothing else may be 0.
TEST(ConfigOAuth, SignInFloodBoundsAreKeysWithCheckedRanges) {
  Config d;
  EXPECT_EQ(d.oauth.max_sign_ins_in_flight, 10000);
  EXPECT_EQ(d.oauth.max_sign_ins_per_address, 64);
  EXPECT_EQ(d.oauth.max_waiting_browser_steps, 1024);
  EXPECT_EQ(d.oauth.refusal_events_per_minute, 600);
  EXPECT_EQ(d.approval.max_sessions, 10000);
  auto c = ParseConfigToml(R"([oauth]
max_sign_ins_in_flight = 50
max_sign_ins_per_address = 0
max_waiting_browser_steps = 8
refusal_events_per_minute = 30
[approval]
max_sessions = 5
)",
                           "f.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->oauth.max_sign_ins_in_flight, 50);
  EXPECT_EQ(c->oauth.max_sign_ins_per_address, 0);
  EXPECT_EQ(c->oauth.max_waiting_browser_steps, 8);
  EXPECT_EQ(c->oauth.refusal_events_per_minute, 30);
  EXPECT_EQ(c->approval.max_sessions, 5);
  EXPECT_EQ(Refusal({{"oauth.max_sign_ins_in_flight", "0"}}),
            "oauth.max_sign_ins_in_flight must be in [1, 100000], got 0");
  EXPECT_EQ(Refusal({{"oauth.max_sign_ins_per_address", "-1"}}),
            "oauth.max_sign_ins_per_address must be in [0, 100000], got -1");
  EXPECT_EQ(Refusal({{"oauth.max_waiting_browser_steps", "0"}}),
            "oauth.max_waiting_browser_steps must be in [1, 100000], got 0");
  EXPECT_EQ(Refusal({{"oauth.refusal_events_per_minute", "0"}}),
            "oauth.refusal_events_per_minute must be in [1, 1000000], got 0");
  EXPECT_EQ(Refusal({{"approval.max_sessions", "100001"}}),
            "approval.max_sessions must be in [1, 100000], got 100001");
  ConfigSources env;
  env.env = {{"CUSTODY_OAUTH_MAX_SIGN_INS_PER_ADDRESS", "16"}};
  auto from_env = LoadConfig(env);
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
  EXPECT_EQ(from_env->oauth.max_sign_ins_per_address, 16);
}

TEST(ConfigApproval, BadValuesAreRefusedNamingTheKey) {
  EXPECT_EQ(Refusal({{"approval.hold_ms", "300001"}}),
            "approval.hold_ms must be in [0, 300000], got 300001");
  EXPECT_EQ(Refusal({{"approval.hold_ms", "300000"}}), "");
  EXPECT_EQ(Refusal({{"approval.ttl_ms", "0"}}),
            "approval.ttl_ms must be in [1000, 604800000], got 0");
  EXPECT_EQ(Refusal({{"approval.request_ttl_ms", "-5"}}),
            "approval.request_ttl_ms must be in [1000, 2592000000], got -5");
  EXPECT_EQ(Refusal({{"approval.webhook.max_attempts", "0"}}),
            "approval.webhook.max_attempts must be in [1, 20], got 0");
  EXPECT_EQ(Refusal({{"approval.webhook.timeout_ms", "0"}}),
            "approval.webhook.timeout_ms must be in [1, 60000], got 0");
  ConfigSources env;
  env.env = {{"CUSTODY_APPROVAL_SINGLE_USE", "yes"}};
  auto b = LoadConfig(env);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("CUSTODY_APPROVAL_SINGLE_USE"), std::string::npos);
  EXPECT_NE(b.status().message().find("approval.single_use must be true or false"),
            std::string::npos);

  // person_type is a Cedar entity type.
  EXPECT_EQ(Refusal({{"approval.person_type", ""}}), "approval.person_type must not be empty");
  for (std::string bad : {"User::", "::User", "9User", "User Name", "User\"x\""}) {
    EXPECT_NE(Refusal({{"approval.person_type", bad}}).find("approval.person_type must be a Cedar"),
              std::string::npos)
        << bad;
  }
  EXPECT_EQ(Refusal({{"approval.person_type", "Acme::Hr::Person_2"}}), "");

  EXPECT_NE(Refusal({{"approval.base_url", "custody.example.com"}}).find("approval.base_url"),
            std::string::npos);
  EXPECT_EQ(Refusal({{"approval.base_url", "http://127.0.0.1:8750"}}), "");

  // The webhook: https anywhere, http only to loopback, always with a secret.
  const std::string secret = "/etc/custody/webhook.secret";
  for (std::string good : {"https://hooks.example.com/x", "http://127.0.0.1:9000/hook",
                           "http://localhost/hook", "http://[::1]:8/h", "http://127.8.0.1"}) {
    EXPECT_EQ(Refusal({{"approval.webhook.url", good}, {"approval.webhook.secret_file", secret}}),
              "")
        << good;
  }
  for (std::string bad : {"http://hooks.example.com/x", "http://10.0.0.1/hook", "ftp://h/x",
                          "hooks.example.com", "https://", "https://user:pw@hooks.example.com/",
                          "http://127.0.0.1.example.com/", "http://[::2]/"}) {
    std::string message =
        Refusal({{"approval.webhook.url", bad}, {"approval.webhook.secret_file", secret}});
    EXPECT_NE(message.find("approval.webhook.url must be an https:// URL"), std::string::npos)
        << bad << ": " << message;
    EXPECT_EQ(message.find("pw"), std::string::npos) << "the URL is not repeated";
  }
  EXPECT_NE(Refusal({{"approval.webhook.url", "https://hooks.example.com/x"}})
                .find("approval.webhook.url needs approval.webhook.secret_file"),
            std::string::npos);
  EXPECT_EQ(Refusal({{"approval.webhook.secret_file", secret}}),
            "approval.webhook.secret_file needs approval.webhook.url");
}

TEST(ConfigIngest, DefaultsAndEveryKeyFromTheFileAndTheEnvironment) {
  auto d = LoadConfig({});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->ingest.max_body_bytes, 1 << 20);
  EXPECT_EQ(d->ingest.max_inflated_bytes, 8 << 20);
  EXPECT_EQ(d->ingest.max_spans_per_request, 4096);
  EXPECT_EQ(d->ingest.spans_per_second, 5000);
  EXPECT_EQ(d->ingest.burst_spans, 20000);
  std::string path = WriteTemp("ingest.toml", R"(
[ingest]
max_body_bytes = 2000
max_inflated_bytes = 4000
max_spans_per_request = 10
spans_per_second = 5
)");
  ConfigSources s;
  s.file = path;
  s.env = {{"CUSTODY_INGEST_BURST_SPANS", "50"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ingest.max_body_bytes, 2000);
  EXPECT_EQ(c->ingest.max_inflated_bytes, 4000);
  EXPECT_EQ(c->ingest.max_spans_per_request, 10);
  EXPECT_EQ(c->ingest.spans_per_second, 5);
  EXPECT_EQ(c->ingest.burst_spans, 50);
  EXPECT_EQ(Refusal({{"ingest.spans_per_second", "0"}}),
            "ingest.spans_per_second must be in [1, 100000000], got 0");
}

TEST(ConfigExportOcsf, EveryKeyFromTheFileAndTheEnvironmentAndBadValuesRefused) {
  std::string path = WriteTemp("export.toml", R"(
[export.ocsf]
url = "https://siem.example.com/ocsf"
cursor_file = "/var/lib/custody/ocsf.cursor"
authorization_file = "/etc/custody/siem.auth"
ca_file = "/etc/custody/siem-ca.pem"
max_file_bytes = 1048576
keep_files = 2
batch = 100
)");
  ConfigSources s;
  s.file = path;
  s.env = {{"CUSTODY_EXPORT_OCSF_POLL_MS", "250"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const Config::Export::Ocsf& o = c->export_.ocsf;
  EXPECT_EQ(o.url, "https://siem.example.com/ocsf");
  EXPECT_EQ(o.file, "");
  EXPECT_EQ(o.cursor_file, "/var/lib/custody/ocsf.cursor");
  EXPECT_EQ(o.authorization_file, "/etc/custody/siem.auth");
  EXPECT_EQ(o.ca_file, "/etc/custody/siem-ca.pem");
  EXPECT_EQ(o.max_file_bytes, 1048576);
  EXPECT_EQ(o.keep_files, 2);
  EXPECT_EQ(o.batch, 100);
  EXPECT_EQ(o.poll_ms, 250);
  EXPECT_EQ(Config{}.export_.ocsf, Config::Export::Ocsf{});  // off by default
  EXPECT_EQ(Refusal({{"export.ocsf.url", "https://a/x"}, {"export.ocsf.file", "/tmp/x"}}),
            "set export.ocsf.url or export.ocsf.file, not both");
  EXPECT_EQ(Refusal({{"export.ocsf.url", "ftp://a/x"}}),
            "export.ocsf.url must be an http:// or https:// URL");
  EXPECT_EQ(Refusal({{"export.ocsf.batch", "0"}}),
            "export.ocsf.batch must be in [1, 100000], got 0");
  auto typo = ParseConfigToml("[export.ocsf]\nurls = \"https://h\"\n", "o.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown key export.ocsf.urls"), std::string::npos);
}

// [console.idp_roles]: the IdP groups that make a console admin or reader (docs/CONFIG.md).
TEST(Config, ConsoleIdpRolesAreListsOfGroups) {
  auto c = ParseConfigToml(R"([console.idp_roles]
admin_groups = ["secops"]
reader_groups = ["audit", "secops-readonly"]
)",
                           "c.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->console.idp_roles.admin_groups, std::vector<std::string>{"secops"});
  EXPECT_EQ(c->console.idp_roles.reader_groups,
            (std::vector<std::string>{"audit", "secops-readonly"}));
  EXPECT_TRUE(c->console.enabled);
  // The default: no groups, so every IdP sign-in to the console is refused.
  EXPECT_TRUE(Config{}.console.idp_roles.admin_groups.empty());
  EXPECT_TRUE(Config{}.console.idp_roles.reader_groups.empty());

  auto unknown = ParseConfigToml("[console.idp_roles]\nadmins = [\"x\"]\n", "u.toml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown key console.idp_roles.admins"),
            std::string::npos)
      << unknown.status().ToString();
  auto not_list = ParseConfigToml("[console.idp_roles]\nadmin_groups = \"secops\"\n", "l.toml");
  ASSERT_FALSE(not_list.ok());
  EXPECT_NE(not_list.status().message().find("must be an array of strings"), std::string::npos);
  auto numbers = ParseConfigToml("[console.idp_roles]\nreader_groups = [1]\n", "n.toml");
  ASSERT_FALSE(numbers.ok());
  EXPECT_NE(numbers.status().message().find("reader_groups must be an array of strings"),
            std::string::npos);
  auto not_table = ParseConfigToml("[console]\nidp_roles = 1\n", "t.toml");
  ASSERT_FALSE(not_table.ok());
  EXPECT_NE(not_table.status().message().find("console.idp_roles must be a table"),
            std::string::npos);
}

TEST(Config, ConsoleIdpRolesRefuseAGroupInBothListsAndEmptyNames) {
  auto load = [](const std::string& text) {
    auto path = std::filesystem::temp_directory_path() /
                ("custody-idp-roles-" + std::to_string(::getpid()) + ".toml");
    std::ofstream(path) << text;
    auto c = LoadConfig({.file = path.string()});
    std::filesystem::remove(path);
    return c.ok() ? std::string() : std::string(c.status().message());
  };
  EXPECT_EQ(load("[console.idp_roles]\nadmin_groups = [\"a\"]\nreader_groups = [\"b\"]\n"), "");
  EXPECT_EQ(load("[console.idp_roles]\nadmin_groups = [\"a\"]\nreader_groups = [\"b\", \"a\"]\n"),
            "console.idp_roles: group \"a\" is in both admin_groups and reader_groups");
  EXPECT_EQ(load("[console.idp_roles]\nreader_groups = [\"\"]\n"),
            "console.idp_roles.reader_groups: a group name must be 1-256 bytes");
}

}  // namespace
}  // namespace custody::api
