// The gateway's call pipeline in-process: a real token service, attribution service and ledger
// on the in-memory stores, and a fake upstream the test scripts. Requests go through the
// gateway's own routes, as the HTTP server would hand them over.
#include "mcp/gateway.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <future>
#include <mutex>

#include "attribution/testing/world.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/jose.h"
#include "crypto/sha256.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "identity/txn_token.h"
#include "ledger/ledger.h"
#include "mcp/jsonrpc.h"
#include "mcp/modern.h"
#include "store/stores.h"

namespace custody::mcp {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// An upstream MCP server the test scripts: its tools, and what a tools/call does.
class FakeUpstream final : public Upstream {
 public:
  // kHold: sent (its token taken) and held until cancelled, SendHeldAgain or AnswerHeld;
  // kQueue: held without being sent (as before an upstream's handshake) until SendHeldAgain.
  enum class Mode { kAnswer, kHold, kCrash, kQueue };
  explicit FakeUpstream(std::string name) : name_(std::move(name)) {}

  void Start() override {}
  void Stop() override {
    std::map<int64_t, UpstreamCallback> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [id, done] : held) done(UnavailableError("the upstream stopped"));
  }
  using Upstream::Call;
  int64_t Call(const std::string& method, json::value params, RequestExtras extras,
               UpstreamCallback done) override {
    std::unique_lock lock(mu_);
    const int64_t id = next_id_++;
    methods_.push_back(method);
    if (method == "tools/list") {
      json::object result{{"tools", tools_}};
      lock.unlock();
      done(json::object{{"result", std::move(result)}});
      return id;
    }
    if (method == "resources/list") {
      lock.unlock();
      done(json::object{{"result",
                         {{"resources", json::array{{{"uri", "file:///public/a"}, {"name", "a"}},
                                                    {{"uri", "file:///secret/b"}, {"name", "b"}}}},
                          {"nextCursor", "page-2"}}}});
      return id;
    }
    if (method == "prompts/list") {
      lock.unlock();
      done(json::object{
          {"result", {{"prompts", json::array{{{"name", "greet"}}, {{"name", "leak"}}}}}}});
      return id;
    }
    if (method == "completion/complete") {
      lock.unlock();
      done(json::object{{"result", {{"completion", {{"values", {"alpha", "alpine"}}}}}}});
      return id;
    }
    if (method == "logging/setLevel") {
      const bool known = params.as_object().at("level") == "debug";
      lock.unlock();
      done(known ? json::object{{"result", json::object{}}}
                 : json::object{{"error", {{"code", -32602}, {"message", "unknown level"}}}});
      return id;
    }
    calls_.push_back(params.as_object());
    if (mode_ != Mode::kQueue) txn_tokens_.push_back(TokenOf(extras));
    switch (mode_) {
      case Mode::kHold:
      case Mode::kQueue:
        held_[id] = std::move(done);
        held_extras_[id] = std::move(extras);
        cv_.notify_all();
        return id;
      case Mode::kCrash:
        lock.unlock();
        done(UnavailableError("upstream server files exited (signal 9)"));
        return id;
      case Mode::kAnswer:
        break;
    }
    lock.unlock();
    done(json::object{{"result",
                       {{"content", json::array{json::object{{"type", "text"},
                                                             {"text", "done by " + name_}}}}}}});
    return id;
  }
  void Cancel(int64_t id, const std::string& reason) override {
    UpstreamCallback done;
    {
      std::lock_guard lock(mu_);
      cancelled_.push_back(id);
      auto it = held_.find(id);
      if (it == held_.end()) return;
      done = std::move(it->second);
      held_.erase(it);
    }
    done(UnavailableError("cancelled: " + reason));
  }
  void Notify(const std::string&, json::value) override {}
  void Respond(const json::value&, json::object) override {}
  const std::string& name() const override { return name_; }
  bool ready() const override { return true; }
  bool HasCapability(std::string_view name) const override {
    return name == "completions" || name == "logging" || name == "resources" || name == "prompts";
  }
  bool modern() const override { return false; }
  std::vector<std::string> Methods() {
    std::lock_guard lock(mu_);
    return methods_;
  }

  void SetTools(json::array tools) {
    std::lock_guard lock(mu_);
    tools_ = std::move(tools);
  }
  void SetMode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
  }
  std::vector<json::object> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void ClearCalls() {
    std::lock_guard lock(mu_);
    calls_.clear();
    txn_tokens_.clear();
  }
  // The Transaction Token that went with each call in Calls() ("" for none).
  std::vector<std::string> TxnTokens() {
    std::lock_guard lock(mu_);
    return txn_tokens_;
  }
  std::vector<int64_t> Cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // Each held call is sent (again), as a transport does for a retry or an input_required
  // round: with the token its extras give now.
  void SendHeldAgain() {
    std::lock_guard lock(mu_);
    for (const auto& [id, extras] : held_extras_) txn_tokens_.push_back(TokenOf(extras));
  }
  // The held calls are answered.
  void AnswerHeld() {
    std::map<int64_t, UpstreamCallback> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
      held_extras_.clear();
    }
    for (auto& [id, done] : held) {
      done(json::object{{"result", {{"content", json::array{}}}}});
    }
  }
  bool WaitHeld(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return held_.size() >= n; });
  }

 private:
  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  json::array tools_;                             // guarded by mu_
  Mode mode_ = Mode::kAnswer;                     // guarded by mu_
  int64_t next_id_ = 1;                           // guarded by mu_
  std::vector<json::object> calls_;               // guarded by mu_: params of every tools/call
  std::vector<std::string> txn_tokens_;           // guarded by mu_: the Txn-Token of each call
  std::map<int64_t, UpstreamCallback> held_;      // guarded by mu_
  std::vector<int64_t> cancelled_;                // guarded by mu_
  std::vector<std::string> methods_;              // guarded by mu_: every method called
  std::map<int64_t, RequestExtras> held_extras_;  // guarded by mu_

  // The token a send carries: "" for none, "error: …" when the source has none to give.
  static std::string TokenOf(const RequestExtras& extras) {
    if (!extras.txn_token) return "";
    auto t = extras.txn_token();
    return t.ok() ? *t : "error: " + t.status().message();
  }
};

json::object Tool(const std::string& name, const std::string& description) {
  return json::object{{"name", name},
                      {"description", description},
                      {"inputSchema", json::object{{"type", "object"}}}};
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Every store in memory: the gateway's behaviour, not the files, is under test here.
    // Approvals change state on the service; the gateway hears of it (as `custody serve` wires
    // ApprovalOptions::on_changed to Gateway::OnApprovalChanged).
    world_options_.approvals.base_url = "https://custody.test";
    world_options_.approvals.on_changed = [c = approval_changes_](const store::ApprovalRow& row) {
      c->Changed(row);
    };
    auto w = attribution::testkit::World::Create(
        std::filesystem::temp_directory_path() /
            ("custody-gw-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()),
        world_options_, store::Backend::kMemory);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    auto pub = w_->svc->PublishPolicies(
        "@id(\"files-ok\") permit(principal, action == Action::\"call_tool\", resource in "
        "Server::\"files\");\n"
        "@id(\"no-delete\") forbid(principal, action, resource == Tool::\"files/delete\");\n"
        "@id(\"public-read\") permit(principal, action == Action::\"read_resource\", resource in "
        "Server::\"files\") when { resource.uri like \"file:///public/*\" };\n"
        "@id(\"greet\") permit(principal, action == Action::\"get_prompt\", resource == "
        "Prompt::\"files/greet\");",
        "", "admin");
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    auto pins = store::OpenToolPinStore(store::StorageOptions::InMemory());
    ASSERT_TRUE(pins.ok()) << pins.status().ToString();
    pins_ = std::move(*pins);

    GatewayOptions o;
    o.audience = gateway_audience_;
    o.issuer = attribution::testkit::kTestIssuer;
    // Answers leave once the outcome is durable and queued for the index, so the tests can read
    // it back without racing the recorder.
    o.await_outcome = await_outcome_;
    o.outcome_linger = outcome_linger_;
    o.approval_hold = approval_hold_;
    o.approval_changes = approval_changes_;
    o.make_upstream = [this](UpstreamConfig cfg, UpstreamOptions) {
      auto u = std::make_unique<FakeUpstream>(cfg.name);
      upstream_ = u.get();
      return Result<std::unique_ptr<Upstream>>(std::unique_ptr<Upstream>(std::move(u)));
    };
    ledger::Ledger* led = w_->ledger.get();
    // With a test clock: a token service of its own on the same identity store (the same keys
    // and sessions), minting and verifying at the test's time; the gateway's clock is the same.
    identity::TokenService* tokens = w_->tokens.get();
    const Clock* clock = &w_->clock;
    if (fake_clock_) {
      identity::TokenServiceOptions to;
      to.trust_domain = "custody.test";
      to.issuer = attribution::testkit::kTestIssuer;
      auto t = identity::TokenService::Create(*w_->ids, *fake_clock_, w_->random, w_->errors,
                                              nullptr, to);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      fake_tokens_ = std::move(*t);
      tokens = fake_tokens_.get();
      clock = fake_clock_.get();
    }
    UpstreamConfig files;
    files.name = "files";
    files.command = "unused";  // the fake replaces the process
    files.identity = files_identity_;
    files.txn_audience = files_txn_audience_;
    auto g = Gateway::Create(
        {files}, *tokens, *w_->svc, *pins_,
        [led](const std::string& e) { return events::Recorder(*led).RecordText(e).status(); },
        *clock, w_->random, o);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gateway_ = std::move(*g);
    ASSERT_TRUE(gateway_->AddRoutes(router_, http::AuthRequirement{}).ok());
    gateway_->Start();
    upstream_->SetTools(json::array{Tool("read", "Reads a file"), Tool("delete", "Deletes")});

    auto s = w_->Root("planner");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    token_ = s->token;
    sid_ = s->sid;
    http::Response init = Post(Rpc(1, "initialize", {{"protocolVersion", "2025-06-18"}}));
    ASSERT_EQ(init.status, 200) << init.body;
    mcp_session_ = std::string(init.headers.Get("mcp-session-id").value_or(""));
    ASSERT_FALSE(mcp_session_.empty());
  }
  void TearDown() override {
    // As `custody serve` stops: the ledger runs what is queued while everything is alive.
    gateway_->Stop();
    w_->ledger->Close();
    gateway_.reset();
    fake_tokens_.reset();
    pins_.reset();
    w_.reset();  // removes the directory, once every store is closed
  }

  static std::string Rpc(int id, const std::string& method, json::object params) {
    return json::serialize(json::object{
        {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
  }
  // A POST to /mcp/files, answered (the gateway may answer from another thread).
  http::Response Post(const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::Request req;
    req.method = "POST";
    req.path = path_;
    req.target = req.path;
    req.body = body;
    req.headers.Set("authorization", "Bearer " + token_);
    req.headers.Set("content-type", "application/json");
    req.headers.Set("accept", "application/json");
    if (!mcp_session_.empty()) req.headers.Set("mcp-session-id", mcp_session_);
    for (const auto& [name, value] : headers) req.headers.Set(name, value);
    auto m = router_.Find("POST", req.path);
    EXPECT_NE(m.route, nullptr);
    if (m.route == nullptr) return {};
    req.params = m.params;
    auto p = std::make_shared<std::promise<http::Response>>();
    auto f = p->get_future();
    m.route->handler(req, [p](http::Response r) { p->set_value(std::move(r)); });
    if (f.wait_for(30s) != std::future_status::ready) {
      ADD_FAILURE() << "no answer to " << body;
      return {};
    }
    return f.get();
  }
  // A 2026-07-28 request: no MCP session, the protocol fields in _meta, the standard headers.
  http::Response PostModern(int id, const std::string& method, json::object params,
                            std::string version = "2026-07-28") {
    json::object meta{
        {"io.modelcontextprotocol/protocolVersion", version},
        {"io.modelcontextprotocol/clientCapabilities", json::object{}},
        {"io.modelcontextprotocol/clientInfo", {{"name", "stateless"}, {"version", "2"}}}};
    std::vector<std::pair<std::string, std::string>> headers{{"mcp-protocol-version", version},
                                                             {"mcp-method", method}};
    if (auto n = params.find("name"); n != params.end() && n->value().is_string()) {
      headers.emplace_back("mcp-name", std::string(n->value().get_string()));
    }
    params["_meta"] = std::move(meta);
    std::string saved = std::exchange(mcp_session_, "");
    http::Response r = Post(Rpc(id, method, std::move(params)), headers);
    mcp_session_ = saved;
    return r;
  }
  json::object CallTool(int id, const std::string& tool) {
    http::Response r =
        Post(Rpc(id, "tools/call", {{"name", tool}, {"arguments", {{"path", "a"}}}}));
    EXPECT_EQ(r.status, 200) << r.body;
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    EXPECT_FALSE(ec) << r.body;
    return v.is_object() ? v.as_object() : json::object{};
  }
  json::object ListTools() {
    http::Response r = Post(Rpc(50, "tools/list", {}));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
  }
  std::optional<store::ActionRow> Action(const std::string& action_id) {
    w_->svc->FlushIndex();
    auto row = w_->store->GetAction(action_id);
    EXPECT_TRUE(row.ok());
    return row.ok() ? *row : std::nullopt;
  }
  static std::string ActionIdOf(const json::object& answer) {
    const json::value* meta =
        answer.contains("result") ? answer.at("result").as_object().if_contains("_meta") : nullptr;
    if (meta == nullptr) return "";
    return std::string(meta->at(kReceiptMetaKey).at("action_id").as_string());
  }

  std::unique_ptr<attribution::testkit::World> w_;
  std::unique_ptr<ToolPinStore> pins_;
  std::unique_ptr<Gateway> gateway_;
  // Set before SetUp: the gateway and its token service run on this clock (fake_tokens_).
  std::unique_ptr<FakeClock> fake_clock_;
  std::unique_ptr<identity::TokenService> fake_tokens_;
  FakeUpstream* upstream_ = nullptr;  // owned by the gateway
  http::Router router_;
  std::string token_, sid_, mcp_session_;
  std::string path_ = "/mcp/files";
  std::string files_identity_ = "none";  // the files server's identity (set before SetUp)
  std::string files_txn_audience_;
  std::string gateway_audience_ = "custody";
  attribution::AttributionOptions world_options_;   // set before SetUp
  std::chrono::milliseconds approval_hold_{0};      // GatewayOptions::approval_hold
  bool await_outcome_ = true;                       // GatewayOptions::await_outcome
  std::chrono::microseconds outcome_linger_{5000};  // GatewayOptions::outcome_linger
  std::shared_ptr<ApprovalChanges> approval_changes_ = std::make_shared<ApprovalChanges>();
};

TEST_F(GatewayTest, AnAllowedCallIsRecordedForwardedAndAnsweredWithItsReceipt) {
  json::object list = ListTools();
  ASSERT_EQ(list.at("result").at("tools").as_array().size(), 1u)
      << "the forbidden tool is filtered out: " << json::serialize(list);
  json::object a = CallTool(2, "read");
  ASSERT_TRUE(a.contains("result")) << json::serialize(a);
  EXPECT_EQ(a.at("result").at("content").at(0).at("text"), "done by files");
  const json::object& receipt = a.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  EXPECT_NE(receipt.at("receipt").as_string().find("c2sp.org/tlog-proof@v1"), std::string::npos);
  // Upstream got the call with Custody's traceparent, and never the agent's token.
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].at("name"), "read");
  EXPECT_TRUE(calls[0].at("_meta").as_object().contains("traceparent"));
  EXPECT_EQ(json::serialize(calls[0]).find(token_), std::string::npos);
  // The decision and the outcome are in the ledger and the index.
  auto row = Action(std::string(receipt.at("action_id").as_string()));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->decision, "allow");
  EXPECT_EQ(row->target, "files/read");
  EXPECT_EQ(row->status, "ok");
  EXPECT_EQ(row->sid, sid_);
}

// A number with 17 significant digits (what JSON.stringify writes for a computed double) is
// recorded and forwarded as the caller wrote it: Boost.JSON 1.81's own reading of this one is the
// neighbouring double (common/json_parse.h).
TEST_F(GatewayTest, AnArgumentIsForwardedAndRecordedAsTheCallerWroteIt) {
  const std::string number = "1.0000000186631375";
  const std::string arguments = R"({"path":"a","offset":)" + number + "}";
  http::Response r =
      Post(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read","arguments":)" +
           arguments + "}}");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object a = json::parse(r.body).as_object();
  ASSERT_TRUE(a.contains("result")) << r.body;
  double sent = 0;
  std::from_chars(number.data(), number.data() + number.size(), sent);
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].at("arguments").at("offset").as_double(), sent);
  // The decision records the digest of the arguments as the caller sent them: the RFC 8785 form
  // of the caller's own text hashes to it.
  auto canonical = CanonicalizeJson(arguments);
  ASSERT_TRUE(canonical.ok());
  const json::object& receipt = a.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  auto leaf = w_->ledger->GetEntry(receipt.at("ledger_index").to_number<uint64_t>());
  ASSERT_TRUE(leaf.ok());
  EXPECT_NE(leaf->data.find("\"sha256:" + HexEncode(crypto::Sha256(*canonical)) + "\""),
            std::string::npos)
      << leaf->data;
}

// mcp.await_outcome = false (the default of `custody serve`): the answer leaves before the
// outcome is queued, and the outcome waits for the next decision (mcp/trailing_outcomes.h).
class GatewayTrailingOutcomeTest : public GatewayTest {
 protected:
  GatewayTrailingOutcomeTest() {
    await_outcome_ = false;
    outcome_linger_ = 60s;  // no call outstays it here: only the next decision or Stop records
  }
  // The call's decision index and action id, from its receipt.
  std::pair<int64_t, std::string> Called(int id) {
    json::object a = CallTool(id, "read");
    EXPECT_TRUE(a.contains("result")) << json::serialize(a);
    if (!a.contains("result")) return {-1, ""};
    const json::object& receipt = a.at("result").at("_meta").at(kReceiptMetaKey).as_object();
    EXPECT_EQ(receipt.at("outcome").at("durable"), false);
    return {receipt.at("ledger_index").to_number<int64_t>(),
            std::string(receipt.at("action_id").as_string())};
  }
  // The outcome's ledger index once it is durable (-1 after 10 s).
  int64_t OutcomeIndex(const std::string& action_id) {
    for (int i = 0; i < 1000; ++i) {
      auto row = Action(action_id);
      if (row && row->outcome_index >= 0) return row->outcome_index;
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
};

TEST_F(GatewayTrailingOutcomeTest, AnOutcomeIsRecordedAfterTheNextDecisionOrAtStop) {
  auto [first_decision, first] = Called(2);
  ASSERT_FALSE(first.empty());
  // Answered, its outcome held: not claimed, not in the ledger.
  auto row = Action(first);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->outcome_index, -1);
  EXPECT_EQ(row->status, "");
  auto [second_decision, second] = Called(3);
  ASSERT_FALSE(second.empty());
  // The next decision came first; the first call's outcome followed it into the ledger.
  const int64_t first_outcome = OutcomeIndex(first);
  EXPECT_GT(first_outcome, second_decision);
  EXPECT_GT(second_decision, first_decision);
  row = Action(first);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, "ok");
  EXPECT_EQ(Action(second)->outcome_index, -1);
  // The last call's outcome is not lost when the gateway stops (before the ledger closes).
  gateway_->Stop();
  EXPECT_GT(OutcomeIndex(second), first_outcome);
}

class GatewayShortLingerTest : public GatewayTrailingOutcomeTest {
 protected:
  GatewayShortLingerTest() { outcome_linger_ = 50ms; }
};

TEST_F(GatewayShortLingerTest, WithNoNextCallTheOutcomeIsRecordedAfterTheLinger) {
  auto [decision, action] = Called(2);
  ASSERT_FALSE(action.empty());
  EXPECT_GT(OutcomeIndex(action), decision);
}

TEST_F(GatewayTest, ADeniedCallIsRecordedAndNeverForwarded) {
  ListTools();
  json::object a = CallTool(3, "delete");
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  EXPECT_NE(a.at("error").at("message").as_string().find("no-delete"), std::string::npos)
      << json::serialize(a);
  // Like an allowed call's receipt, the refusal carries the decision's span.
  const json::string& tp = a.at("error").at("data").at("traceparent").as_string();
  EXPECT_EQ(tp.size(), 55u) << tp;
  EXPECT_TRUE(tp.starts_with("00-")) << tp;
  EXPECT_TRUE(upstream_->Calls().empty());
  w_->svc->FlushIndex();
  auto rows = w_->store->ActionsOfSessions({sid_});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].decision, "deny");
  EXPECT_EQ((*rows)[0].target, "files/delete");
}

// A call policy allows but the token's scopes do not cover is a step-up (MCP authorization,
// "Scope challenge handling"): 403 with an RFC 6750 insufficient_scope challenge naming the
// scopes to ask for and the RFC 9728 metadata. A policy refusal stays a JSON-RPC error in a 200.
TEST_F(GatewayTest, ACallOutsideTheTokensScopesIsAStepUpChallenge) {
  upstream_->SetTools(json::array{Tool("read", "Reads a file"), Tool("write", "Writes a file"),
                                  Tool("delete", "Deletes")});
  auto narrow = w_->Root("planner", "files/read");
  ASSERT_TRUE(narrow.ok()) << narrow.status().ToString();
  token_ = narrow->token;
  mcp_session_.clear();
  http::Response init = Post(Rpc(1, "initialize", {{"protocolVersion", "2025-11-25"}}));
  ASSERT_EQ(init.status, 200) << init.body;
  mcp_session_ = std::string(init.headers.Get("mcp-session-id").value_or(""));

  http::Response r = Post(Rpc(2, "tools/call", {{"name", "write"}, {"arguments", {{"p", 1}}}}),
                          {{"host", "gw.example:8443"}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.headers.Get("www-authenticate").value_or(""),
            "Bearer error=\"insufficient_scope\", scope=\"files/read files/write\", "
            "resource_metadata=\"http://gw.example:8443/.well-known/oauth-protected-resource/mcp/"
            "files\"");
  json::object a = json::parse(r.body).as_object();
  EXPECT_EQ(a.at("error").at("code"), kDenied) << r.body;
  EXPECT_EQ(a.at("error").at("data").at("reasons").at(0), "custody:scope") << r.body;
  EXPECT_TRUE(upstream_->Calls().empty());

  // Forbidden by policy whatever the scopes: no challenge, asking for more would not help.
  http::Response denied = Post(Rpc(3, "tools/call", {{"name", "delete"}, {"arguments", {}}}));
  EXPECT_EQ(denied.status, 200) << denied.body;
  EXPECT_FALSE(denied.headers.Get("www-authenticate").has_value());

  // A 2026-07-28 client is told only what the call needs (it adds what it holds itself).
  http::Response modern = PostModern(4, "tools/call", {{"name", "write"}, {"arguments", {}}});
  EXPECT_EQ(modern.status, 403) << modern.body;
  EXPECT_EQ(modern.headers.Get("www-authenticate").value_or(""),
            "Bearer error=\"insufficient_scope\", scope=\"files/write\", "
            "resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource/mcp/"
            "files\"");
  EXPECT_TRUE(upstream_->Calls().empty());
}

TEST_F(GatewayTest, TheFirst401AndTheResourceMetadataNameTheScopesToAskFor) {
  // What MCP clients ask for first (MCP 2025-11-25, "Scope selection strategy"): the 401's
  // scope, else the RFC 9728 metadata's scopes_supported; each "<server>/*".
  auto call = [&](const std::string& method, const std::string& path, bool with_token) {
    http::Request req;
    req.method = method;
    req.path = req.target = path;
    req.headers.Set("host", "gw.example:8443");
    if (with_token) req.headers.Set("authorization", "Bearer not-a-token");
    if (method == "POST") req.body = Rpc(1, "initialize", {{"protocolVersion", "2025-11-25"}});
    auto m = router_.Find(method, path);
    EXPECT_NE(m.route, nullptr) << path;
    http::Response out;
    if (m.route == nullptr) return out;
    req.params = m.params;
    auto p = std::make_shared<std::promise<http::Response>>();
    auto f = p->get_future();
    m.route->handler(req, [p](http::Response r) { p->set_value(std::move(r)); });
    EXPECT_EQ(f.wait_for(30s), std::future_status::ready) << path;
    return f.get();
  };
  http::Response anon = call("POST", "/mcp/files", false);
  EXPECT_EQ(anon.status, 401) << anon.body;
  EXPECT_EQ(anon.headers.Get("www-authenticate").value_or(""),
            "Bearer resource_metadata=\"http://gw.example:8443/.well-known/"
            "oauth-protected-resource/mcp/files\", scope=\"files/*\"");
  http::Response bad = call("POST", "/mcp", true);
  EXPECT_EQ(bad.status, 401) << bad.body;
  EXPECT_EQ(bad.headers.Get("www-authenticate").value_or(""),
            "Bearer resource_metadata=\"http://gw.example:8443/.well-known/"
            "oauth-protected-resource/mcp\", scope=\"files/*\", error=\"invalid_token\"");

  for (const char* path :
       {"/.well-known/oauth-protected-resource/mcp/files",
        "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"}) {
    http::Response m = call("GET", path, false);
    ASSERT_EQ(m.status, 200) << path;
    json::object o = json::parse(m.body).as_object();
    EXPECT_EQ(o.at("resource").as_string(), gateway_audience_) << m.body;
    EXPECT_EQ(o.at("scopes_supported"), (json::array{"files/*"})) << m.body;
  }
  EXPECT_EQ(call("GET", "/.well-known/oauth-protected-resource/mcp/nope", false).status, 404);
}

TEST_F(GatewayTest, ContainingTheSessionMidCallCancelsItUpstreamAndEndsTheMcpSession) {
  ListTools();
  upstream_->SetMode(FakeUpstream::Mode::kHold);
  auto answer = std::async(std::launch::async, [&] { return CallTool(4, "read"); });
  ASSERT_TRUE(upstream_->WaitHeld(1));
  auto contained = w_->svc->Contain("session", sid_, "exfiltration suspected", "admin");
  ASSERT_TRUE(contained.ok()) << contained.status().ToString();
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied) << json::serialize(a);
  EXPECT_EQ(upstream_->Cancelled().size(), 1u);
  // The MCP session is gone: the next request is refused.
  http::Response next = Post(Rpc(5, "tools/list", {}));
  EXPECT_EQ(next.status, 404) << next.body;
}

// A 2026-07-28 request is served without a session, decided and recorded per request, and
// answered in the revision's shape; its own protocol fields are not passed upstream.
TEST_F(GatewayTest, AModernRequestIsStatelessAndAnsweredInItsShape) {
  http::Response call =
      PostModern(60, "tools/call", {{"name", "read"}, {"arguments", {{"path", "a"}}}});
  ASSERT_EQ(call.status, 200) << call.body;
  json::object a = json::parse(call.body).as_object();
  ASSERT_TRUE(a.contains("result")) << call.body;
  EXPECT_EQ(a.at("result").at("resultType"), "complete");
  EXPECT_FALSE(a.at("result").as_object().contains("ttlMs")) << "a call's result is not cacheable";
  EXPECT_EQ(a.at("result").at("_meta").at("io.modelcontextprotocol/serverInfo").at("name"),
            "custody-gateway/files");
  auto row = Action(ActionIdOf(a));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->decision, "allow");
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  const json::object& meta = calls[0].at("_meta").as_object();
  EXPECT_TRUE(meta.contains("traceparent"));
  EXPECT_FALSE(meta.contains("io.modelcontextprotocol/clientCapabilities"));

  http::Response list = PostModern(61, "tools/list", {});
  json::object l = json::parse(list.body).as_object();
  EXPECT_EQ(l.at("result").at("ttlMs"), 0) << list.body;
  EXPECT_EQ(l.at("result").at("cacheScope"), "private");
  http::Response discover = PostModern(62, "server/discover", {});
  json::object d = json::parse(discover.body).as_object();
  ASSERT_TRUE(d.contains("result")) << discover.body;
  EXPECT_EQ(d.at("result").at("supportedVersions").at(0), "2026-07-28");
  EXPECT_TRUE(d.at("result").at("capabilities").as_object().contains("tools"));

  // The ladder: an unsupported version, a header that disagrees, a removed method.
  http::Response old = PostModern(63, "tools/list", {}, "2099-01-01");
  EXPECT_EQ(old.status, 400);
  EXPECT_EQ(json::parse(old.body).at("error").at("code"), kUnsupportedVersion) << old.body;
  EXPECT_EQ(json::parse(old.body).at("error").at("data").at("requested"), "2099-01-01");
  std::string saved = std::exchange(mcp_session_, "");
  http::Response lying = Post(
      Rpc(64, "tools/call",
          {{"name", "delete"},
           {"_meta",
            {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
             {"io.modelcontextprotocol/clientCapabilities", json::object{}}}}}),
      {{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "tools/call"}, {"mcp-name", "read"}});
  mcp_session_ = saved;
  EXPECT_EQ(lying.status, 400);
  EXPECT_EQ(json::parse(lying.body).at("error").at("code"), kHeaderMismatch) << lying.body;
  http::Response ping = PostModern(65, "ping", {});
  EXPECT_EQ(ping.status, 404);
  EXPECT_EQ(json::parse(ping.body).at("error").at("code"), kMethodNotFound);
  EXPECT_EQ(upstream_->Calls().size(), 1u) << "nothing refused reached the server";

  // A contained session's stateless attempt is recorded as a refusal, then answered 401.
  ASSERT_TRUE(w_->svc->Contain("session", sid_, "exfiltration suspected", "admin").ok());
  http::Response after =
      PostModern(66, "tools/call", {{"name", "read"}, {"arguments", {{"path", "a"}}}});
  EXPECT_EQ(after.status, 401) << after.body;
  EXPECT_NE(after.body.find("recorded at ledger index"), std::string::npos) << after.body;
  EXPECT_EQ(upstream_->Calls().size(), 1u);
}

// What a contained session tries next through the gateway is evidence, as on the native API:
// each tools/call is decided (refused before policy, custody:session_revoked), recorded with a
// receipt, and answered 404 (the MCP session is gone), never forwarded. Other methods are
// refused 404 as before.
TEST_F(GatewayTest, AContainedSessionsNextCallsAreRecordedAsRefusalsAndAnswered404) {
  ListTools();
  ASSERT_TRUE(w_->svc->Contain("session", sid_, "exfiltration suspected", "admin").ok());
  for (const char* tool : {"read", "delete"}) {
    http::Response r =
        Post(Rpc(6, "tools/call", {{"name", tool}, {"arguments", {{"path", "/etc/shadow"}}}}));
    ASSERT_EQ(r.status, 404) << r.body;
    json::object a = json::parse(r.body).as_object();
    ASSERT_TRUE(a.contains("error")) << r.body;
    EXPECT_EQ(a.at("error").at("code"), kDenied);
    EXPECT_NE(a.at("error").at("message").as_string().find("contained"), std::string::npos)
        << r.body;
    EXPECT_NE(a.at("error").at("message").as_string().find("recorded at ledger index"),
              std::string::npos)
        << r.body;
    const json::object& data = a.at("error").at("data").as_object();
    EXPECT_EQ(json::serialize(data.at("reasons")), R"(["custody:session_revoked"])") << r.body;
    EXPECT_NE(data.at("receipt").as_string().find("c2sp.org/tlog-proof@v1"), std::string::npos);
    auto row = Action(std::string(data.at("action_id").as_string()));
    ASSERT_TRUE(row.has_value()) << r.body;
    EXPECT_EQ(row->decision, "deny");
    EXPECT_EQ(row->sid, sid_);
    EXPECT_EQ(row->target, std::string("files/") + tool);
    // The recorded decision names the reason (the ledger's decision event).
    auto leaf = w_->ledger->GetEntry(static_cast<uint64_t>(row->decision_index));
    ASSERT_TRUE(leaf.ok());
    EXPECT_NE(leaf->data.find("custody:session_revoked"), std::string::npos) << leaf->data;
  }
  // Reading a resource is an attempt too.
  http::Response read = Post(Rpc(8, "resources/read", {{"uri", "file:///public/a"}}));
  ASSERT_EQ(read.status, 404) << read.body;
  json::object rd = json::parse(read.body).as_object();
  auto rrow = Action(std::string(rd.at("error").at("data").at("action_id").as_string()));
  ASSERT_TRUE(rrow.has_value()) << read.body;
  EXPECT_EQ(rrow->action, "read_resource");
  EXPECT_EQ(rrow->decision, "deny");
  EXPECT_EQ(rrow->target, "files/resource:file:///public/a");
  EXPECT_TRUE(upstream_->Calls().empty()) << "nothing reaches the server";
  http::Response list = Post(Rpc(7, "tools/list", {}));
  EXPECT_EQ(list.status, 404) << list.body;
  EXPECT_EQ(list.body.find("recorded"), std::string::npos) << list.body;
}

// completion/complete and logging/setLevel reach the server as they are, and its answer (result
// or error) reaches the client under the client's id; the capabilities are offered because the
// server declared them.
TEST_F(GatewayTest, CompletionAndLogLevelPassThroughToTheServer) {
  http::Response c = Post(Rpc(8, "completion/complete",
                              {{"ref", {{"type", "ref/prompt"}, {"name", "greet"}}},
                               {"argument", {{"name", "name"}, {"value", "al"}}}}));
  ASSERT_EQ(c.status, 200) << c.body;
  json::object a = json::parse(c.body).as_object();
  EXPECT_EQ(a.at("id"), 8);
  EXPECT_EQ(json::serialize(a.at("result").at("completion").at("values")), R"(["alpha","alpine"])");
  http::Response ok = Post(Rpc(9, "logging/setLevel", {{"level", "debug"}}));
  EXPECT_EQ(ok.body, R"({"jsonrpc":"2.0","id":9,"result":{}})");
  http::Response bad = Post(Rpc(10, "logging/setLevel", {{"level", "loud"}}));
  json::object b = json::parse(bad.body).as_object();
  EXPECT_EQ(b.at("error").at("code"), -32602) << bad.body;
  EXPECT_EQ(b.at("id"), 10);
  auto methods = upstream_->Methods();
  EXPECT_EQ(std::count(methods.begin(), methods.end(), "logging/setLevel"), 2);
  EXPECT_EQ(std::count(methods.begin(), methods.end(), "completion/complete"), 1);

  http::Response init = Post(Rpc(11, "initialize", {{"protocolVersion", "2025-06-18"}}));
  json::object caps = json::parse(init.body).at("result").at("capabilities").as_object();
  EXPECT_TRUE(caps.contains("completions")) << init.body;
  EXPECT_TRUE(caps.contains("logging")) << init.body;
}

// Reading a resource and getting a prompt are decided like tool calls (read_resource on
// Resource::"files/<uri>", get_prompt on Prompt::"files/<name>"), recorded, forwarded only when
// allowed and answered with the receipt; their lists show only what the caller could use.
TEST_F(GatewayTest, ResourcesAndPromptsAreDecidedRecordedAndFiltered) {
  http::Response list = Post(Rpc(20, "resources/list", {}));
  json::object l = json::parse(list.body).as_object();
  ASSERT_TRUE(l.contains("result")) << list.body;
  EXPECT_EQ(l.at("result").at("resources").as_array().size(), 1u) << list.body;
  EXPECT_EQ(l.at("result").at("resources").at(0).at("uri"), "file:///public/a");
  EXPECT_EQ(l.at("result").at("nextCursor"), "page-2") << "the server's paging is kept";
  http::Response plist = Post(Rpc(21, "prompts/list", {}));
  json::object pl = json::parse(plist.body).as_object();
  ASSERT_EQ(pl.at("result").at("prompts").as_array().size(), 1u) << plist.body;
  EXPECT_EQ(pl.at("result").at("prompts").at(0).at("name"), "greet");

  http::Response ok = Post(Rpc(22, "resources/read", {{"uri", "file:///public/a"}}));
  json::object a = json::parse(ok.body).as_object();
  ASSERT_TRUE(a.contains("result")) << ok.body;
  const json::object& receipt = a.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  auto row = Action(std::string(receipt.at("action_id").as_string()));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->action, "read_resource");
  EXPECT_EQ(row->target, "files/resource:file:///public/a");
  EXPECT_EQ(row->decision, "allow");
  EXPECT_EQ(row->status, "ok");

  http::Response no = Post(Rpc(23, "resources/read", {{"uri", "file:///secret/b"}}));
  json::object d = json::parse(no.body).as_object();
  ASSERT_TRUE(d.contains("error")) << no.body;
  EXPECT_EQ(d.at("error").at("code"), kDenied);
  auto denied = Action(std::string(d.at("error").at("data").at("action_id").as_string()));
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->decision, "deny");
  EXPECT_EQ(denied->target, "files/resource:file:///secret/b");

  http::Response prompt =
      Post(Rpc(24, "prompts/get", {{"name", "greet"}, {"arguments", {{"who", "ada"}}}}));
  json::object p = json::parse(prompt.body).as_object();
  ASSERT_TRUE(p.contains("result")) << prompt.body;
  auto prow = Action(
      std::string(p.at("result").at("_meta").at(kReceiptMetaKey).at("action_id").as_string()));
  ASSERT_TRUE(prow.has_value());
  EXPECT_EQ(prow->action, "get_prompt");
  EXPECT_EQ(prow->target, "files/prompt:greet");
  http::Response leak = Post(Rpc(25, "prompts/get", {{"name", "leak"}}));
  EXPECT_EQ(json::parse(leak.body).at("error").at("code"), kDenied) << leak.body;

  // Only the allowed read and prompt reached the server, with what the client sent.
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("uri"), "file:///public/a");
  EXPECT_TRUE(calls[0].at("_meta").as_object().contains("traceparent"));
  EXPECT_EQ(calls[1].at("name"), "greet");
  EXPECT_EQ(calls[1].at("arguments").at("who"), "ada");

  // A subscription only to what the caller could read; the refused one never reaches the server.
  http::Response sub = Post(Rpc(27, "resources/subscribe", {{"uri", "file:///public/a"}}));
  EXPECT_TRUE(json::parse(sub.body).as_object().contains("result")) << sub.body;
  http::Response nosub = Post(Rpc(28, "resources/subscribe", {{"uri", "file:///secret/b"}}));
  EXPECT_EQ(json::parse(nosub.body).at("error").at("code"), kDenied) << nosub.body;
  auto methods = upstream_->Methods();
  EXPECT_EQ(std::count(methods.begin(), methods.end(), "resources/subscribe"), 1);
  upstream_->ClearCalls();

  // Malformed params never reach policy or the server.
  for (const auto& [method, params] : std::vector<std::pair<std::string, json::object>>{
           {"resources/read", {}},
           {"resources/read", {{"uri", 7}}},
           {"resources/read", {{"uri", " file:///secret/b"}}},
           {"resources/read", {{"uri", "secret/b"}}},
           {"resources/subscribe", {{"uri", "file:///secret/b\n"}}},
           {"prompts/get", {{"name", ""}}},
           {"prompts/get", {{"name", "greet"}, {"arguments", 1}}},
           {"prompts/get", {{"name", "greet"}, {"arguments", {{"who", 5}}}}}}) {
    http::Response bad = Post(Rpc(26, method, params));
    EXPECT_EQ(json::parse(bad.body).at("error").at("code"), kInvalidParams) << bad.body;
  }
  EXPECT_TRUE(upstream_->Calls().empty());
}

TEST_F(GatewayTest, AResourceIsDecidedInTheFormTheServerIsSent) {
  // Other spellings of a forbidden URI are the same URI: denied, and never forwarded.
  for (const char* spelling : {"FILE:///secret/b", "file:///secret/./b",
                               "file:///public/../secret/b", "file:///secret/%62"}) {
    http::Response no = Post(Rpc(30, "resources/read", {{"uri", spelling}}));
    json::object d = json::parse(no.body).as_object();
    ASSERT_TRUE(d.contains("error")) << spelling << ": " << no.body;
    EXPECT_EQ(d.at("error").at("code"), kDenied) << spelling;
    auto row = Action(std::string(d.at("error").at("data").at("action_id").as_string()));
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->target, "files/resource:file:///secret/b") << spelling;
    http::Response nosub = Post(Rpc(31, "resources/subscribe", {{"uri", spelling}}));
    EXPECT_EQ(json::parse(nosub.body).at("error").at("code"), kDenied) << nosub.body;
  }
  EXPECT_TRUE(upstream_->Calls().empty());
  // An allowed one is forwarded as it was decided; a null arguments is not passed on.
  http::Response ok = Post(Rpc(32, "resources/read", {{"uri", "FILE:///public/./a"}}));
  ASSERT_TRUE(json::parse(ok.body).as_object().contains("result")) << ok.body;
  http::Response prompt = Post(Rpc(33, "prompts/get", {{"name", "greet"}, {"arguments", nullptr}}));
  ASSERT_TRUE(json::parse(prompt.body).as_object().contains("result")) << prompt.body;
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("uri"), "file:///public/a");
  EXPECT_FALSE(calls[1].contains("arguments"));
}

TEST_F(GatewayTest, AnUpstreamCrashIsAnErrorAndItsOutcomeIsRecorded) {
  ListTools();
  upstream_->SetMode(FakeUpstream::Mode::kCrash);
  json::object a = CallTool(6, "read");
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_NE(a.at("error").at("message").as_string().find("exited"), std::string::npos)
      << json::serialize(a);
  w_->svc->FlushIndex();
  auto rows = w_->store->ActionsOfSessions({sid_});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].decision, "allow");
  EXPECT_EQ((*rows)[0].status, "error") << "the decision was recorded, then its failure";
}

TEST_F(GatewayTest, AChangedToolDefinitionIsRefusedUntilApproved) {
  ListTools();
  upstream_->SetTools(
      json::array{Tool("read", "Reads a file, then mails it elsewhere"), Tool("delete", "D")});
  ListTools();  // observes the change
  json::object a = CallTool(7, "read");
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  const std::string hash(a.at("error").at("data").at("definition_hash").as_string());
  EXPECT_EQ(a.at("error").at("data").at("reason"), "custody:tool_definition_changed");
  EXPECT_TRUE(upstream_->Calls().empty());

  ASSERT_TRUE(gateway_->Approve("files", "read", hash, "admin").ok());
  json::object b = CallTool(8, "read");
  EXPECT_TRUE(b.contains("result")) << json::serialize(b);
  EXPECT_EQ(upstream_->Calls().size(), 1u);
  EXPECT_FALSE(ActionIdOf(b).empty());
}

// Resources and prompts are pinned as tools are. Here the pins an earlier run approved differ
// from what the server lists now (public/a had another description, greet another argument):
// the first read of public/a lists the resources first, and it and greet are then refused
// (custody:resource_definition_changed, custody:prompt_definition_changed), recorded once in the
// ledger and never forwarded, until an operator approves the hashes through the API. secret/b
// was approved with a size: its size is no part of its definition. What the server lists reaches
// policy (resource.name, resource.definition_hash); a resource never listed is read unpinned.
TEST_F(GatewayTest, AChangedResourceOrPromptDefinitionIsRefusedUntilApproved) {
  auto earlier_a = ResourceDefinitionHash(
      json::object{{"uri", "file:///public/a"}, {"name", "a"}, {"description", "Public notes"}});
  auto earlier_b =
      ResourceDefinitionHash(json::object{{"uri", "file:///secret/b"}, {"name", "b"}, {"size", 7}});
  auto earlier_greet = PromptDefinitionHash(
      json::object{{"name", "greet"}, {"arguments", json::array{json::object{{"name", "who"}}}}});
  ASSERT_TRUE(earlier_a.ok() && earlier_b.ok() && earlier_greet.ok());
  ASSERT_TRUE(pins_->Observe(PinKind::kResource, "files", earlier_a->uri, earlier_a->hash, 1).ok());
  ASSERT_TRUE(pins_->Observe(PinKind::kResource, "files", earlier_b->uri, earlier_b->hash, 1).ok());
  ASSERT_TRUE(pins_->Observe(PinKind::kPrompt, "files", "greet", *earlier_greet, 1).ok());

  auto ledger_kinds = [&] {
    std::vector<std::string> kinds;
    for (uint64_t i = 0; i < w_->ledger->Size(); ++i) {
      auto leaf = w_->ledger->GetEntry(i);
      if (!leaf.ok()) continue;
      json::object e = json::parse(leaf->data).as_object();
      const std::string kind(e.at("kind").as_string());
      if (kind.starts_with("resource.") || kind.starts_with("prompt.")) {
        kinds.push_back(kind + " " + std::string(e.at("target").at("id").as_string()));
      }
    }
    return kinds;
  };
  auto admin = [&](const std::string& method, const std::string& path, json::object body) {
    http::Request req;
    req.method = method;
    req.path = req.target = path;
    req.body = json::serialize(body);
    req.principal = http::Principal{"t1", "admin"};
    auto m = router_.Find(method, path);
    EXPECT_NE(m.route, nullptr) << path;
    http::Response out;
    if (m.route != nullptr) m.route->handler(req, [&out](http::Response r) { out = std::move(r); });
    return out;
  };

  http::Response read = Post(Rpc(40, "resources/read", {{"uri", "file:///public/a"}}));
  json::object r = json::parse(read.body).as_object();
  ASSERT_TRUE(r.contains("error")) << read.body;
  EXPECT_EQ(r.at("error").at("code"), kDenied);
  EXPECT_EQ(r.at("error").at("data").at("reason"), "custody:resource_definition_changed");
  const std::string a_hash(r.at("error").at("data").at("definition_hash").as_string());
  EXPECT_NE(a_hash, earlier_a->hash);
  EXPECT_NE(r.at("error").at("message").as_string().find(
                "custody resource approve files file:///public/a " + a_hash),
            std::string::npos)
      << read.body;
  auto methods = upstream_->Methods();
  EXPECT_NE(std::find(methods.begin(), methods.end(), "resources/list"), methods.end())
      << "a read before any listing lists first";
  http::Response get = Post(Rpc(41, "prompts/get", {{"name", "greet"}}));
  json::object g = json::parse(get.body).as_object();
  ASSERT_TRUE(g.contains("error")) << get.body;
  EXPECT_EQ(g.at("error").at("data").at("reason"), "custody:prompt_definition_changed");
  const std::string greet_hash(g.at("error").at("data").at("definition_hash").as_string());
  EXPECT_TRUE(upstream_->Calls().empty()) << "nothing refused reached the server";
  Post(Rpc(42, "resources/list", {}));  // the same change again: recorded once
  EXPECT_EQ(ledger_kinds(), (std::vector<std::string>{"resource.definition_change file:///public/a",
                                                      "prompt.definition_change greet"}))
      << "secret/b's size is no change";

  http::Response listed = admin("GET", "/v1/mcp/resources", {});
  ASSERT_EQ(listed.status, 200) << listed.body;
  std::map<std::string, std::string> status;  // by URI
  const json::value pins = json::parse(listed.body);
  for (const json::value& p : pins.at("resources").as_array()) {
    status[std::string(p.at("uri").as_string())] = p.at("status").as_string();
  }
  EXPECT_EQ(status["file:///public/a"], "changed") << listed.body;
  EXPECT_EQ(status["file:///secret/b"], "approved") << listed.body;
  EXPECT_EQ(admin("POST", "/v1/mcp/resources/approve",
                  {{"server", "files"}, {"uri", "file:///public/a"}, {"hash", earlier_a->hash}})
                .status,
            409)
      << "only the hash the server lists now";
  http::Response ok = admin("POST", "/v1/mcp/resources/approve",
                            {{"server", "files"}, {"uri", "FILE:///public/./a"}, {"hash", a_hash}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body).at("uri"), "file:///public/a");
  ASSERT_EQ(admin("POST", "/v1/mcp/prompts/approve",
                  {{"server", "files"}, {"prompt", "greet"}, {"hash", greet_hash}})
                .status,
            200);
  EXPECT_EQ(
      admin("POST", "/v1/mcp/prompts/approve", {{"server", "files"}, {"hash", greet_hash}}).status,
      400);

  read = Post(Rpc(43, "resources/read", {{"uri", "file:///public/a"}}));
  r = json::parse(read.body).as_object();
  ASSERT_TRUE(r.contains("result")) << read.body;
  EXPECT_EQ(r.at("result").at("_meta").at(kReceiptMetaKey).at("definition_hash").as_string(),
            a_hash);
  get = Post(Rpc(44, "prompts/get", {{"name", "greet"}}));
  ASSERT_TRUE(json::parse(get.body).as_object().contains("result")) << get.body;
  EXPECT_EQ(upstream_->Calls().size(), 2u);
  std::vector<std::string> kinds = ledger_kinds();
  ASSERT_EQ(kinds.size(), 4u);
  EXPECT_EQ(kinds[2], "resource.approve file:///public/a");
  EXPECT_EQ(kinds[3], "prompt.approve greet");

  // A resource no list names (a template's, say) is read unpinned: no definition_hash.
  http::Response unlisted = Post(Rpc(45, "resources/read", {{"uri", "file:///public/unlisted"}}));
  json::object u = json::parse(unlisted.body).as_object();
  ASSERT_TRUE(u.contains("result")) << unlisted.body;
  EXPECT_FALSE(
      u.at("result").at("_meta").at(kReceiptMetaKey).as_object().contains("definition_hash"));
  // Policy sees what the server lists: reads only of pinned resources, by name.
  auto pub = w_->svc->PublishPolicies(
      "@id(\"public-read\") permit(principal, action == Action::\"read_resource\", resource in "
      "Server::\"files\") when { resource.uri like \"file:///public/*\" };\n"
      "@id(\"pinned-only\") forbid(principal, action == Action::\"read_resource\", resource) "
      "unless { resource has definition_hash && resource has name && resource.name == \"a\" };",
      "", "admin");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  read = Post(Rpc(46, "resources/read", {{"uri", "file:///public/a"}}));
  EXPECT_TRUE(json::parse(read.body).as_object().contains("result")) << read.body;
  unlisted = Post(Rpc(47, "resources/read", {{"uri", "file:///public/unlisted"}}));
  u = json::parse(unlisted.body).as_object();
  ASSERT_TRUE(u.contains("error")) << unlisted.body;
  EXPECT_NE(u.at("error").at("message").as_string().find("pinned-only"), std::string::npos)
      << unlisted.body;
}

// The aggregate endpoint serves every server's resources and prompts, named for their server,
// filtered per caller, and routes reads and gets by those names to the same decisions.
TEST_F(GatewayTest, TheAggregateEndpointNamesResourcesAndPromptsByServer) {
  path_ = "/mcp";
  mcp_session_.clear();
  http::Response init = Post(Rpc(70, "initialize", {{"protocolVersion", "2025-11-25"}}));
  ASSERT_EQ(init.status, 200) << init.body;
  mcp_session_ = std::string(init.headers.Get("mcp-session-id").value_or(""));
  json::object caps = json::parse(init.body).at("result").at("capabilities").as_object();
  EXPECT_TRUE(caps.contains("resources") && caps.contains("prompts")) << init.body;

  json::object list = json::parse(Post(Rpc(71, "resources/list", {})).body).as_object();
  // Every page (the fake hands its cursor back unchanged: that ends it), each item once, the
  // secret one filtered out.
  ASSERT_EQ(list.at("result").at("resources").as_array().size(), 1u) << json::serialize(list);
  EXPECT_EQ(list.at("result").at("resources").at(0).at("uri"), "custody://files/file:///public/a");
  EXPECT_FALSE(list.at("result").as_object().contains("nextCursor"));
  json::object prompts = json::parse(Post(Rpc(72, "prompts/list", {})).body).as_object();
  ASSERT_EQ(prompts.at("result").at("prompts").as_array().size(), 1u);
  EXPECT_EQ(prompts.at("result").at("prompts").at(0).at("name"), "files__greet");

  http::Response read =
      Post(Rpc(73, "resources/read", {{"uri", "custody://files/file:///public/a"}}));
  json::object r = json::parse(read.body).as_object();
  ASSERT_TRUE(r.contains("result")) << read.body;
  auto row = Action(ActionIdOf(r));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->target, "files/resource:file:///public/a");
  http::Response no =
      Post(Rpc(74, "resources/read", {{"uri", "custody://files/file:///secret/b"}}));
  EXPECT_EQ(json::parse(no.body).at("error").at("code"), kDenied) << no.body;
  http::Response get = Post(Rpc(75, "prompts/get", {{"name", "files__greet"}}));
  ASSERT_TRUE(json::parse(get.body).as_object().contains("result")) << get.body;
  for (const char* bad :
       {"file:///public/a", "custody://nope/file:///public/a", "custody://files"}) {
    http::Response b = Post(Rpc(76, "resources/read", {{"uri", bad}}));
    EXPECT_EQ(json::parse(b.body).at("error").at("code"), kInvalidParams) << bad << ": " << b.body;
  }
  auto calls = upstream_->Calls();
  ASSERT_EQ(calls.size(), 2u) << "only the allowed read and get reached the server";
  EXPECT_EQ(calls[0].at("uri"), "file:///public/a");
  EXPECT_EQ(calls[1].at("name"), "greet");
}

// --- Identity for upstreams: a Transaction Token with each enforced call (identity/txn_token.h).

json::object JwtPart(const std::string& token, int index) {
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string_view part = index == 0 ? std::string_view(token).substr(0, d1)
                                     : std::string_view(token).substr(d1 + 1, d2 - d1 - 1);
  auto bytes = Base64UrlDecode(part);
  if (!bytes.ok()) return {};
  return json::parse(AsString(*bytes)).as_object();
}

class GatewayTxnTokenTest : public GatewayTest {
 protected:
  void SetUp() override {
    files_identity_ = "txn-token";
    GatewayTest::SetUp();
  }
  // The caller becomes a worker acting for the planner (alice -> planner -> worker), in an MCP
  // session of its own.
  void BecomeDelegatedWorker() {
    ASSERT_TRUE(w_->Register("worker", {"files/*"}, {}, identity::Environment::kDev).ok());
    auto child = w_->Child(token_, "worker");
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    parent_token_ = token_;
    token_ = child->token;
    mcp_session_.clear();
    http::Response init = Post(Rpc(1, "initialize", {{"protocolVersion", "2025-06-18"}}));
    ASSERT_EQ(init.status, 200) << init.body;
    mcp_session_ = std::string(init.headers.Get("mcp-session-id").value_or(""));
  }
  bool VerifiesWithJwks(const std::string& token) {
    auto jwks = crypto::Jwks::Parse(w_->tokens->JwksJson());
    return jwks.ok() && crypto::VerifyJwsWithJwks(token, *jwks, crypto::kCustodyAlgorithms).ok();
  }
  std::string parent_token_;
};

TEST_F(GatewayTxnTokenTest, EachAllowedCallCarriesATokenForItAlone) {
  BecomeDelegatedWorker();
  json::object first = CallTool(2, "read");
  ASSERT_TRUE(first.contains("result")) << json::serialize(first);
  json::object second = CallTool(3, "read");
  ASSERT_TRUE(second.contains("result"));
  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 2u);
  ASSERT_FALSE(tokens[0].empty());

  json::object h = JwtPart(tokens[0], 0);
  EXPECT_EQ(h.at("typ"), "txntoken+jwt");
  EXPECT_EQ(h.at("alg"), "ES256");
  EXPECT_TRUE(VerifiesWithJwks(tokens[0]));
  json::object c = JwtPart(tokens[0], 1);
  json::object session = JwtPart(token_, 1);
  EXPECT_EQ(c.at("iss"), attribution::testkit::kTestIssuer);
  EXPECT_EQ(c.at("aud"), "urn:custody:mcp:files");  // a stdio server's default
  EXPECT_EQ(c.at("sub"), "alice@example.com");
  EXPECT_EQ(c.at("act"), session.at("act")) << "the actor chain as the session token has it";
  EXPECT_TRUE(c.at("act").as_object().contains("act")) << "worker, acting for the planner";
  EXPECT_EQ(c.at("scope"), "files/read") << "narrowed to the one tool";
  EXPECT_EQ(c.at("req_wl"), "custody");  // the gateway's audience
  EXPECT_LE(c.at("exp").as_int64() - c.at("iat").as_int64(), 60);
  // The transaction is the decision: its action id is txn and in tctx, and the receipt names
  // the token by jti (never the token itself).
  std::string action_id = ActionIdOf(first);
  EXPECT_EQ(c.at("txn"), action_id.c_str());
  EXPECT_EQ(c.at("tctx").at("action_id"), action_id.c_str());
  EXPECT_EQ(c.at("tctx").at("action"), "call_tool");
  EXPECT_EQ(c.at("tctx").at("sid"), session.at("sid"));
  EXPECT_EQ(c.at("rctx").at("mcp_server"), "files");
  const json::object& receipt = first.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  EXPECT_EQ(receipt.at("txn_token").at("jti"), c.at("jti"));
  EXPECT_EQ(json::serialize(first).find(tokens[0]), std::string::npos);
  // The outcome event names it too (jti and aud, never the token): the upstream's logs meet the
  // ledger there.
  auto outcome =
      w_->ledger->GetEntry(receipt.at("outcome").at("ledger_index").to_number<uint64_t>());
  ASSERT_TRUE(outcome.ok()) << json::serialize(receipt);
  json::object oe = json::parse(outcome->data).as_object();
  EXPECT_EQ(oe.at("kind"), "action.outcome");
  ASSERT_TRUE(oe.contains("txn_token")) << outcome->data;
  EXPECT_EQ(oe.at("txn_token").at("jti"), c.at("jti"));
  EXPECT_EQ(oe.at("txn_token").at("aud"), "urn:custody:mcp:files");
  EXPECT_EQ(outcome->data.find(tokens[0]), std::string::npos);
  // Never the client's own token, in the token or anywhere in what the server got.
  for (const std::string& t : {token_, parent_token_}) {
    EXPECT_EQ(tokens[0].find(t), std::string::npos);
    for (const auto& call : upstream_->Calls()) {
      EXPECT_EQ(json::serialize(call).find(t), std::string::npos);
    }
  }

  // A fresh token per call: another jti and transaction.
  json::object c2 = JwtPart(tokens[1], 1);
  EXPECT_NE(c2.at("jti"), c.at("jti"));
  EXPECT_EQ(c2.at("txn"), ActionIdOf(second).c_str());
  EXPECT_NE(c2.at("txn"), c.at("txn"));
}

TEST_F(GatewayTxnTokenTest, ResourcesAndPromptsGetTheirOwnScope) {
  ASSERT_EQ(Post(Rpc(20, "resources/list", {})).status, 200);
  ASSERT_EQ(Post(Rpc(21, "prompts/list", {})).status, 200);
  http::Response read = Post(Rpc(22, "resources/read", {{"uri", "file:///public/a"}}));
  ASSERT_TRUE(json::parse(read.body).as_object().contains("result")) << read.body;
  http::Response get = Post(Rpc(23, "prompts/get", {{"name", "greet"}}));
  ASSERT_TRUE(json::parse(get.body).as_object().contains("result")) << get.body;
  // A denied read reaches nobody, so no token is minted for it.
  http::Response no = Post(Rpc(24, "resources/read", {{"uri", "file:///secret/b"}}));
  EXPECT_EQ(json::parse(no.body).at("error").at("code"), kDenied);
  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 2u);
  json::object read_claims = JwtPart(tokens[0], 1);
  EXPECT_EQ(read_claims.at("scope"), "files/resource:file:///public/a");
  EXPECT_EQ(read_claims.at("tctx").at("action"), "read_resource");
  EXPECT_EQ(read_claims.at("sub"), "alice@example.com");
  EXPECT_FALSE(read_claims.contains("act") && read_claims.at("act").as_object().contains("act"))
      << "a root session has one actor";
  json::object get_claims = JwtPart(tokens[1], 1);
  EXPECT_EQ(get_claims.at("scope"), "files/prompt:greet");
  EXPECT_EQ(get_claims.at("tctx").at("action"), "get_prompt");
  // The lists themselves are not enforced calls: the fake saw them without a token.
  EXPECT_EQ(upstream_->Calls().size(), 2u);
}

class GatewayTxnAudienceTest : public GatewayTxnTokenTest {
 protected:
  void SetUp() override {
    files_txn_audience_ = "https://files.internal.example";
    GatewayTxnTokenTest::SetUp();
  }
};

TEST_F(GatewayTxnAudienceTest, TheConfiguredAudienceIsTheTokensAud) {
  ASSERT_TRUE(CallTool(2, "read").contains("result"));
  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(JwtPart(tokens[0], 1).at("aud"), "https://files.internal.example");
}

// A server configured to be told who is behind each call never gets a call without: when no
// token can be minted (here: a gateway with no audience has no req_wl to name), the allowed call
// is not forwarded, the client hears why, and the outcome is recorded as an error.
class GatewayTxnTokenFailClosedTest : public GatewayTxnTokenTest {
 protected:
  void SetUp() override {
    gateway_audience_ = "";
    GatewayTxnTokenTest::SetUp();
  }
};

TEST_F(GatewayTxnTokenFailClosedTest, NoTokenNoCall) {
  json::object answer = CallTool(2, "read");
  ASSERT_TRUE(answer.contains("error")) << json::serialize(answer);
  EXPECT_EQ(answer.at("error").at("code"), kUnavailable);
  std::string message(answer.at("error").at("message").as_string());
  EXPECT_NE(message.find("not forwarded: the transaction token for files could not be minted"),
            std::string::npos)
      << message;
  EXPECT_TRUE(upstream_->Calls().empty()) << "the call reached the server without a token";
  const json::object& receipt = answer.at("error").at("data").at(kReceiptMetaKey).as_object();
  auto row = Action(std::string(receipt.at("action_id").as_string()));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->decision, "allow");
  EXPECT_EQ(row->status, "error");
}

// A call sent again (an HTTP retry, a 2026-07-28 input_required round a person answers minutes
// later) carries a token valid when it is sent, not the first one (issue #18): on a test clock.
class GatewayTxnTokenLateTest : public GatewayTxnTokenTest {
 protected:
  void SetUp() override {
    // A few seconds ahead: the session tokens the world issues on the system clock are valid.
    fake_clock_ = std::make_unique<FakeClock>(std::chrono::system_clock::now() + 5s);
    GatewayTxnTokenTest::SetUp();
  }
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(fake_clock_->Now().time_since_epoch())
        .count();
  }
  // Every claim but iat, exp and jti.
  static json::object Stable(json::object claims) {
    for (const char* k : {"iat", "exp", "jti"}) claims.erase(k);
    return claims;
  }
};

TEST_F(GatewayTxnTokenLateTest, ASendAfterALongWaitCarriesAFreshTokenWithTheSameClaims) {
  BecomeDelegatedWorker();
  ListTools();
  upstream_->SetMode(FakeUpstream::Mode::kHold);
  auto answer = std::async(std::launch::async, [&] { return CallTool(4, "read"); });
  ASSERT_TRUE(upstream_->WaitHeld(1));
  // The upstream asks for input; the person answers 90 s later and the call is sent again.
  fake_clock_->Advance(90s);
  upstream_->SendHeldAgain();
  upstream_->AnswerHeld();
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("result")) << json::serialize(a);

  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 2u);
  ASSERT_FALSE(tokens[1].empty());
  ASSERT_NE(tokens[1].rfind("error", 0), 0u) << tokens[1];
  EXPECT_TRUE(VerifiesWithJwks(tokens[1]));
  json::object first = JwtPart(tokens[0], 1), again = JwtPart(tokens[1], 1);
  EXPECT_LT(first.at("exp").as_int64(), Now()) << "the first token has expired by now";
  EXPECT_GT(again.at("exp").as_int64(), Now()) << "the send after the wait carries a valid one";
  EXPECT_GE(again.at("iat").as_int64(), Now());
  EXPECT_NE(again.at("jti"), first.at("jti"));
  EXPECT_EQ(Stable(again), Stable(first)) << "the same transaction, actor chain, scope, audience";
  EXPECT_EQ(again.at("txn"), ActionIdOf(a).c_str());

  // The ledger names the last token sent (every token of the call has its action id as txn).
  const json::object& receipt = a.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  EXPECT_EQ(receipt.at("txn_token").at("jti"), again.at("jti"));
  auto outcome =
      w_->ledger->GetEntry(receipt.at("outcome").at("ledger_index").to_number<uint64_t>());
  ASSERT_TRUE(outcome.ok());
  json::object oe = json::parse(outcome->data).as_object();
  EXPECT_EQ(oe.at("txn_token").at("jti"), again.at("jti"));
  EXPECT_EQ(outcome->data.find(tokens[1]), std::string::npos);
}

// Sent at once, the token minted with the decision goes; a first send after a wait (a server
// still starting) gets a fresh one when the first has less than kTxnTokenMinRemainingS left.
TEST_F(GatewayTxnTokenLateTest, AFirstSendAfterAWaitCarriesAFreshToken) {
  ListTools();
  upstream_->SetMode(FakeUpstream::Mode::kQueue);
  auto answer = std::async(std::launch::async, [&] { return CallTool(4, "read"); });
  ASSERT_TRUE(upstream_->WaitHeld(1));
  fake_clock_->Advance(55s);
  upstream_->SendHeldAgain();  // its first send
  upstream_->AnswerHeld();
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("result")) << json::serialize(a);
  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 1u);
  json::object sent = JwtPart(tokens[0], 1);
  EXPECT_GE(sent.at("exp").as_int64() - Now(), identity::kTxnTokenMinRemainingS);
  EXPECT_EQ(a.at("result").at("_meta").at(kReceiptMetaKey).at("txn_token").at("jti"),
            sent.at("jti"));
}

TEST_F(GatewayTest, IdentityNoneSendsNothing) {
  ASSERT_TRUE(CallTool(2, "read").contains("result"));
  json::object answer = CallTool(3, "read");
  std::vector<std::string> tokens = upstream_->TxnTokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0], "");
  EXPECT_EQ(tokens[1], "");
  EXPECT_FALSE(
      answer.at("result").at("_meta").at(kReceiptMetaKey).as_object().contains("txn_token"));
}

TEST_F(GatewayTest, AnUnknownIdentityIsRefusedNamingTheKey) {
  UpstreamConfig bad;
  bad.name = "odd";
  bad.command = "unused";
  bad.identity = "bearer";
  GatewayOptions o;
  o.make_upstream = [](UpstreamConfig cfg, UpstreamOptions) {
    return Result<std::unique_ptr<Upstream>>(
        std::unique_ptr<Upstream>(std::make_unique<FakeUpstream>(cfg.name)));
  };
  auto g = Gateway::Create({bad}, *w_->tokens, *w_->svc, *pins_, nullptr, w_->clock, w_->random, o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("mcp.servers.odd.identity"), std::string::npos)
      << g.status().message();
}

TEST(TxnTokenPlacement, OnlyTheGatewaysTokenIsInMeta) {
  // A stdio request: the token in _meta, next to what was there.
  json::value params = json::object{{"name", "read"}, {"_meta", {{"traceparent", "00-x"}}}};
  PlaceTxnTokenMeta(params, "tok");
  EXPECT_EQ(params.at("_meta").at(kTxnTokenMetaKey), "tok");
  EXPECT_EQ(params.at("_meta").at("traceparent"), "00-x");
  // A client's own token in _meta is replaced by the gateway's, or removed when there is none.
  json::value forged = json::object{{"_meta", {{kTxnTokenMetaKey, "forged"}}}};
  PlaceTxnTokenMeta(forged, "");
  EXPECT_FALSE(forged.at("_meta").as_object().contains(kTxnTokenMetaKey));
  json::value replaced = json::object{{"_meta", {{kTxnTokenMetaKey, "forged"}}}};
  PlaceTxnTokenMeta(replaced, "tok");
  EXPECT_EQ(replaced.at("_meta").at(kTxnTokenMetaKey), "tok");
  json::value none;  // no params at all
  PlaceTxnTokenMeta(none, "tok");
  EXPECT_EQ(none.at("_meta").at(kTxnTokenMetaKey), "tok");
  UpstreamConfig stdio;
  stdio.name = "files";
  stdio.command = "x";
  EXPECT_EQ(DefaultTxnAudience(stdio), "urn:custody:mcp:files");
  UpstreamConfig remote;
  remote.name = "gh";
  remote.url = "https://h.example/mcp";
  EXPECT_EQ(DefaultTxnAudience(remote), "https://h.example/mcp");
}

// Person-in-the-loop approvals through the gateway (docs/MCP.md, "Approvals"): refunds over 100
// need a member of Group::"finance" (bob); eve is not in it.
constexpr const char* kApprovalPolicies = R"(
  @id("files-ok") permit(principal, action == Action::"call_tool", resource in Server::"files");
  @id("big-refunds") @approval("finance")
  forbid(principal, action == Action::"call_tool", resource == Tool::"files/refund")
    when { context.arguments.amount > 100 };)";
constexpr const char* kApprovalEntities = R"([
  {"uid": {"type": "Group", "id": "finance"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "finance"}]},
  {"uid": {"type": "User", "id": "eve"}, "attrs": {}, "parents": []}
])";

// A JSON string's text ("" for anything else), to compare with std::string.
std::string Str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

class GatewayApprovalTest : public GatewayTest {
 protected:
  GatewayApprovalTest() {
    world_options_.approvals.on_requested = [this](const store::ApprovalRow& row) {
      std::lock_guard lock(requested_mu_);
      requested_.push_back(row.id);
      requested_cv_.notify_all();
    };
  }
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    auto pub = w_->svc->PublishPolicies(kApprovalPolicies, kApprovalEntities, "admin");
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    upstream_->SetTools(json::array{Tool("refund", "Refunds an order")});
  }
  json::object Refund(int id, int amount) {
    http::Response r =
        Post(Rpc(id, "tools/call", {{"name", "refund"}, {"arguments", {{"amount", amount}}}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
  }
  // The calls are answered on another thread while the test decides.
  std::future<json::object> RefundAsync(int id, int amount) {
    return std::async(std::launch::async, [this, id, amount] { return Refund(id, amount); });
  }
  // The id of the n-th approval asked for (1-based), once it is.
  std::string Requested(size_t n) {
    std::unique_lock lock(requested_mu_);
    if (!requested_cv_.wait_for(lock, 20s, [&] { return requested_.size() >= n; })) return "";
    return requested_[n - 1];
  }
  Result<store::ApprovalRow> Decide(const std::string& id, bool approve, const std::string& who) {
    return w_->svc->DecideApproval(id, approve, attribution::Approver{who, "test:" + who, {}},
                                   "ticket 7");
  }

  std::mutex requested_mu_;
  std::condition_variable requested_cv_;
  std::vector<std::string> requested_;  // guarded by requested_mu_
};

TEST_F(GatewayApprovalTest, WithoutHoldOrUrlElicitationTheCallIsRefusedNamingTheApproval) {
  json::object a = Refund(2, 500);
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  const json::object& approval = a.at("error").at("data").at("approval").as_object();
  const std::string id(approval.at("id").as_string());
  EXPECT_EQ(approval.at("state"), "pending");
  EXPECT_EQ(Str(approval.at("url")), "https://custody.test/approvals/" + id);
  EXPECT_EQ(approval.at("groups").at(0), "Group::\"finance\"");
  const std::string message(a.at("error").at("message").as_string());
  EXPECT_NE(message.find(id), std::string::npos) << message;
  EXPECT_NE(message.find("https://custody.test/approvals/" + id), std::string::npos) << message;
  EXPECT_EQ(a.at("error").at("data").at("reasons").at(0), "big-refunds");
  EXPECT_TRUE(upstream_->Calls().empty());

  // A small refund needs nobody.
  json::object small = Refund(3, 100);
  ASSERT_TRUE(small.contains("result")) << json::serialize(small);

  // Approved by a member of the group: the same call passes, and its receipt names the approval.
  EXPECT_EQ(Decide(id, true, "eve").status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(Decide(id, true, "bob").ok());
  json::object again = Refund(4, 500);
  ASSERT_TRUE(again.contains("result")) << json::serialize(again);
  const json::object& receipt = again.at("result").at("_meta").at(kReceiptMetaKey).as_object();
  EXPECT_EQ(Str(receipt.at("approval").at("id")), id);
  EXPECT_EQ(receipt.at("approval").at("approver"), "bob");
  EXPECT_EQ(upstream_->Calls().size(), 2u);
  // Single use: the next one asks anew.
  json::object third = Refund(5, 500);
  ASSERT_TRUE(third.contains("error")) << json::serialize(third);
  EXPECT_NE(Str(third.at("error").at("data").at("approval").at("id")), id);
}

TEST_F(GatewayApprovalTest, AClientDeclaringUrlElicitationIsSentToTheApprovalPage) {
  mcp_session_.clear();
  http::Response init = Post(Rpc(1, "initialize",
                                 {{"protocolVersion", "2025-11-25"},
                                  {"capabilities", {{"elicitation", {{"url", json::object{}}}}}}}));
  ASSERT_EQ(init.status, 200) << init.body;
  mcp_session_ = std::string(init.headers.Get("mcp-session-id").value_or(""));

  json::object a = Refund(2, 500);
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kUrlElicitationRequired);
  const json::array& elicitations = a.at("error").at("data").at("elicitations").as_array();
  ASSERT_EQ(elicitations.size(), 1u);
  const std::string id(elicitations[0].at("elicitationId").as_string());
  EXPECT_EQ(elicitations[0].at("mode"), "url");
  EXPECT_EQ(Str(elicitations[0].at("url")), "https://custody.test/approvals/" + id);
  EXPECT_NE(elicitations[0].at("message").as_string().find("Group::\"finance\""),
            std::string::npos);
  EXPECT_TRUE(upstream_->Calls().empty());

  // Retried before anyone decided: the same approval again.
  json::object early = Refund(3, 500);
  EXPECT_EQ(Str(early.at("error").at("data").at("elicitations").at(0).at("elicitationId")), id);
  ASSERT_TRUE(Decide(id, true, "bob").ok());
  json::object retry = Refund(4, 500);
  ASSERT_TRUE(retry.contains("result")) << json::serialize(retry);
  // Other arguments are another action: a new approval.
  json::object other = Refund(5, 501);
  ASSERT_TRUE(other.contains("error")) << json::serialize(other);
  EXPECT_NE(Str(other.at("error").at("data").at("elicitations").at(0).at("elicitationId")), id);
  EXPECT_EQ(upstream_->Calls().size(), 1u);
}

class GatewayHoldTest : public GatewayApprovalTest {
 protected:
  GatewayHoldTest() { approval_hold_ = 20s; }
};

TEST_F(GatewayHoldTest, AHeldCallGoesOnOnceApproved) {
  auto answer = RefundAsync(2, 500);
  const std::string id = Requested(1);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(answer.wait_for(50ms), std::future_status::timeout) << "held, not answered";
  EXPECT_TRUE(upstream_->Calls().empty());
  // A non-member's approval is refused; the call still waits.
  EXPECT_EQ(Decide(id, true, "eve").status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(Decide(id, true, "bob").ok());
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready);
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("result")) << json::serialize(a);
  EXPECT_EQ(a.at("result").at("content").at(0).at("text"), "done by files");
  EXPECT_EQ(Str(a.at("result").at("_meta").at(kReceiptMetaKey).at("approval").at("id")), id);
  ASSERT_EQ(upstream_->Calls().size(), 1u);
  // Recorded twice: the decision that asked, and the one that allowed it under the approval.
  w_->svc->FlushIndex();
  auto rows = w_->store->ActionsOfSessions({sid_});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].decision, "approval_required");
  EXPECT_EQ((*rows)[1].decision, "allow");
}

TEST_F(GatewayHoldTest, AHeldCallIsRefusedWhenTheApprovalIsDenied) {
  auto answer = RefundAsync(2, 500);
  const std::string id = Requested(1);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(Decide(id, false, "bob").ok());
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready);
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  const std::string message(a.at("error").at("message").as_string());
  EXPECT_NE(message.find("approval " + id + " was denied by bob: ticket 7"), std::string::npos)
      << message;
  EXPECT_EQ(a.at("error").at("data").at("approval").at("state"), "denied");
  EXPECT_TRUE(upstream_->Calls().empty());
}

// Containment cancels the session's pending approvals (attribution), which ends the hold at once:
// refused, naming the cancelled approval, never forwarded.
TEST_F(GatewayHoldTest, ContainingTheSessionEndsTheHold) {
  auto answer = RefundAsync(2, 500);
  const std::string id = Requested(1);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(w_->svc->Contain("session", sid_, "exfiltration suspected", "admin").ok());
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready);
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  EXPECT_EQ(Str(a.at("error").at("data").at("approval").at("id")), id);
  EXPECT_EQ(a.at("error").at("data").at("approval").at("state"), "cancelled");
  EXPECT_NE(a.at("error").at("message").as_string().find("was cancelled"), std::string::npos)
      << json::serialize(a);
  EXPECT_TRUE(upstream_->Calls().empty());
}

class GatewayShortHoldTest : public GatewayApprovalTest {
 protected:
  GatewayShortHoldTest() { approval_hold_ = 300ms; }
};

TEST_F(GatewayShortHoldTest, AHeldCallIsRefusedWhenTheHoldEnds) {
  json::object a = Refund(2, 500);
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_EQ(a.at("error").at("code"), kDenied);
  const std::string id(a.at("error").at("data").at("approval").at("id").as_string());
  const std::string message(a.at("error").at("message").as_string());
  EXPECT_NE(message.find("approval " + id + " is still pending after"), std::string::npos)
      << message;
  EXPECT_EQ(a.at("error").at("data").at("approval").at("state"), "pending");
  EXPECT_TRUE(upstream_->Calls().empty());
}

TEST_F(GatewayHoldTest, StoppingTheGatewayAnswersAHeldCall) {
  auto answer = RefundAsync(2, 500);
  ASSERT_FALSE(Requested(1).empty());
  gateway_->Stop();
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready);
  json::object a = answer.get();
  ASSERT_TRUE(a.contains("error")) << json::serialize(a);
  EXPECT_NE(a.at("error").at("message").as_string().find("stopping"), std::string::npos);
}

}  // namespace
}  // namespace custody::mcp
