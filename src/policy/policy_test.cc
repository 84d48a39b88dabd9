#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "policy/authorizer.h"
#include "policy/extensions.h"
#include "policy/json_io.h"
#include "policy/parser.h"
#include "policy/schema.h"

namespace custody::policy {
namespace {

constexpr char kEntities[] = R"([
  {"uid": {"type": "User", "id": "alice"},
   "attrs": {"age": 30, "name": "Alice", "roles": ["admin", "dev"],
             "manager": {"__entity": {"type": "User", "id": "bob"}},
             "addr": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
             "profile": {"level": 3, "inner": {"x": true}}},
   "parents": [{"type": "Group", "id": "staff"}],
   "tags": {"team": "core", "clearance": 2}},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Group", "id": "staff"}, "attrs": {}, "parents": [{"type": "Group", "id": "all"}]},
  {"uid": {"type": "Group", "id": "all"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": [{"type": "Action", "id": "readOnly"}]},
  {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}},
   "parents": [{"type": "Folder", "id": "f1"}]}
])";

class EvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto es = ParseEntitiesJson(kEntities, nullptr);
    ASSERT_TRUE(es.ok()) << es.status().ToString();
    entities_ = std::move(es).value();
    request_.principal = {"User", "alice"};
    request_.action = {"Action", "read"};
    request_.resource = {"Doc", "d1"};
    auto ctx = ParseContextJson(
        R"({"n": 5, "s": "hello", "when": {"__extn": {"fn": "datetime", "arg": "2024-03-01T10:00:00Z"}}})",
        nullptr, request_.action);
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    request_.context = *ctx;
  }

  Result<Value> Eval(const std::string& text) {
    ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(text));
    return Evaluate(*e, request_, entities_);
  }
  // "true"/"false", or "error" when evaluation fails.
  std::string EvalBool(const std::string& text) {
    Result<Value> v = Eval(text);
    if (!v.ok()) return "error";
    if (!v->is(Value::Kind::kBool)) return "not a bool: " + v->ToString();
    return v->as_bool() ? "true" : "false";
  }

  Entities entities_;
  Request request_;
};

TEST_F(EvalTest, PrecedenceAndArithmetic) {
  EXPECT_EQ(EvalBool("1 + 2 * 3 == 7"), "true");
  EXPECT_EQ(EvalBool("(1 + 2) * 3 == 9"), "true");
  EXPECT_EQ(EvalBool("!true || true"), "true");
  EXPECT_EQ(EvalBool("true || false && false"), "true");
  EXPECT_EQ(EvalBool("-3 - -3 == 0"), "true");
  EXPECT_EQ(EvalBool("--1 == 1"), "true");
}

TEST_F(EvalTest, LongOverflowIsAnError) {
  EXPECT_EQ(EvalBool("9223372036854775807 + 1 > 0"), "error");
  EXPECT_EQ(EvalBool("-9223372036854775808 - 1 < 0"), "error");
  EXPECT_EQ(EvalBool("-9223372036854775808 < 0"), "true");
  EXPECT_EQ(EvalBool("-(-9223372036854775808) > 0"), "error");
  EXPECT_EQ(EvalBool("4611686018427387904 * 2 > 0"), "error");
  EXPECT_EQ(EvalBool("3037000499 * 3037000499 > 0"), "true");
}

TEST_F(EvalTest, ShortCircuitSkipsErrors) {
  EXPECT_EQ(EvalBool("false && (1 + \"a\" == 2)"), "false");
  EXPECT_EQ(EvalBool("true || principal.nope"), "true");
  EXPECT_EQ(EvalBool("if true then true else 1 + \"a\""), "true");
  EXPECT_EQ(EvalBool("true && principal.nope"), "error");
  EXPECT_EQ(EvalBool("1 && true"), "error");
  EXPECT_EQ(EvalBool("if 1 then true else false"), "error");
}

TEST_F(EvalTest, EqualityNeverErrors) {
  EXPECT_EQ(EvalBool("1 == \"1\""), "false");
  EXPECT_EQ(EvalBool("[1, 2, 2] == [2, 1]"), "true");
  EXPECT_EQ(EvalBool("{a: 1, b: [true]} == {b: [true], a: 1}"), "true");
  EXPECT_EQ(EvalBool("User::\"alice\" == principal"), "true");
  EXPECT_EQ(EvalBool("decimal(\"1.50\") == decimal(\"1.5\")"), "true");
  EXPECT_EQ(EvalBool("ip(\"10.0.0.1\") != ip(\"10.0.0.1/32\")"), "false");
}

TEST_F(EvalTest, ComparisonsAreTyped) {
  EXPECT_EQ(EvalBool("1 < \"a\""), "error");
  EXPECT_EQ(EvalBool("decimal(\"1.0\") < decimal(\"2.0\")"), "error");
  EXPECT_EQ(EvalBool("datetime(\"2024-01-01\") < datetime(\"2024-01-02\")"), "true");
  EXPECT_EQ(EvalBool("duration(\"1h\") > duration(\"59m\")"), "true");
}

TEST_F(EvalTest, HierarchyAndIs) {
  EXPECT_EQ(EvalBool("principal in Group::\"all\""), "true");
  EXPECT_EQ(EvalBool("principal in [Group::\"x\", Group::\"staff\"]"), "true");
  EXPECT_EQ(EvalBool("principal in principal"), "true");
  EXPECT_EQ(EvalBool("User::\"ghost\" in Group::\"all\""), "false");
  EXPECT_EQ(EvalBool("principal in [Group::\"all\", 1]"), "error");
  EXPECT_EQ(EvalBool("1 in Group::\"all\""), "error");
  EXPECT_EQ(EvalBool("action in Action::\"readOnly\""), "true");
  EXPECT_EQ(EvalBool("principal is User"), "true");
  EXPECT_EQ(EvalBool("principal is User in Group::\"staff\""), "true");
  EXPECT_EQ(EvalBool("principal is Group in principal.nope"), "false");  // `is` fails first
  EXPECT_EQ(EvalBool("1 is User"), "error");
}

TEST_F(EvalTest, AttributesHasAndTags) {
  EXPECT_EQ(EvalBool("principal.age == 30 && principal[\"name\"] == \"Alice\""), "true");
  EXPECT_EQ(EvalBool("principal has age && !(principal has nope)"), "true");
  EXPECT_EQ(EvalBool("principal has profile.inner.x"), "true");
  EXPECT_EQ(EvalBool("principal has profile.inner.y"), "false");
  EXPECT_EQ(EvalBool("User::\"ghost\" has age"), "false");
  EXPECT_EQ(EvalBool("User::\"ghost\".age == 1"), "error");
  EXPECT_EQ(EvalBool("principal.nope == 1"), "error");
  EXPECT_EQ(EvalBool("principal.manager.age == 1"), "error");
  EXPECT_EQ(EvalBool("resource.owner.roles.contains(\"admin\")"), "true");
  EXPECT_EQ(EvalBool("principal.hasTag(\"team\") && principal.getTag(\"team\") == \"core\""),
            "true");
  EXPECT_EQ(EvalBool("principal.hasTag(\"nope\")"), "false");
  EXPECT_EQ(EvalBool("principal.getTag(\"nope\") == 1"), "error");
  EXPECT_EQ(EvalBool("User::\"ghost\".hasTag(\"team\")"), "false");
  EXPECT_EQ(EvalBool("context.s == \"hello\" && context.n == 5"), "true");
}

TEST_F(EvalTest, SetsAndLike) {
  EXPECT_EQ(EvalBool("[1, 2, 3].containsAll([3, 1])"), "true");
  EXPECT_EQ(EvalBool("[1, 2, 3].containsAny([4, 5])"), "false");
  EXPECT_EQ(EvalBool("[].isEmpty() && ![1].isEmpty()"), "true");
  EXPECT_EQ(EvalBool("[[1], {a: 2}].contains({a: 2})"), "true");
  EXPECT_EQ(EvalBool("1.contains(1)"), "error");
  EXPECT_EQ(EvalBool("\"a*c\" like \"a\\*c\""), "true");
  EXPECT_EQ(EvalBool("\"abc\" like \"a\\*c\""), "false");
  EXPECT_EQ(EvalBool("\"abc\" like \"a*\" && \"\" like \"*\" && \"hello world\" like \"h*o w*d\""),
            "true");
  EXPECT_EQ(EvalBool("\"abc\" like \"b*\""), "false");
}

TEST_F(EvalTest, Extensions) {
  EXPECT_EQ(EvalBool("decimal(\"-0.5\").lessThan(decimal(\"0.0\"))"), "true");
  EXPECT_EQ(EvalBool("decimal(\"1.23456\") == decimal(\"1.0\")"), "error");
  EXPECT_EQ(EvalBool("ip(\"10.1.2.3\").isInRange(ip(\"10.0.0.0/8\"))"), "true");
  EXPECT_EQ(EvalBool("principal.addr.isInRange(ip(\"10.1.0.0/16\"))"), "true");
  EXPECT_EQ(EvalBool("ip(\"127.0.0.2\").isLoopback() && ip(\"::1\").isLoopback()"), "true");
  EXPECT_EQ(EvalBool("ip(\"224.1.2.3\").isMulticast() && ip(\"ff02::1\").isIpv6()"), "true");
  EXPECT_EQ(EvalBool("ip(\"01.2.3.4\").isIpv4()"), "error");
  EXPECT_EQ(EvalBool("context.when.toDate() == datetime(\"2024-03-01\")"), "true");
  EXPECT_EQ(EvalBool("context.when.toTime() == duration(\"10h\")"), "true");
  EXPECT_EQ(EvalBool("datetime(\"1969-12-31T23:00:00Z\").toDate() == datetime(\"1969-12-31\")"),
            "true");
  EXPECT_EQ(EvalBool("datetime(\"2024-01-01T02:00:00+0200\") == datetime(\"2024-01-01\")"), "true");
  EXPECT_EQ(
      EvalBool("context.when.offset(duration(\"-1d\")) == datetime(\"2024-02-29T10:00:00Z\")"),
      "true");
  EXPECT_EQ(EvalBool("context.when.durationSince(datetime(\"2024-03-01\")).toMinutes() == 600"),
            "true");
  EXPECT_EQ(EvalBool("duration(\"-1d2h\").toHours() == -26"), "true");
  EXPECT_EQ(EvalBool("datetime(\"2023-02-29\") == datetime(\"2023-03-01\")"), "error");
  EXPECT_EQ(EvalBool("duration(\"1h1d\") == duration(\"25h\")"), "error");
  EXPECT_EQ(EvalBool("decimal(1) == decimal(\"1.0\")"), "error");
}

TEST(ExtensionParsing, Literals) {
  EXPECT_EQ(ParseDecimal("922337203685477.5807")->scaled, INT64_MAX);
  EXPECT_FALSE(ParseDecimal("922337203685477.5808"));
  EXPECT_FALSE(ParseDecimal("1."));
  EXPECT_FALSE(ParseIp("1.2.3.4/33"));
  EXPECT_FALSE(ParseIp("::ffff:1.2.3.4"));
  EXPECT_EQ(ParseIp("::")->prefix, 128);
  EXPECT_FALSE(ParseDatetime("2024-01-01T00:00:60Z"));
  EXPECT_EQ(ParseDatetime("1970-01-01T00:00:01.500Z")->ms, 1500);
  EXPECT_EQ(ParseDuration("1d2h3m4s5ms")->ms, 93784005);
  EXPECT_FALSE(ParseDuration("9223372036854775808ms"));
}

TEST(Parser, IdsAndAnnotations) {
  auto out = ParsePolicies(R"(
    permit(principal, action, resource);
    @id("custom") @advice forbid(principal, action, resource);
    permit(principal, action, resource);)");
  ASSERT_TRUE(out.errors.empty()) << out.errors[0].ToString();
  ASSERT_EQ(out.policies.size(), 3u);
  EXPECT_EQ(out.policies[0].id, "policy0");
  EXPECT_EQ(out.policies[1].id, "custom");
  EXPECT_EQ(out.policies[1].annotations[1].first, "advice");
  EXPECT_EQ(out.policies[2].id, "policy2");
  EXPECT_EQ(ParsePolicies(R"(@id("x") permit(principal, action, resource);)", false).policies[0].id,
            "policy0");
}

TEST(Parser, ErrorsHaveLineColumnAndExpectation) {
  auto out = ParsePolicies(
      "permit(principal, action, resource)\n  when { 1 + };\n"
      "forbid(principal, action, resource) when { a < b < c };\n"
      "permit(principal, action);\n");
  ASSERT_EQ(out.errors.size(), 3u);
  EXPECT_EQ(out.errors[0].line, 2);
  EXPECT_EQ(out.errors[0].column, 14);
  EXPECT_NE(out.errors[0].message.find("expected an expression"), std::string::npos);
  EXPECT_EQ(out.errors[1].line, 3);
  EXPECT_EQ(out.errors[2].line, 4);
  EXPECT_NE(out.errors[2].message.find("expected `,`"), std::string::npos);
}

TEST(Parser, RejectsWhatTheReferenceRejects) {
  for (const char* bad : {
           "permit(principal, action, resource) when { 1 < 2 < 3 };",
           "permit(principal, action, resource) when { 1 == 1 == true };",
           "permit(principal, action, resource) when { 1 + if true then 1 else 2 };",
           "permit(principal, action, resource) when { !-1 };",
           "permit(principal, action, resource) when { !!!!!true };",
           "permit(principal, action, resource) when { 9223372036854775808 == 1 };",
           "permit(principal, action, resource) when { foo(1) };",
           "permit(principal, action, resource) when { [].bogus() };",
           "permit(principal, action, resource) when { {a: 1, a: 2} == {} };",
           "permit(principal, action, resource) when { 6 / 3 == 2 };",
           "permit(principal == ?principal, action, resource);",
           "permit(principal, action is Action, resource);",
           "permit(principal, action, resource) when { \"\\q\" };",
           "permit(principal, action, resource) when { \"unterminated };",
           "permit(principal, action, resource) when { };",
           "@a(\"1\") @a(\"2\") permit(principal, action, resource);",
       }) {
    EXPECT_FALSE(ParsePolicies(bad).errors.empty()) << bad;
  }
}

TEST(Parser, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '(');
  auto out = ParsePolicies("permit(principal, action, resource) when { " + deep + "true" +
                           std::string(100000, ')') + " };");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_NE(out.errors[0].message.find("nested too deeply"), std::string::npos);
  std::string nots = "permit(principal, action, resource) when { ";
  for (int i = 0; i < 50000; ++i) nots += "!(";
  EXPECT_FALSE(ParsePolicies(nots).errors.empty());
  EXPECT_FALSE(ParsePolicies(std::string(200000, '@')).errors.empty());
  EXPECT_FALSE(ParsePolicies(std::string(1 << 20, '"')).errors.empty());
}

TEST(Parser, LongOperatorChainsAreBounded) {
  // Chains grow the tree without nesting; they must be rejected, not overflow the stack when
  // evaluated or destroyed.
  std::string sum = "1";
  for (int i = 0; i < 100000; ++i) sum += " + 1";
  std::string attrs = "principal";
  for (int i = 0; i < 100000; ++i) attrs += ".a";
  std::string calls = "[1]";
  for (int i = 0; i < 100000; ++i) calls += ".containsAll([1])";
  std::string ands = "true";
  for (int i = 0; i < 100000; ++i) ands += " && true";
  for (const std::string& body : {sum + " > 0", attrs + " == 1", calls, ands}) {
    auto out = ParsePolicies("permit(principal, action, resource) when { " + body + " };");
    ASSERT_EQ(out.errors.size(), 1u);
    EXPECT_NE(out.errors[0].message.find("nested too deeply"), std::string::npos);
  }
  // A long but reasonable chain still works.
  std::string ok = "1";
  for (int i = 0; i < 300; ++i) ok += " + 1";
  auto e = ParseExpression(ok + " == 301");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Entities none;
  Request r{{"U", "a"}, {"Action", "a"}, {"R", "r"}, Value::MakeRecord({})};
  auto v = Evaluate(**e, r, none);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->as_bool());
}

TEST(Parser, HugeInput) {
  std::string text;
  for (int i = 0; i < 20000; ++i)
    text += "permit(principal == User::\"u" + std::to_string(i) +
            "\", action, resource) when { context.n > " + std::to_string(i) + " };\n";
  auto out = ParsePolicies(text);
  EXPECT_TRUE(out.errors.empty());
  EXPECT_EQ(out.policies.size(), 20000u);
  EXPECT_EQ(out.policies.back().line, 20000);
}

Response Decide(const char* policies, const char* request) {
  auto ps = PolicySet::FromText(policies);
  EXPECT_TRUE(ps.ok()) << ps.status().ToString();
  auto es = ParseEntitiesJson(kEntities, nullptr);
  auto req = ParseRequestJson(request, nullptr);
  EXPECT_TRUE(req.ok()) << req.status().ToString();
  return ps->IsAuthorized(*req, *es);
}

constexpr char kAliceReadsD1[] =
    R"({"principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"},
        "resource": {"type": "Doc", "id": "d1"}, "context": {"n": 1}})";

TEST(Authorizer, ForbidOverridesPermitAndErrorsAreReported) {
  Response r = Decide(R"(
      permit(principal in Group::"all", action, resource);
      forbid(principal, action, resource) when { context.n == 1 };
      permit(principal, action, resource) when { principal.nope };)",
                      kAliceReadsD1);
  EXPECT_EQ(r.decision, Decision::kDeny);
  EXPECT_EQ(r.reasons, std::vector<std::string>{"policy1"});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].policy_id, "policy2");
  EXPECT_NE(r.errors[0].message.find("nope"), std::string::npos);
  EXPECT_EQ(ResponseToJson(r).substr(0, 40), R"({"decision":"deny","reason":["policy1"],)");
}

TEST(Authorizer, DefaultDenyAndAllowReasons) {
  Response none = Decide("permit(principal == User::\"bob\", action, resource);", kAliceReadsD1);
  EXPECT_EQ(none.decision, Decision::kDeny);
  EXPECT_TRUE(none.reasons.empty());
  Response allow = Decide(R"(
      permit(principal, action in [Action::"readOnly"], resource in Folder::"f1");
      @id("mine") permit(principal, action, resource) when { resource.owner == principal };)",
                          kAliceReadsD1);
  EXPECT_EQ(allow.decision, Decision::kAllow);
  EXPECT_EQ(allow.reasons, (std::vector<std::string>{"policy0", "mine"}));
}

// The scope index must select exactly the policies a linear scan would find satisfied.
TEST(Authorizer, IndexMatchesLinearScan) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  std::string text;
  const char* users[] = {"alice", "bob", "ghost"};
  const char* groups[] = {"staff", "all", "none"};
  for (int i = 0; i < 600; ++i) {
    std::string p, a, r;
    switch (pick(5)) {
      case 0:
        p = "principal";
        break;
      case 1:
        p = std::string("principal == User::\"") + users[pick(3)] + "\"";
        break;
      case 2:
        p = std::string("principal in Group::\"") + groups[pick(3)] + "\"";
        break;
      case 3:
        p = "principal is User";
        break;
      default:
        p = std::string("principal is User in Group::\"") + groups[pick(3)] + "\"";
    }
    switch (pick(4)) {
      case 0:
        a = "action";
        break;
      case 1:
        a = "action == Action::\"read\"";
        break;
      case 2:
        a = "action in Action::\"readOnly\"";
        break;
      default:
        a = "action in [Action::\"write\", Action::\"readOnly\"]";
    }
    switch (pick(4)) {
      case 0:
        r = "resource";
        break;
      case 1:
        r = "resource == Doc::\"d1\"";
        break;
      case 2:
        r = "resource in Folder::\"f1\"";
        break;
      default:
        r = "resource is Folder";
    }
    text += std::string(pick(3) ? "permit" : "forbid") + "(" + p + ", " + a + ", " + r + ")" +
            (pick(4) == 0 ? " when { principal.nope }" : "") + ";\n";
  }
  auto ps = PolicySet::FromText(text);
  ASSERT_TRUE(ps.ok());
  auto es = ParseEntitiesJson(kEntities, nullptr);
  for (const char* u : users) {
    for (const char* act : {"read", "write", "readOnly"}) {
      for (const char* res : {"Doc::d1", "Folder::f1", "Doc::d9"}) {
        std::string rt(res, std::string_view(res).find("::"));
        Request req{{"User", u},
                    {"Action", act},
                    {rt, std::string(res + rt.size() + 2)},
                    Value::MakeRecord({})};
        Response got = ps->IsAuthorized(req, *es);
        std::set<std::string> sat_permit, sat_forbid, errs;
        for (const Policy& pol : ps->policies()) {
          Result<bool> b = EvaluatePolicy(pol, req, *es);
          if (!b.ok())
            errs.insert(pol.id);
          else if (*b)
            (pol.effect == Effect::kPermit ? sat_permit : sat_forbid).insert(pol.id);
        }
        std::set<std::string> got_reasons(got.reasons.begin(), got.reasons.end());
        std::set<std::string> got_errs;
        for (const auto& e : got.errors) got_errs.insert(e.policy_id);
        EXPECT_EQ(got_errs, errs);
        if (!sat_forbid.empty()) {
          EXPECT_EQ(got.decision, Decision::kDeny);
          EXPECT_EQ(got_reasons, sat_forbid);
        } else {
          EXPECT_EQ(got.decision, sat_permit.empty() ? Decision::kDeny : Decision::kAllow);
          EXPECT_EQ(got_reasons, sat_permit);
        }
      }
    }
  }
}

TEST(PolicySetHash, IsStableAndSensitiveToContent) {
  const char* a =
      "permit(principal, action, resource);\nforbid(principal, action, resource) when { false };";
  auto h1 = PolicySet::FromText(a);
  auto h2 = PolicySet::FromText(a);
  auto h3 = PolicySet::FromText(
      "permit(principal, action, resource);\nforbid(principal, action, resource) when { true };");
  auto h4 = PolicySet::FromText("@id(\"x\") permit(principal, action, resource);");
  auto h5 = PolicySet::FromText("@id(\"y\") permit(principal, action, resource);");
  ASSERT_TRUE(h1.ok() && h2.ok() && h3.ok() && h4.ok() && h5.ok());
  EXPECT_EQ(h1->hash_hex().size(), 64u);
  EXPECT_EQ(h1->hash_hex(), h2->hash_hex());
  EXPECT_NE(h1->hash_hex(), h3->hash_hex());
  EXPECT_NE(h4->hash_hex(), h5->hash_hex());
}

// Pins the documented byte layout (docs/CEDAR.md): sorted by id; u32be id length, id, u32be
// text length, exact policy text. Expected value computed independently with Python hashlib.
TEST(PolicySetHash, KnownAnswer) {
  auto ps = PolicySet::FromText(
      "permit(principal, action, resource);\n// a comment\n@id(\"custom\") forbid(principal, "
      "action, resource);");
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->hash_hex(), "a0b88d87ac8c5439c9a4ca86a817d260793fe88930776a3408e5b085a51dbbdd");
}

TEST(EntitiesJson, MalformedInputIsAnError) {
  for (
      const char* bad : {
          "",
          "{",
          "{}",
          "[1]",
          "[{}]",
          R"([{"uid": {"type": "A"}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "attrs": {"x": 1.5}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "attrs": {"x": null}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "attrs": {"x": 18446744073709551615}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "attrs": {"x": {"__extn": {"fn": "ip", "arg": "nope"}}}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "attrs": {"x": {"__extn": {"fn": "bogus", "arg": "1"}}}}])",
          R"([{"uid": {"type": "A", "id": "a"}, "parents": [1]}])",
          R"([{"uid": {"type": "A", "id": "a"}}, {"uid": {"type": "A", "id": "a"}}])",
      }) {
    EXPECT_FALSE(ParseEntitiesJson(bad, nullptr).ok()) << bad;
  }
  std::string deep =
      "[{\"uid\": {\"type\": \"A\", \"id\": \"a\"}, \"attrs\": {\"x\": " + std::string(5000, '[') +
      std::string(5000, ']') + "}}]";
  EXPECT_FALSE(ParseEntitiesJson(deep, nullptr).ok());
}

TEST(EntitiesJson, LargeStore) {
  // 30,000 users in 2 of 100 groups each, groups in 10 orgs, and a 300-deep chain of folders.
  std::string json = "[";
  auto uid = [](const std::string& t, const std::string& id) {
    return "{\"type\":\"" + t + "\",\"id\":\"" + id + "\"}";
  };
  for (int i = 0; i < 30000; ++i) {
    json += "{\"uid\":" + uid("User", "u" + std::to_string(i)) +
            ",\"attrs\":{\"n\":" + std::to_string(i) + "},\"parents\":[" +
            uid("Group", "g" + std::to_string(i % 100)) + "," +
            uid("Group", "g" + std::to_string((i * 7) % 100)) + "]},";
  }
  for (int g = 0; g < 100; ++g)
    json += "{\"uid\":" + uid("Group", "g" + std::to_string(g)) + ",\"attrs\":{},\"parents\":[" +
            uid("Org", "o" + std::to_string(g % 10)) + "]},";
  for (int f = 0; f < 300; ++f)
    json += "{\"uid\":" + uid("Folder", "f" + std::to_string(f)) + ",\"attrs\":{},\"parents\":[" +
            (f + 1 < 300 ? uid("Folder", "f" + std::to_string(f + 1)) : "") + "]},";
  json.back() = ']';
  auto es = ParseEntitiesJson(json, nullptr);
  ASSERT_TRUE(es.ok()) << es.status().ToString();
  EXPECT_EQ(es->size(), 30400u);
  EXPECT_TRUE(es->In({"User", "u12345"}, {"Org", "o5"}));
  EXPECT_TRUE(es->In({"Folder", "f0"}, {"Folder", "f299"}));
  EXPECT_FALSE(es->In({"Folder", "f299"}, {"Folder", "f0"}));
  auto ps =
      PolicySet::FromText(R"(permit(principal in Org::"o5", action, resource in Folder::"f299")
                                     when { principal.n > 100 };)");
  ASSERT_TRUE(ps.ok());
  Request r{{"User", "u12345"}, {"Action", "a"}, {"Folder", "f0"}, Value::MakeRecord({})};
  EXPECT_EQ(ps->IsAuthorized(r, *es).decision, Decision::kAllow);
}

TEST(EntitiesJson, AncestorsAreTransitive) {
  auto es = ParseEntitiesJson(kEntities, nullptr);
  ASSERT_TRUE(es.ok());
  EXPECT_TRUE(es->In({"User", "alice"}, {"Group", "all"}));
  EXPECT_FALSE(es->In({"Group", "all"}, {"User", "alice"}));
  EXPECT_TRUE(es->In({"Doc", "d1"}, {"Folder", "f1"}));
}

TEST(RequestJson, MalformedRequestsAreErrors) {
  for (const char* bad :
       {"", "[]", "{}", R"({"principal": {"type": "U", "id": "a"}})",
        R"({"principal": 1, "action": 2, "resource": 3})",
        R"({"principal": {"type": "U", "id": "a"}, "action": {"type": "A", "id": "a"},
                              "resource": {"type": "R", "id": "r"}, "context": [1]})"}) {
    EXPECT_FALSE(ParseRequestJson(bad, nullptr).ok()) << bad;
  }
}

constexpr char kCedarSchema[] = R"(
  namespace App {
    type Addr = ipaddr;
    entity Group;
    entity User in [Group] = { manager?: User, addr: Addr, roles: Set<String>, limit: decimal };
    entity Doc tags Addr;
    action read, write appliesTo { principal: [User], resource: [Doc], context: { from: Addr, who: User } };
    action "all";
    action view in ["all"];
  }
)";

TEST(Schema, CedarSchemaDrivesEntityAndContextParsing) {
  auto schema = ParseCedarSchema(kCedarSchema);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_NE(schema->FindEntityType("App::User"), nullptr);
  ASSERT_NE(schema->FindAction({"App::Action", "view"}), nullptr);
  auto es = ParseEntitiesJson(R"([
      {"uid": {"type": "App::User", "id": "a"}, "parents": [],
       "attrs": {"manager": {"type": "App::User", "id": "b"}, "addr": "10.0.0.1", "roles": ["x"], "limit": "1.5"}},
      {"uid": {"type": "App::Doc", "id": "d"}, "parents": [], "attrs": {}, "tags": {"t": "::1"}}])",
                              &*schema);
  ASSERT_TRUE(es.ok()) << es.status().ToString();
  const Entity* a = es->Find({"App::User", "a"});
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->attrs.at("manager").is(Value::Kind::kEntity));
  EXPECT_TRUE(a->attrs.at("addr").is(Value::Kind::kIp));
  EXPECT_TRUE(a->attrs.at("limit").is(Value::Kind::kDecimal));
  EXPECT_TRUE(es->Find({"App::Doc", "d"})->tags.at("t").is(Value::Kind::kIp));
  // Action groups come from the schema.
  EXPECT_TRUE(es->In({"App::Action", "view"}, {"App::Action", "all"}));
  auto req = ParseRequestJson(R"({"principal": {"type": "App::User", "id": "a"},
      "action": {"type": "App::Action", "id": "read"}, "resource": {"type": "App::Doc", "id": "d"},
      "context": {"from": "127.0.0.1", "who": {"type": "App::User", "id": "a"}}})",
                              &*schema);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_TRUE(req->context.as_record().at("from").is(Value::Kind::kIp));
  EXPECT_TRUE(req->context.as_record().at("who").is(Value::Kind::kEntity));
}

TEST(Schema, DataMustConformToTheSchema) {
  auto schema = ParseCedarSchema(kCedarSchema);
  ASSERT_TRUE(schema.ok());
  for (
      const char* bad : {
          // undeclared attribute, missing required attribute, wrong type, undeclared type
          R"([{"uid": {"type": "App::User", "id": "a"}, "parents": [],
                "attrs": {"addr": "10.0.0.1", "roles": [], "limit": "1.0", "zzz": 1}}])",
          R"([{"uid": {"type": "App::User", "id": "a"}, "parents": [], "attrs": {"roles": [], "limit": "1.0"}}])",
          R"([{"uid": {"type": "App::User", "id": "a"}, "parents": [],
                "attrs": {"addr": "10.0.0.1", "roles": [1], "limit": "1.0"}}])",
          R"([{"uid": {"type": "App::Nope", "id": "a"}, "parents": [], "attrs": {}}])",
          // parent type not allowed, tags on a type without tags, bad action groups
          R"([{"uid": {"type": "App::Group", "id": "g"}, "parents": [{"type": "App::Doc", "id": "d"}], "attrs": {}}])",
          R"([{"uid": {"type": "App::Group", "id": "g"}, "parents": [], "attrs": {}, "tags": {"t": "1.1.1.1"}}])",
          R"([{"uid": {"type": "App::Action", "id": "all"}, "parents": [{"type": "App::Action", "id": "view"}], "attrs": {}}])",
      }) {
    EXPECT_FALSE(ParseEntitiesJson(bad, &*schema).ok()) << bad;
  }
  for (
      const char* bad : {
          // principal type not in appliesTo, undeclared action, context missing / extra / mistyped
          R"({"principal": {"type": "App::Doc", "id": "a"}, "action": {"type": "App::Action", "id": "read"},
               "resource": {"type": "App::Doc", "id": "d"}, "context": {"from": "1.1.1.1", "who": {"type": "App::User", "id": "a"}}})",
          R"({"principal": {"type": "App::User", "id": "a"}, "action": {"type": "App::Action", "id": "nope"},
               "resource": {"type": "App::Doc", "id": "d"}, "context": {}})",
          R"({"principal": {"type": "App::User", "id": "a"}, "action": {"type": "App::Action", "id": "read"},
               "resource": {"type": "App::Doc", "id": "d"}, "context": {"from": "1.1.1.1"}})",
          R"({"principal": {"type": "App::User", "id": "a"}, "action": {"type": "App::Action", "id": "read"},
               "resource": {"type": "App::Doc", "id": "d"}, "context": {"from": "1.1.1.1", "who": {"type": "App::User", "id": "a"}, "x": 1}})",
          R"({"principal": {"type": "App::User", "id": "a"}, "action": {"type": "App::Action", "id": "read"},
               "resource": {"type": "App::Doc", "id": "d"}, "context": {"from": "1.1.1.1", "who": {"type": "App::Group", "id": "a"}}})",
      }) {
    EXPECT_FALSE(ParseRequestJson(bad, &*schema).ok()) << bad;
  }
}

TEST(Schema, JsonSchemaFormat) {
  auto schema = ParseSchema(R"({"App": {
      "commonTypes": {"Addr": {"type": "Extension", "name": "ipaddr"}},
      "entityTypes": {"User": {"shape": {"type": "Record", "attributes": {
          "addr": {"type": "Addr"}, "boss": {"type": "Entity", "name": "User", "required": false}}}}},
      "actions": {"all": {}, "read": {"memberOf": [{"id": "all"}],
          "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["User"],
                        "context": {"type": "Record", "attributes": {"ip": {"type": "Addr"}}}}}}}})");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  ASSERT_NE(schema->FindAction({"App::Action", "read"}), nullptr);
  EXPECT_EQ(schema->FindAction({"App::Action", "read"})->principal_types[0], "App::User");
  auto es = ParseEntitiesJson(R"([{"uid": {"type": "App::User", "id": "a"}, "parents": [],
      "attrs": {"addr": "10.0.0.1", "boss": {"type": "App::User", "id": "b"}}}])",
                              &*schema);
  ASSERT_TRUE(es.ok()) << es.status().ToString();
  EXPECT_TRUE(es->Find({"App::User", "a"})->attrs.at("addr").is(Value::Kind::kIp));
  EXPECT_TRUE(es->Find({"App::User", "a"})->attrs.at("boss").is(Value::Kind::kEntity));
  EXPECT_TRUE(es->In({"App::Action", "read"}, {"App::Action", "all"}));
}

TEST(Schema, MalformedSchemasAreErrors) {
  for (const char* bad :
       {"entity", "entity A in ;", "action a appliesTo { principal: };", "namespace A { entity B; ",
        "type = Long;", "{\"A\": 1}", "{", "entity A; entity A;"}) {
    EXPECT_FALSE(ParseSchema(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace custody::policy
