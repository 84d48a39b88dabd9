// Whole-process crash test: `custody serve` is killed with SIGKILL under mixed load (token
// exchanges, authorize, complete, MCP gateway tools/call, ledger appends) and restarted on the
// same data directory, several times. After each restart every answer a client got in full
// (a 2xx) must still hold: each acknowledged action is traceable with its decision, and with its
// outcome when the outcome was acknowledged; each receipt verifies offline against the leaf the
// restarted server serves; each exchanged token is still active; the new checkpoint is
// consistent with the newest one handed out before the kill; `custody ledger verify` passes on
// the file the crash left. Requests in flight at the kill may go either way.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/encoding.h"
#include "common/jcs.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::ClientRequest;
using http::ClientResponse;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::ServeProcess;
using testing::TempDir;

constexpr int kCycles = 5;
constexpr int kWorkers = 4;
constexpr const char* kAgent = "crash-agent";
constexpr const char* kIssuer = "https://custody.local";
constexpr const char* kMcpAudience = "https://custody.local/mcp";
constexpr const char* kMcpVersion = "2025-06-18";

json::object Parse(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return !ec && v.is_object() ? v.get_object() : json::object();
}
std::string S(const json::value* v) {
  return v && v->is_string() ? std::string(v->get_string()) : "";
}
std::optional<uint64_t> U(const json::value* v) {
  if (v && v->is_uint64()) return v->get_uint64();
  if (v && v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return std::nullopt;
}

// One acknowledged ledger event: the receipt the client was given, and what the leaf must be.
struct ReceiptAck {
  std::string what;  // for messages: "decision", "outcome", "append", "mcp decision", …
  uint64_t index = 0;
  std::string receipt;
  std::string event_id;   // the leaf's event_id, when known
  std::string canonical;  // the leaf's exact bytes, when known (appends)
};

// One acknowledged decision, with its outcome when that was acknowledged too.
struct ActionAck {
  std::string action_id;
  uint64_t decision_index = 0;
  std::optional<uint64_t> outcome_index;
  std::string outcome_event_id;
};

// Everything the clients were told, across all cycles. Guarded by mu.
struct Acks {
  std::mutex mu;
  std::vector<ReceiptAck> receipts;
  std::vector<ActionAck> actions;
  std::vector<std::string> exchanged_tokens;
  std::vector<std::string> failures;  // errors seen before the kill: real defects
  int authorize = 0, complete = 0, appends = 0, gateway = 0, exchanges = 0;  // this cycle
};

class ServeCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("serve-crash");
    data_ = dir_ / "data";
    config_ = dir_ / "custody.toml";
    std::ofstream(config_) << "[mcp]\nawait_outcome = true\n\n[mcp.servers.fake]\ncommand = "
                           << json::serialize(json::value(CUSTODY_NODE_BINARY)) << "\nargs = ["
                           << json::serialize(json::value(std::string(CUSTODY_SOURCE_DIR) +
                                                          "/src/mcp/testdata/fake_server.mjs"))
                           << "]\n";
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void Start() {
    server_ = std::make_unique<ServeProcess>(
        data_, std::vector<std::string>{"--config", config_.string(), "--log-level", "warn",
                                        "--set", std::string("identity.issuer=") + kIssuer});
    ASSERT_TRUE(server_->started());
  }
  http::ClientOptions Options() {
    http::ClientOptions o;
    o.timeout = std::chrono::milliseconds(15000);
    return o;
  }
  ClientRequest Authed(ClientRequest r) {
    r.headers.Set("authorization", "Bearer " + admin_);
    return r;
  }

  // The agent and a permit-all policy, once, on the first server.
  void Provision() {
    auto c = server_->Client(Options());
    json::object agent{{"name", kAgent},
                       {"environment", "dev"},
                       {"grants", json::array{"*"}},
                       {"permissions", json::array{"assert_initiator"}},
                       {"client_secret", true}};
    auto r = c.Send(PostJson(json::serialize(agent), admin_, "/v1/agents"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 201) << r->body;
    json::object b = Parse(r->body);
    secret_ = S(b.if_contains("client_secret"));
    ASSERT_FALSE(secret_.empty());
    auto p = c.Send(
        PostJson(R"({"policies":"permit(principal, action, resource);"})", admin_, "/v1/policies"));
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->status, 200) << p->body;
  }

  void Worker(int w, int cycle, Acks* acks);
  void CheckAfterRestart(Acks* acks, uint64_t old_size, const std::string& old_checkpoint);

  fs::path dir_, data_, config_;
  std::unique_ptr<ServeProcess> server_;
  std::string admin_, secret_, vkey_;
  std::atomic<bool> killed_{false};
  // Workers that finished one full round this cycle; the kill timer starts when all have.
  std::mutex round_mu_;
  std::condition_variable round_cv_;
  int workers_with_a_round_ = 0;  // guarded by round_mu_
};

// Loops until the server is killed: exchange, authorize, complete, append, gateway call. Only
// complete 2xx answers are recorded. A failure before the kill is a defect; after it, expected.
void ServeCrashTest::Worker(int w, int cycle, Acks* acks) {
  auto c = server_->Client(Options());
  auto fail = [&](const std::string& step, const Result<ClientResponse>& r) {
    if (killed_) return;
    std::lock_guard lock(acks->mu);
    acks->failures.push_back(
        "cycle " + std::to_string(cycle) + " worker " + std::to_string(w) + " " + step + ": " +
        (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString()));
  };
  auto ok = [](const Result<ClientResponse>& r) {
    return r.ok() && r->status >= 200 && r->status < 300;
  };
  bool counted_round = false;
  for (int n = 0; !killed_; ++n) {
    // Token exchange: a root session for an asserted initiator, actor = a fresh SVID.
    auto svid = c.Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                                  {"client_id", kAgent},
                                                  {"client_secret", secret_},
                                                  {"audience", kIssuer}}));
    if (!ok(svid)) return fail("client_credentials", svid);
    auto ex = c.Send(
        PostForm("/oauth2/token",
                 {{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                  {"client_id", kAgent},
                  {"client_secret", secret_},
                  {"subject_token", R"({"sub":"alice@example.com","iss":"https://login.example"})"},
                  {"subject_token_type", "urn:custody:params:oauth:token-type:initiator-assertion"},
                  {"actor_token", S(Parse(svid->body).if_contains("access_token"))},
                  {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                  {"audience", kMcpAudience}}));
    if (!ok(ex)) return fail("token exchange", ex);
    std::string token = S(Parse(ex->body).if_contains("access_token"));
    {
      std::lock_guard lock(acks->mu);
      acks->exchanged_tokens.push_back(token);
      ++acks->exchanges;
    }

    // Authorize, then complete.
    std::string tool =
        "t" + std::to_string(cycle) + "_" + std::to_string(w) + "_" + std::to_string(n);
    auto az = c.Send(PostJson(R"({"action":"call_tool","target":{"server":"github","tool":")" +
                                  tool + R"("},"arguments":{"n":)" + std::to_string(n) + "}}",
                              token, "/v1/actions:authorize"));
    if (!ok(az)) return fail("authorize", az);
    json::object d = Parse(az->body);
    ActionAck action;
    action.action_id = S(d.if_contains("action_id"));
    action.decision_index = U(d.if_contains("ledger_index")).value_or(~0ull);
    {
      std::lock_guard lock(acks->mu);
      ++acks->authorize;
      acks->receipts.push_back(
          {"decision", action.decision_index, S(d.if_contains("receipt")), action.action_id, ""});
    }
    if (S(d.if_contains("decision")) != "allow") {
      std::lock_guard lock(acks->mu);
      acks->failures.push_back("authorize answered " + az->body);
    }
    auto co = c.Send(PostJson(R"({"status":"ok","latency_ms":1})", token,
                              "/v1/actions/" + action.action_id + ":complete"));
    if (ok(co)) {
      json::object o = Parse(co->body);
      action.outcome_index = U(o.if_contains("ledger_index"));
      action.outcome_event_id = S(o.if_contains("event_id"));
      std::lock_guard lock(acks->mu);
      ++acks->complete;
      acks->receipts.push_back({"outcome", action.outcome_index.value_or(~0ull),
                                S(o.if_contains("receipt")), action.outcome_event_id, ""});
    }
    {
      std::lock_guard lock(acks->mu);
      acks->actions.push_back(action);
    }
    if (!ok(co)) return fail("complete", co);

    // A ledger append with the admin token: the leaf must be exactly this event.
    std::string event = R"({"kind":"crash.test","event_id":")" + tool + R"(","pad":")" +
                        std::string(200, 'x') + "\"}";
    auto ap = c.Send(PostJson(event, admin_, "/v1/ledger/entries"));
    if (!ok(ap)) return fail("append", ap);
    {
      json::object a = Parse(ap->body);
      std::lock_guard lock(acks->mu);
      ++acks->appends;
      acks->receipts.push_back({"append", U(a.if_contains("index")).value_or(~0ull),
                                S(a.if_contains("receipt")), tool, *CanonicalizeJson(event)});
    }

    // The gateway: initialize, notifications/initialized, tools/call echo over /mcp/fake.
    auto mcp = [&](const std::string& body, const std::string& session) {
      ClientRequest r = PostJson(body, token, "/mcp/fake");
      r.headers.Set("accept", "application/json, text/event-stream");
      if (!session.empty()) {
        r.headers.Set("mcp-session-id", session);
        r.headers.Set("mcp-protocol-version", kMcpVersion);
      }
      return c.Send(r);
    };
    auto init = mcp(std::string(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{)") +
                        R"("protocolVersion":")" + kMcpVersion +
                        R"(","capabilities":{},"clientInfo":{"name":"crash","version":"1"}}})",
                    "");
    if (!ok(init)) return fail("mcp initialize", init);
    std::string session(init->headers.Get("mcp-session-id").value_or(""));
    auto note = mcp(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", session);
    if (!ok(note)) return fail("mcp notifications/initialized", note);
    auto call = mcp(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo",)"
                    R"("arguments":{"n":)" +
                        std::to_string(n) + "}}}",
                    session);
    if (!ok(call)) return fail("mcp tools/call", call);
    {
      json::object m = Parse(call->body);
      const json::value* result = m.if_contains("result");
      const json::value* meta =
          result && result->is_object() ? result->as_object().if_contains("_meta") : nullptr;
      json::object rc;
      if (meta && meta->is_object() && meta->as_object().contains("dev.custody/receipt"))
        rc = meta->as_object().at("dev.custody/receipt").as_object();
      json::object out = rc.contains("outcome") && rc["outcome"].is_object()
                             ? rc["outcome"].get_object()
                             : json::object();
      ActionAck g{.action_id = S(rc.if_contains("action_id")),
                  .decision_index = U(rc.if_contains("ledger_index")).value_or(~0ull),
                  .outcome_index = U(out.if_contains("ledger_index")),
                  .outcome_event_id = S(out.if_contains("event_id"))};
      std::lock_guard lock(acks->mu);
      if (g.action_id.empty() || !g.outcome_index) {
        acks->failures.push_back("tools/call without a durable receipt: " + call->body);
        return;
      }
      ++acks->gateway;
      acks->actions.push_back(g);
      acks->receipts.push_back(
          {"mcp decision", g.decision_index, S(rc.if_contains("receipt")), g.action_id, ""});
      acks->receipts.push_back(
          {"mcp outcome", *g.outcome_index, S(out.if_contains("receipt")), g.outcome_event_id, ""});
    }
    if (!counted_round) {
      counted_round = true;
      std::lock_guard lock(round_mu_);
      ++workers_with_a_round_;
      round_cv_.notify_all();
    }
  }
}

// Against the restarted server: every acknowledged answer still holds.
void ServeCrashTest::CheckAfterRestart(Acks* acks, uint64_t old_size,
                                       const std::string& old_checkpoint) {
  auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey_);
  ASSERT_TRUE(verifier.ok());
  auto c = server_->Client(Options());

  // Receipts verify offline against the leaves the new process serves, and name those leaves.
  for (const ReceiptAck& a : acks->receipts) {
    SCOPED_TRACE(a.what + " at index " + std::to_string(a.index));
    auto e = c.Send(Authed(Get("/v1/ledger/entries/" + std::to_string(a.index))));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(e->status, 200) << e->body;
    json::object entry = Parse(e->body);
    ASSERT_TRUE(entry.contains("event") && entry["event"].is_object()) << e->body;
    auto canonical = CanonicalizeJson(json::serialize(entry["event"]));
    ASSERT_TRUE(canonical.ok());
    if (!a.canonical.empty()) {
      EXPECT_EQ(*canonical, a.canonical);
    }
    EXPECT_EQ(S(entry["event"].as_object().if_contains("event_id")), a.event_id);
    auto parsed = ledger::ParseReceipt(a.receipt);
    ASSERT_TRUE(parsed.ok()) << a.receipt;
    EXPECT_EQ(parsed->index, a.index);
    Status st = ledger::VerifyReceipt(*verifier, a.receipt, AsBytes(*canonical));
    EXPECT_TRUE(st.ok()) << st.ToString();
  }

  // Every acknowledged action is traceable with its decision, and its outcome if acknowledged.
  for (const ActionAck& a : acks->actions) {
    SCOPED_TRACE("action " + a.action_id);
    auto t = c.Send(Authed(Get("/v1/trace/" + a.action_id)));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_EQ(t->status, 200) << t->body;
    json::object tr = Parse(t->body);
    EXPECT_EQ(S(tr.if_contains("event_id")), a.action_id);
    EXPECT_EQ(S(tr.if_contains("decision")), "allow");
    EXPECT_EQ(U(tr.if_contains("index")), a.decision_index);
    if (a.outcome_index) {
      ASSERT_TRUE(tr.contains("outcome") && tr["outcome"].is_object()) << t->body;
      json::object o = tr["outcome"].get_object();
      EXPECT_EQ(S(o.if_contains("status")), "ok");
      EXPECT_EQ(U(o.if_contains("index")), a.outcome_index);
      EXPECT_EQ(S(o.if_contains("event_id")), a.outcome_event_id);
    }
  }

  // Every acknowledged exchange still yields an active token.
  for (const std::string& token : acks->exchanged_tokens) {
    auto r = c.Send(PostForm("/oauth2/introspect", {{"token", token}}, admin_));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Parse(r->body)["active"], json::value(true)) << r->body;
  }

  // The new checkpoint extends the newest one handed out before the kill.
  auto cp = c.Send(Authed(Get("/v1/ledger/checkpoint")));
  ASSERT_TRUE(cp.ok());
  ASSERT_EQ(cp->status, 200) << cp->body;
  auto new_cp = ledger::OpenCheckpoint(*verifier, cp->body);
  ASSERT_TRUE(new_cp.ok()) << new_cp.status().ToString();
  ASSERT_GE(new_cp->size, old_size);
  if (old_checkpoint.empty()) return;
  auto old_cp = ledger::OpenCheckpoint(*verifier, old_checkpoint);
  ASSERT_TRUE(old_cp.ok());
  auto pr = c.Send(Authed(Get("/v1/ledger/proof/consistency?from=" + std::to_string(old_cp->size) +
                              "&to=" + std::to_string(new_cp->size))));
  ASSERT_TRUE(pr.ok());
  ASSERT_EQ(pr->status, 200) << pr->body;
  std::vector<ledger::Hash> proof;
  json::object consistency = Parse(pr->body);
  ASSERT_TRUE(consistency.contains("hashes") && consistency["hashes"].is_array()) << pr->body;
  for (const json::value& h : consistency["hashes"].as_array()) {
    auto bytes = Base64Decode(h.as_string());
    ASSERT_TRUE(bytes.ok() && bytes->size() == 32);
    ledger::Hash hash;
    std::copy(bytes->begin(), bytes->end(), hash.begin());
    proof.push_back(hash);
  }
  Status st =
      ledger::VerifyConsistency(old_cp->size, new_cp->size, proof, old_cp->root, new_cp->root);
  EXPECT_TRUE(st.ok()) << "from " << old_cp->size << " to " << new_cp->size << ": "
                       << st.ToString();
}

TEST_F(ServeCrashTest, AcknowledgedAnswersSurviveRepeatedSigkill) {
  ASSERT_NO_FATAL_FAILURE(Start());
  admin_ = server_->token();
  vkey_ = server_->vkey();
  ASSERT_FALSE(admin_.empty());
  ASSERT_NO_FATAL_FAILURE(Provision());
  auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey_);
  ASSERT_TRUE(verifier.ok()) << vkey_;

  std::random_device rd;
  const unsigned seed = rd();
  RecordProperty("seed", std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(300, 1500);
  Acks acks;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle) + " (seed " + std::to_string(seed) + ")");
    killed_ = false;
    workers_with_a_round_ = 0;
    {
      std::lock_guard lock(acks.mu);
      acks.authorize = acks.complete = acks.appends = acks.gateway = acks.exchanges = 0;
    }
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) workers.emplace_back([&, w] { Worker(w, cycle, &acks); });
    // The random delay runs from the moment every worker has done a whole round, so each kill
    // lands in steady mixed load (the gateway's upstream is up), not in the start-up.
    {
      std::unique_lock lock(round_mu_);
      round_cv_.wait_for(lock, std::chrono::seconds(30),
                         [&] { return workers_with_a_round_ == kWorkers; });
    }
    const int delay = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    killed_ = true;  // before the signal: any failure seen from now on may be the kill's
    int status = server_->Stop(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    for (auto& t : workers) t.join();
    // No fork while the workers run: `ledger verify` comes after the join.
    std::string out;
    EXPECT_EQ(testing::RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db",
                                   (data_ / "ledger.db").string(), "--vkey", vkey_},
                                  &out),
              0)
        << out;

    // The newest checkpoint any acknowledged receipt carried, and the acknowledged maximum index.
    uint64_t old_size = 0, max_index = 0;
    std::string old_checkpoint;
    {
      std::lock_guard lock(acks.mu);
      for (const std::string& f : acks.failures) ADD_FAILURE() << f;
      acks.failures.clear();
      std::cout << "cycle " << cycle << ": killed after " << delay << " ms; acknowledged "
                << acks.exchanges << " exchanges, " << acks.authorize << " decisions, "
                << acks.complete << " outcomes, " << acks.appends << " appends, " << acks.gateway
                << " gateway calls (" << acks.receipts.size() << " receipts so far)\n";
      EXPECT_GT(acks.authorize, 0);
      EXPECT_GT(acks.complete, 0);
      EXPECT_GT(acks.appends, 0);
      EXPECT_GT(acks.gateway, 0);
      for (const ReceiptAck& a : acks.receipts) {
        max_index = std::max(max_index, a.index);
        auto r = ledger::ParseReceipt(a.receipt);
        if (!r.ok()) continue;  // reported by CheckAfterRestart
        auto cp = ledger::OpenCheckpoint(*verifier, r->signed_checkpoint);
        if (cp.ok() && cp->size > old_size) {
          old_size = cp->size;
          old_checkpoint = r->signed_checkpoint;
        }
      }
    }
    EXPECT_GT(old_size, max_index);

    ASSERT_NO_FATAL_FAILURE(Start());
    EXPECT_EQ(server_->vkey(), vkey_);
    ASSERT_NO_FATAL_FAILURE(CheckAfterRestart(&acks, max_index + 1, old_checkpoint));
  }
  // A clean stop at the end; the ledger still verifies.
  EXPECT_EQ(server_->Stop(SIGTERM), 0);
  std::string out;
  EXPECT_EQ(testing::RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db",
                                 (data_ / "ledger.db").string(), "--vkey", vkey_},
                                &out),
            0)
      << out;
}

}  // namespace
}  // namespace custody
