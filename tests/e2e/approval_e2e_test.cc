// Approvals end to end, against the real `custody serve` (SQLite) and the real CLI: a refund
// over 100 needs a member of Group::"finance". The agent's native authorize call is held
// (approval_required, with the approval's id and link); `custody approval list` shows it; eve,
// not in the group, cannot approve it; bob can; the agent's retry is allowed under bob's
// approval, and `custody trace` names bob and says the execution was the agent's own after
// approval. Changed arguments need a new approval; containing the session cancels it (and
// approving it is refused); the session's evidence bundle carries the approval events and
// verifies offline; the approval page answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/encoding.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::CliResult;
using testing::PostJson;
using testing::ServeProcess;
using testing::TempDir;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

json::object Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return !ec && v.is_object() ? v.get_object() : json::object();
}

constexpr const char* kPolicies = R"(
@id("pay-ok")
permit(principal, action == Action::"call_tool", resource in Server::"pay");

@id("big-refunds") @approval("finance")
forbid(principal, action == Action::"call_tool", resource == Tool::"pay/refund")
  when { context.arguments.amount > 100 };
)";
constexpr const char* kEntities = R"([
  {"uid":{"type":"Group","id":"finance"},"attrs":{},"parents":[]},
  {"uid":{"type":"User","id":"bob"},"attrs":{},"parents":[{"type":"Group","id":"finance"}]},
  {"uid":{"type":"User","id":"eve"},"attrs":{},"parents":[]}
])";

class ApprovalE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("approval-e2e");
    server_ = std::make_unique<ServeProcess>(dir_ / "data",
                                             std::vector<std::string>{"--log-level", "warn"});
    ASSERT_TRUE(server_->started());
    bob_ = ApproverToken("bob");
    eve_ = ApproverToken("eve");
  }
  void TearDown() override {
    if (server_ && server_->started()) EXPECT_EQ(server_->Stop(), 0);
    server_.reset();
    fs::remove_all(dir_);
  }

  // `custody admin token create --role approver --label PERSON`: the person is the label.
  std::string ApproverToken(const std::string& person) {
    std::string out;
    int rc = testing::RunCommand({CUSTODY_BINARY, "admin", "token", "create", "--role", "approver",
                                  "--label", person, "--data-dir", (dir_ / "data").string()},
                                 &out);
    EXPECT_EQ(rc, 0) << out;
    return S(Parse(out)["token"]);
  }

  // `custody ARGS… --server URL --token TOKEN` (the admin token unless another is given).
  CliResult Cli(std::vector<std::string> args, const std::string& token = "") {
    bool offline = args.size() >= 2 && (args[1] == "keygen" || args[1] == "verify-bundle");
    if (!offline) {
      args.insert(args.end(), {"--server", server_->url()});
      bool needs_admin_token = args[0] != "token";
      if (needs_admin_token)
        args.insert(args.end(), {"--token", token.empty() ? server_->token() : token});
    }
    return testing::RunCli(args, dir_);
  }
  json::object CliJson(std::vector<std::string> args, const std::string& token = "") {
    CliResult r = Cli(args, token);
    EXPECT_EQ(r.rc, 0) << r.err;
    return Parse(r.out);
  }

  // The agent, as the README sets one up: a key pair, registered with its public JWK; then a
  // JWT-SVID and a session token for alice (asserted by the agent) from the CLI.
  std::string SessionToken() {
    const std::string key = (dir_ / "refunder.key").string();
    CliResult k = Cli({"token", "keygen", "--out", key});
    EXPECT_EQ(k.rc, 0) << k.err;
    std::ofstream(dir_ / "refunder.jwk") << k.out;
    CliResult reg =
        Cli({"agent", "register", "--name", "refunder", "--scope", "pay/*", "--permission",
             "assert_initiator", "--jwk", (dir_ / "refunder.jwk").string()});
    EXPECT_EQ(reg.rc, 0) << reg.err;
    CliResult svid = Cli({"token", "svid", "--agent", "refunder", "--key", key});
    EXPECT_EQ(svid.rc, 0) << svid.err;
    CliResult session =
        Cli({"token", "exchange", "--key", key, "--subject-token",
             R"({"sub":"alice@example.com","iss":"ci"})", "--actor-token",
             svid.out.substr(0, svid.out.find('\n')), "--scope", "pay/*", "--audience", "custody"});
    EXPECT_EQ(session.rc, 0) << session.err;
    return session.out.substr(0, session.out.find('\n'));
  }

  // POST /v1/actions:authorize, the native API: a refund of `amount` for order o-42.
  json::object Refund(const std::string& token, int amount) {
    auto r = server_->Client().Send(PostJson(
        R"({"action":"call_tool","target":{"server":"pay","tool":"refund"},"arguments":{"amount":)" +
            std::to_string(amount) + R"(,"order":"o-42"}})",
        token, "/v1/actions:authorize"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    return Parse(r->body);
  }

  // `custody approval show ID` until its state is `state` (the containment's cancellations run
  // on the server's approvals thread), for at most 10 s. A decided state counts once its event
  // is in the ledger (`decided_index`): the stored state changes first.
  json::object WaitForState(const std::string& id, const std::string& state) {
    json::object a;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      a = CliJson({"approval", "show", id});
      if (S(a["state"]) == state && (state == "pending" || a.contains("decided_index"))) return a;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return a;
  }

  fs::path dir_;
  std::unique_ptr<ServeProcess> server_;
  std::string bob_, eve_;
};

TEST_F(ApprovalE2E, AskedApprovedByAMemberRetriedAllowedAndTracedToTheApprover) {
  std::ofstream(dir_ / "policies.cedar") << kPolicies;
  std::ofstream(dir_ / "entities.json") << kEntities;
  CliResult pub = Cli({"policy", "publish", (dir_ / "policies.cedar").string(), "--entities",
                       (dir_ / "entities.json").string()});
  ASSERT_EQ(pub.rc, 0) << pub.err;
  const std::string token = SessionToken();
  ASSERT_FALSE(token.empty());

  // 1. Held: approval_required, with the approval asked for and its link.
  json::object held = Refund(token, 500);
  ASSERT_EQ(S(held["decision"]), "approval_required") << json::serialize(held);
  const std::string sid = S(held["session"]);
  ASSERT_TRUE(held["approval"].is_object()) << json::serialize(held);
  json::object approval = held["approval"].as_object();
  const std::string id = S(approval["id"]);
  EXPECT_EQ(S(approval["state"]), "pending");
  EXPECT_EQ(S(approval["groups"].as_array()[0]), R"(Group::"finance")");
  EXPECT_EQ(S(approval["initiator"]), "alice@example.com");
  const std::string url = S(approval["url"]);
  ASSERT_NE(url.find("/approvals/" + id), std::string::npos) << url;
  EXPECT_NE(S(held["message"]).find(R"(Group::"finance")"), std::string::npos);

  // 2. The queue shows it, pending.
  json::object list = CliJson({"approval", "list"});
  ASSERT_EQ(list["approvals"].as_array().size(), 1u) << json::serialize(list);
  EXPECT_EQ(S(list["approvals"].as_array()[0].at("id")), id);
  EXPECT_EQ(S(list["approvals"].as_array()[0].at("state")), "pending");

  // The page the link opens: public, HTML, naming the approval and what it is about.
  http::ClientRequest page = testing::Get(url.substr(url.find("/approvals/")));
  auto p = server_->Client().Send(page);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, 200) << p->body;
  EXPECT_EQ(std::string(p->headers.Get("content-type").value_or("")).rfind("text/html", 0), 0u);
  EXPECT_NE(p->body.find(id), std::string::npos) << p->body;
  EXPECT_NE(p->body.find("pay/refund"), std::string::npos) << p->body;

  // 3. eve is not in the group: refused, saying which group; nothing changes.
  CliResult by_eve = Cli({"approval", "approve", id, "--reason", "looks fine"}, eve_);
  EXPECT_EQ(by_eve.rc, 1) << by_eve.out;
  EXPECT_EQ(by_eve.out, "");
  EXPECT_NE(by_eve.err.find(R"(eve is not a member of Group::"finance")"), std::string::npos)
      << by_eve.err;
  EXPECT_EQ(by_eve.err.find(eve_), std::string::npos) << "the token is never echoed";
  EXPECT_EQ(S(CliJson({"approval", "show", id})["state"]), "pending");

  // 4. bob is: approved, recorded under his name.
  json::object approved =
      CliJson({"approval", "approve", id, "--reason", "order o-42 checked by finance"}, bob_);
  EXPECT_EQ(S(approved["state"]), "approved") << json::serialize(approved);
  EXPECT_EQ(S(approved["approver"]), "bob");
  EXPECT_EQ(S(approved["verified_by"]).rfind("admin-token:", 0), 0u);

  // 5. The agent's retry of the same action: allowed, citing the approval.
  json::object ran = Refund(token, 500);
  ASSERT_EQ(S(ran["decision"]), "allow") << json::serialize(ran);
  ASSERT_TRUE(ran["approval"].is_object()) << json::serialize(ran);
  EXPECT_EQ(S(ran["approval"].at("id")), id);
  EXPECT_EQ(S(ran["approval"].at("state")), "used");
  EXPECT_EQ(S(ran["approval"].at("approver")), "bob");
  EXPECT_NE(S(ran["message"]).find("under approval " + id + " by bob"), std::string::npos);
  const std::string ran_id = S(ran["action_id"]);

  // 6. `custody trace` answers "under what approval".
  json::object trace = CliJson({"trace", ran_id});
  json::object under = trace["allowed_by"].at("approvals").as_array().at(0).as_object();
  EXPECT_EQ(S(under["approver"]), "bob");
  EXPECT_EQ(S(under["reason"]), "order o-42 checked by finance");
  EXPECT_TRUE(under["confirmed_by_ledger"].as_bool()) << json::serialize(under);
  EXPECT_EQ(S(under["execution"]), "autonomous after approval");
  const std::string answer = S(trace["answers"].at("under_what_approval"));
  EXPECT_NE(answer.find("approved by bob"), std::string::npos) << answer;
  EXPECT_NE(answer.find("autonomous after approval"), std::string::npos) << answer;
  CliResult tree = Cli({"trace", ran_id, "--tree"});
  ASSERT_EQ(tree.rc, 0) << tree.err;
  EXPECT_NE(tree.out.find("under approval: " + id + " by bob"), std::string::npos) << tree.out;
  EXPECT_NE(tree.out.find("autonomous after approval"), std::string::npos) << tree.out;
  // The held call's trace says what became of its approval.
  json::object held_trace = CliJson({"trace", S(held["action_id"])});
  json::object asked = held_trace["allowed_by"].at("approvals").as_array().at(0).as_object();
  EXPECT_EQ(S(asked["outcome"]), "approved");
  EXPECT_EQ(S(asked["used_by"]), ran_id);

  EXPECT_EQ(S(CliJson({"approval", "show", id})["state"]), "used");
  // The session's events: the approval between the held call and the allowed one.
  CliResult events = Cli({"session-events", sid, "--tree"});
  ASSERT_EQ(events.rc, 0) << events.err;
  size_t at_held = events.out.find("pay/refund -> approval_required");
  size_t at_approve = events.out.find("approval.approve " + id + " of pay/refund by bob");
  size_t at_ran = events.out.find("pay/refund -> allow");
  EXPECT_NE(at_approve, std::string::npos) << events.out;
  EXPECT_LT(at_held, at_approve) << events.out;
  EXPECT_LT(at_approve, at_ran) << events.out;

  // Single use: the same call once more is held again, under a new approval.
  json::object third = Refund(token, 500);
  EXPECT_EQ(S(third["decision"]), "approval_required") << json::serialize(third);

  // 7. Changed arguments: another action, another approval.
  json::object changed = Refund(token, 600);
  ASSERT_EQ(S(changed["decision"]), "approval_required") << json::serialize(changed);
  const std::string id2 = S(changed["approval"].at("id"));
  EXPECT_NE(id2, id);
  EXPECT_NE(S(changed["approval"].at("digest")), S(approval["digest"]));

  // 8. Containing the session cancels its pending approvals; approving one then is refused.
  CliResult contain = Cli({"contain", "--session", sid, "--reason", "incident 12"});
  ASSERT_EQ(contain.rc, 0) << contain.err;
  json::object cancelled = WaitForState(id2, "cancelled");
  EXPECT_EQ(S(cancelled["state"]), "cancelled") << json::serialize(cancelled);
  EXPECT_TRUE(cancelled.contains("decided_index")) << json::serialize(cancelled);
  json::object third_cancelled = WaitForState(S(third["approval"].at("id")), "cancelled");
  EXPECT_TRUE(third_cancelled.contains("decided_index")) << json::serialize(third_cancelled);
  CliResult late = Cli({"approval", "approve", id2, "--reason", "too late"}, bob_);
  EXPECT_EQ(late.rc, 1) << late.out;
  EXPECT_NE(late.err.find("cancelled"), std::string::npos) << late.err;

  // 9. The session's evidence: the approval events are in it, and it verifies offline.
  const std::string bundle_file = (dir_ / "evidence.json").string();
  json::object written = CliJson({"evidence", sid, "--out", bundle_file});
  EXPECT_EQ(S(written["out"]), bundle_file);
  std::ifstream in(bundle_file);
  std::stringstream text;
  text << in.rdbuf();
  json::object bundle = Parse(text.str());
  std::map<std::string, int> kinds;
  for (const auto& e : bundle["events"].as_array()) kinds[S(e.at("kind"))]++;
  EXPECT_EQ(kinds["approval.approve"], 1) << text.str();
  EXPECT_EQ(kinds["approval.cancel"], 2) << text.str();  // id2, and the third call's
  EXPECT_EQ(kinds["action.decision"], 4);
  CliResult verify = Cli({"ledger", "verify-bundle", bundle_file, "--key", server_->vkey()});
  EXPECT_EQ(verify.rc, 0) << verify.err;
  EXPECT_TRUE(Parse(verify.out)["ok"].as_bool()) << verify.out;
}

}  // namespace
}  // namespace custody
