// Several nodes, one deployment: three real `custody serve` processes on one PostgreSQL database
// (the CTest fixture's throwaway cluster), each with its own data directory, driven at the same
// time. What a user notices: one ledger (every receipt from any node verifies offline under one
// key, every node serves the same checkpoint, the whole log verifies independently), one
// identity (a token one node issued works at another), containment that crosses nodes on the
// next call, and a policy published at one node in force at the others.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/encoding.h"
#include "ledger/checkpoint.h"
#include "ledger/note.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "ledger/verifier.h"
#include "serve_util.h"
#include "store/postgres/pg_ledger_store.h"
#include "store/testing/pg_cluster.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::CliResult;
using testing::Get;
using testing::PostJson;
using testing::ServeProcess;
using testing::Subprocess;
using testing::TempDir;

constexpr const char* kIssuer = "https://custody.test";
constexpr const char* kMcpVersion = "2025-06-18";
// The key-encryption key every node of the deployment shares (hex of 32 bytes).
constexpr const char* kKek = "4b454b2d666f722d7468652d6d756c74692d6e6f64652d746573742d2d2d2d21";

class MultiNode : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = store::testing::PgCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto url = (*cluster)->NewDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    ::setenv("CUSTODY_STORAGE_POSTGRES_URL", url_.c_str(), 1);
    ::setenv("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY", kKek, 1);
    dir_ = TempDir(std::string("multi_node_") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n && n->started()) n->Stop();
    }
    nodes_.clear();
    ::unsetenv("CUSTODY_STORAGE_POSTGRES_URL");
    ::unsetenv("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY");
    fs::remove_all(dir_);
  }

  ServeProcess& Start(const std::string& name) {
    // Every node has the same MCP server (a stdio one) behind its gateway.
    fs::path config = dir_ / "custody.toml";
    std::ofstream(config) << "[mcp.servers.fake]\ncommand = "
                          << json::serialize(json::value(CUSTODY_NODE_BINARY)) << "\nargs = ["
                          << json::serialize(json::value(std::string(CUSTODY_SOURCE_DIR) +
                                                         "/src/mcp/testdata/fake_server.mjs"))
                          << "]\n";
    nodes_.push_back(std::make_unique<ServeProcess>(
        dir_ / name,
        std::vector<std::string>{"--config", config.string(), "--log-level", "warn", "--set",
                                 "storage.backend=postgres", "--set",
                                 std::string("identity.issuer=") + kIssuer},
        /*quickstart=*/true, /*merge_stderr=*/false));
    EXPECT_TRUE(nodes_.back()->started()) << name << " did not start";
    if (admin_.empty()) admin_ = nodes_.back()->token();
    return *nodes_.back();
  }

  // `custody ARGS… --server URL` with stdout and stderr apart.
  CliResult Cli(std::vector<std::string> args, const ServeProcess& node) {
    args.insert(args.end(), {"--server", node.url()});
    return testing::RunCli(args, dir_);
  }
  std::string Token(const CliResult& r) {
    EXPECT_EQ(r.rc, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  Result<http::ClientResponse> Authorize(ServeProcess& node, const std::string& session) {
    return node.Client().Send(
        PostJson(R"({"action":"call_tool","target":{"server":"github","tool":"get_issue"}})",
                 session, "/v1/actions:authorize"));
  }

  // A JSON-RPC message to the gateway's /mcp/fake at `node`.
  Result<http::ClientResponse> Mcp(ServeProcess& node, const std::string& body,
                                   const std::string& token, const std::string& session) {
    http::ClientRequest r = PostJson(body, token, "/mcp/fake");
    r.headers.Set("accept", "application/json, text/event-stream");
    if (!session.empty()) {
      r.headers.Set("mcp-session-id", session);
      r.headers.Set("mcp-protocol-version", kMcpVersion);
    }
    return node.Client().Send(r);
  }
  // initialize + notifications/initialized; the MCP session id.
  std::string McpSession(ServeProcess& node, const std::string& token) {
    auto init = Mcp(node,
                    std::string(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{)") +
                        R"("protocolVersion":")" + kMcpVersion +
                        R"(","capabilities":{},"clientInfo":{"name":"nodes","version":"1"}}})",
                    token, "");
    EXPECT_TRUE(init.ok() && init->status == 200) << (init.ok() ? init->body : "");
    if (!init.ok()) return "";
    std::string session(init->headers.Get("mcp-session-id").value_or(""));
    auto note =
        Mcp(node, R"({"jsonrpc":"2.0","method":"notifications/initialized"})", token, session);
    EXPECT_TRUE(note.ok() && note->status < 300);
    return session;
  }
  static constexpr const char* kCall =
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"n":1}}})";

  std::string Checkpoint(ServeProcess& node) {
    auto r = node.Client().Send(Get("/v1/ledger/checkpoint"));
    EXPECT_TRUE(r.ok() && r->status == 200);
    return r.ok() ? r->body : "";
  }

  // Appends through every node of `targets` until `stop`, one thread each. Every 201 is an
  // acknowledgement kept in `acked` (the event's bytes and its receipt); a 503 is counted; any
  // other answer is a failure (nothing else may come back while the database is away).
  struct Load {
    std::mutex mu;
    std::vector<std::pair<std::string, std::string>> acked;
    std::vector<std::string> failures;
    std::atomic<int> unavailable{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    std::vector<std::atomic<int>> ok_by_node = std::vector<std::atomic<int>>(8);
  };
  void StartLoad(Load& load, const std::vector<ServeProcess*>& targets) {
    for (size_t n = 0; n < targets.size(); ++n) {
      load.threads.emplace_back([this, &load, n, node = targets[n]] {
        http::ClientOptions o;
        o.timeout = std::chrono::milliseconds(15000);
        auto client = node->Client(o);
        for (int i = 0; !load.stop; ++i) {
          std::string ev = R"({"i":)" + std::to_string(i) + R"(,"kind":"fault","node":)" +
                           std::to_string(n) + "}";
          auto r = client.Send(PostJson(ev, admin_));
          std::lock_guard lock(load.mu);
          if (!r.ok()) {
            // The node itself is gone (killed): its thread stops.
            load.failures.push_back("node " + std::to_string(n) + ": " + r.status().ToString());
            return;
          }
          if (r->status == 201) {
            json::object o = json::parse(r->body).as_object();
            load.acked.emplace_back(ev, std::string(o["receipt"].as_string()));
            load.ok_by_node[n]++;
          } else if (r->status == 503) {
            load.unavailable++;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          } else {
            load.failures.push_back("node " + std::to_string(n) + ": " + std::to_string(r->status) +
                                    " " + r->body);
          }
        }
      });
    }
  }
  void StopLoad(Load& load) {
    load.stop = true;
    for (auto& t : load.threads) t.join();
    load.threads.clear();
  }
  // Every acknowledged event is in the database at its receipt's index, every receipt verifies
  // offline, and the whole log verifies from the database.
  void CheckEverythingAcknowledgedIsThere(const std::string& url, const std::string& vkey,
                                          const Load& load) {
    auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey);
    ASSERT_TRUE(verifier.ok());
    auto store =
        store::PgLedgerStore::Open(url, store::PgLedgerStore::OpenOptions{.read_only = true});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const auto& [event, receipt] : load.acked) {
      Status st = ledger::VerifyReceipt(
          *verifier, receipt,
          std::span(reinterpret_cast<const uint8_t*>(event.data()), event.size()));
      ASSERT_TRUE(st.ok()) << st.ToString();
      auto parsed = ledger::ParseReceipt(receipt);
      auto leaf = (*store)->GetLeaf(parsed->index);
      ASSERT_TRUE(leaf.ok()) << "acknowledged entry " << parsed->index << " is missing";
      EXPECT_EQ(leaf->data, event);
    }
    auto cp = (*store)->LatestCheckpoint();
    ASSERT_TRUE(cp.ok() && cp->has_value());
    auto opened = ledger::OpenCheckpoint(*verifier, (*cp)->note);
    ASSERT_TRUE(opened.ok());
    auto report = ledger::VerifyLedger(**store, *verifier, opened->origin);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
  }

  std::string url_;
  fs::path dir_;
  std::string admin_;
  std::vector<std::unique_ptr<ServeProcess>> nodes_;
};

// A node killed with SIGKILL under load: the others go on answering, nothing any node
// acknowledged is lost, the killed node comes back and serves the same log.
TEST_F(MultiNode, ANodeKilledUnderLoadLosesNothingAndTheOthersGoOn) {
  ServeProcess& a = Start("a");
  ServeProcess& b = Start("b");
  ServeProcess& c = Start("c");
  ASSERT_TRUE(a.started() && b.started() && c.started());
  Load load;
  StartLoad(load, {&a, &b, &c});
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  b.Stop(SIGKILL);
  int a_at_kill = load.ok_by_node[0], c_at_kill = load.ok_by_node[2];
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  StopLoad(load);
  EXPECT_GT(load.ok_by_node[0], a_at_kill + 5) << "A stopped answering when B was killed";
  EXPECT_GT(load.ok_by_node[2], c_at_kill + 5) << "C stopped answering when B was killed";
  {
    std::lock_guard lock(load.mu);
    for (const std::string& f : load.failures) {
      EXPECT_EQ(f.rfind("node 1:", 0), 0u) << f;  // only the killed node's client fails
    }
    EXPECT_EQ(load.unavailable, 0);
  }
  // B again, on the same database: it catches up and serves what A serves.
  nodes_.push_back(std::make_unique<ServeProcess>(
      dir_ / "b",
      std::vector<std::string>{"--config", (dir_ / "custody.toml").string(), "--log-level", "warn",
                               "--set", "storage.backend=postgres", "--set",
                               std::string("identity.issuer=") + kIssuer},
      /*quickstart=*/true));
  ServeProcess& b2 = *nodes_.back();
  ASSERT_TRUE(b2.started());
  EXPECT_EQ(Checkpoint(b2), Checkpoint(a));
  auto appended = b2.Client().Send(PostJson(R"({"after":"restart"})", admin_));
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(appended->status, 201) << appended->body;
  CheckEverythingAcknowledgedIsThere(url_, a.vkey(), load);
}

// PostgreSQL restarted under load: the nodes answer 503 while it is away (never acknowledging
// what is not durable), /readyz says why, and they recover by themselves when it is back.
TEST_F(MultiNode, PostgresRestartedUnderLoadMeans503ThenRecovery) {
  auto pg = store::testing::PgCluster::StartPrivate();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto url = (*pg)->NewDatabase();
  ASSERT_TRUE(url.ok());
  url_ = *url;
  ::setenv("CUSTODY_STORAGE_POSTGRES_URL", url_.c_str(), 1);
  ServeProcess& a = Start("a");
  ServeProcess& b = Start("b");
  ASSERT_TRUE(a.started() && b.started());
  Load load;
  StartLoad(load, {&a, &b});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE((*pg)->StopServer().ok());
  const int acked_before = static_cast<int>(load.acked.size());
  // Both nodes say they are not ready, and why.
  for (ServeProcess* n : {&a, &b}) {
    std::string body;
    int status = 0;
    for (int i = 0; i < 100 && status != 503; ++i) {
      auto r = n->Client().Send(Get("/readyz"));
      ASSERT_TRUE(r.ok());
      status = r->status;
      body = r->body;
      if (status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(status, 503) << body;
    EXPECT_NE(body.find("unavailable"), std::string::npos) << body;
    // Says why: the database's own words (connection refused, or the connection cut), or which
    // store could not reach it; never a bare "storage error".
    EXPECT_TRUE(body.find("Connection refused") != std::string::npos ||
                body.find("connection") != std::string::npos ||
                body.find("database") != std::string::npos)
        << "says why: " << body;
    EXPECT_EQ(body.find("storage error"), std::string::npos) << body;
    EXPECT_EQ(body.find("\\t"), std::string::npos) << "one line: " << body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE((*pg)->StartServer().ok());
  // Back by themselves: appends succeed again at both nodes, and both are ready.
  for (ServeProcess* n : {&a, &b}) {
    int status = 0;
    for (int i = 0; i < 150 && status != 201; ++i) {
      auto r = n->Client().Send(PostJson(R"({"after":"postgres restart"})", admin_));
      ASSERT_TRUE(r.ok());
      status = r->status;
      if (status != 201) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(status, 201) << n->url() << " did not recover";
    auto ready = n->Client().Send(Get("/readyz"));
    ASSERT_TRUE(ready.ok());
    EXPECT_EQ(ready->status, 200) << ready->body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  StopLoad(load);
  {
    std::lock_guard lock(load.mu);
    for (const std::string& f : load.failures) ADD_FAILURE() << f;
  }
  EXPECT_GT(load.unavailable, 0) << "no request met the database away";
  EXPECT_GT(static_cast<int>(load.acked.size()), acked_before) << "no append after the restart";
  CheckEverythingAcknowledgedIsThere(url_, a.vkey(), load);
  for (auto& n : nodes_) n->Stop();  // while their database is still there
}

TEST_F(MultiNode, ThreeNodesOneLedgerOneIdentityContainmentAcrossNodes) {
  ServeProcess& a = Start("a");
  ASSERT_TRUE(a.started());
  ASSERT_FALSE(admin_.empty());
  ServeProcess& b = Start("b");
  ServeProcess& c = Start("c");
  ASSERT_TRUE(b.started() && c.started());
  // One verifier key: the ledger key is the deployment's, not each node's.
  EXPECT_EQ(b.vkey(), a.vkey());
  EXPECT_EQ(c.vkey(), a.vkey());
  std::vector<ServeProcess*> all = {&a, &b, &c};

  // --- One ledger: appends through the three nodes at once.
  struct Got {
    std::string event, receipt;
  };
  std::mutex mu;
  std::vector<Got> got;
  std::vector<std::thread> threads;
  for (size_t n = 0; n < all.size(); ++n) {
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, n, t] {
        auto client = all[n]->Client();
        for (int i = 0; i < 40; ++i) {
          // Canonical already (keys in order), so the leaf is these very bytes.
          std::string ev = R"({"i":)" + std::to_string(i) + R"(,"kind":"multi-node","node":)" +
                           std::to_string(n) + R"(,"t":)" + std::to_string(t) + "}";
          auto r = client.Send(PostJson(ev, admin_));
          ASSERT_TRUE(r.ok());
          ASSERT_EQ(r->status, 201) << r->body;
          json::object o = json::parse(r->body).as_object();
          std::lock_guard lock(mu);
          got.push_back(Got{ev, std::string(o["receipt"].as_string())});
        }
      });
    }
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(got.size(), 240u);
  auto verifier = ledger::NoteVerifier::FromVerifierKey(a.vkey());
  ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
  std::set<uint64_t> indexes;
  for (const Got& g : got) {
    auto receipt = ledger::ParseReceipt(g.receipt);
    ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
    EXPECT_TRUE(indexes.insert(receipt->index).second) << "index given twice";
    Status st = ledger::VerifyReceipt(
        *verifier, g.receipt,
        std::span(reinterpret_cast<const uint8_t*>(g.event.data()), g.event.size()));
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  // Every node serves the same checkpoint, and a proof from any node links any two.
  std::string cp = Checkpoint(a);
  EXPECT_EQ(Checkpoint(b), cp);
  EXPECT_EQ(Checkpoint(c), cp);
  auto latest = ledger::OpenCheckpoint(*verifier, cp);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  auto early = ledger::ParseReceipt(got.front().receipt);
  auto early_cp = ledger::OpenCheckpoint(*verifier, early->signed_checkpoint);
  ASSERT_TRUE(early_cp.ok());
  auto proof =
      c.Client().Send(Get("/v1/ledger/proof/consistency?from=" + std::to_string(early_cp->size) +
                          "&to=" + std::to_string(latest->size)));
  ASSERT_TRUE(proof.ok());
  ASSERT_EQ(proof->status, 200) << proof->body;
  std::vector<ledger::Hash> hashes;
  json::value proof_json = json::parse(proof->body);
  for (const json::value& h : proof_json.as_object()["hashes"].as_array()) {
    auto bytes = Base64Decode(std::string(h.as_string()));
    ASSERT_TRUE(bytes.ok() && bytes->size() == 32);
    ledger::Hash hash;
    std::copy(bytes->begin(), bytes->end(), hash.begin());
    hashes.push_back(hash);
  }
  Status consistent =
      ledger::VerifyConsistency(early_cp->size, latest->size, hashes, early_cp->root, latest->root);
  EXPECT_TRUE(consistent.ok()) << consistent.ToString();

  // --- One identity: an agent registered at A, its SVID from B, its session from C, used at A.
  CliResult reg =
      Cli({"agent", "register", "--name", "bot", "--scope", "github/*", "--scope", "fake/*",
           "--permission", "assert_initiator", "--client-secret", "--token", admin_},
          a);
  ASSERT_EQ(reg.rc, 0) << reg.err;
  std::ofstream(dir_ / "secret")
      << std::string(json::parse(reg.out).as_object()["client_secret"].as_string()) << "\n";
  std::ofstream(dir_ / "policy.cedar")
      << R"(permit(principal == Agent::"bot", action == Action::"call_tool",
                 resource in Server::"github");
            permit(principal == Agent::"bot", action == Action::"call_tool",
                 resource in Server::"fake");)";
  CliResult pub =
      Cli({"policy", "publish", (dir_ / "policy.cedar").string(), "--token", admin_}, b);
  ASSERT_EQ(pub.rc, 0) << pub.err;
  std::string svid = Token(Cli(
      {"token", "svid", "--agent", "bot", "--client-secret-file", (dir_ / "secret").string()}, b));
  std::string session =
      Token(Cli({"token", "exchange", "--client-secret-file", (dir_ / "secret").string(),
                 "--subject-token", R"({"sub":"alice@example.com","iss":"ci"})", "--actor-token",
                 svid, "--audience", std::string(kIssuer) + "/mcp"},
                c));
  ASSERT_FALSE(session.empty());
  // The policy published at B is in force at every node (pushed; allow a poll's worth).
  for (ServeProcess* n : all) {
    std::string decision;
    for (int i = 0; i < 40; ++i) {
      auto r = Authorize(*n, session);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 200) << r->body;
      decision = std::string(json::parse(r->body).as_object()["decision"].as_string());
      if (decision == "allow") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(decision, "allow") << "at " << n->url();
  }
  // Investigations see every node's actions: an action decided at A, traced at C.
  {
    auto r = Authorize(a, session);
    ASSERT_TRUE(r.ok());
    std::string action(json::parse(r->body).as_object()["action_id"].as_string());
    http::ClientRequest trace = Get("/v1/trace/" + action);
    trace.headers.Set("authorization", "Bearer " + admin_);
    auto tr = c.Client().Send(trace);
    ASSERT_TRUE(tr.ok());
    EXPECT_EQ(tr->status, 200) << tr->body;
    EXPECT_NE(tr->body.find("alice@example.com"), std::string::npos) << tr->body;
    EXPECT_NE(tr->body.find("\"bot\""), std::string::npos) << tr->body;
  }

  // --- A key rotated at C signs at C at once and verifies at A and B; every node's JWKS
  // publishes it (pushed; allow a poll's worth).
  auto rotated = c.Client().Send(PostJson("{}", admin_, "/v1/keys/rotate"));
  ASSERT_TRUE(rotated.ok());
  ASSERT_EQ(rotated->status, 200) << rotated->body;
  std::string kid(json::parse(rotated->body).as_object()["kid"].as_string());
  std::string svid_c = Token(Cli(
      {"token", "svid", "--agent", "bot", "--client-secret-file", (dir_ / "secret").string()}, c));
  std::string session_c =
      Token(Cli({"token", "exchange", "--client-secret-file", (dir_ / "secret").string(),
                 "--subject-token", R"({"sub":"alice@example.com","iss":"ci"})", "--actor-token",
                 svid_c, "--audience", std::string(kIssuer) + "/mcp"},
                c));
  ASSERT_NE(session_c.find('.'), std::string::npos);
  json::object header =
      json::parse(AsString(*Base64UrlDecode(session_c.substr(0, session_c.find('.'))))).as_object();
  EXPECT_EQ(header["kid"], json::value(kid));
  for (ServeProcess* n : {&a, &b}) {
    auto r = Authorize(*n, session_c);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << "at " << n->url() << ": " << r->body;
    bool published = false;
    for (int i = 0; i < 40 && !published; ++i) {
      auto jwks = n->Client().Send(Get("/.well-known/jwks.json"));
      ASSERT_TRUE(jwks.ok());
      published = jwks->body.find(kid) != std::string::npos;
      if (!published) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(published) << "the rotated key is not in " << n->url() << "'s JWKS";
  }

  // --- MCP sessions are sticky: one made at A works at A; at B its id is unknown (404, the
  // clean MCP answer), and the client initializes again there.
  std::string mcp_a = McpSession(a, session);
  ASSERT_FALSE(mcp_a.empty());
  auto call = Mcp(a, kCall, session, mcp_a);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->status, 200) << call->body;
  EXPECT_NE(call->body.find("dev.custody/receipt"), std::string::npos) << call->body;
  auto elsewhere = Mcp(b, kCall, session, mcp_a);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(elsewhere->status, 404) << elsewhere->body;
  std::string mcp_b = McpSession(b, session);
  ASSERT_FALSE(mcp_b.empty());
  call = Mcp(b, kCall, session, mcp_b);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->status, 200) << call->body;

  // --- Containment crosses nodes: revoked at B, refused at C and A on the very next call.
  auto intro =
      a.Client().Send(testing::PostForm("/oauth2/introspect", {{"token", session}}, admin_));
  ASSERT_TRUE(intro.ok());
  std::string sid(json::parse(intro->body).as_object()["sid"].as_string());
  auto revoked = b.Client().Send(
      PostJson(R"({"reason":"multi-node test"})", admin_, "/v1/sessions/" + sid + "/revoke"));
  ASSERT_TRUE(revoked.ok());
  ASSERT_EQ(revoked->status, 200) << revoked->body;
  for (ServeProcess* n : {&c, &a}) {
    auto r = Authorize(*n, session);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << "at " << n->url() << ": " << r->body;
  }
  // A's MCP session for it is gone too (404, as for a session contained at A itself).
  call = Mcp(a, kCall, session, mcp_a);
  ASSERT_TRUE(call.ok());
  EXPECT_TRUE(call->status == 404 || call->status == 401) << call->status << " " << call->body;

  // --- The whole log, checked independently from the database, after the nodes stop.
  for (ServeProcess* n : all) EXPECT_EQ(n->Stop(), 0);
  auto store =
      store::PgLedgerStore::Open(url_, store::PgLedgerStore::OpenOptions{.read_only = true});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto origin = latest->origin;
  auto report = ledger::VerifyLedger(**store, *verifier, origin);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GE(report->leaves, 240u);
}

}  // namespace
}  // namespace custody
