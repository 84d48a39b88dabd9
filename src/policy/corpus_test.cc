// Runs the reference implementation's integration corpus (../shared/cedar-integration-tests) and
// the hand-written tests beside it, comparing decision, reason set and erroring-policy set.
//
// CEDAR_CORPUS_DIR names the directory where CTest extracted corpus-tests.tar.gz (a fixture);
// CUSTODY_SOURCE_DIR locates the hand-written tests. Each policy, schema and entities file is
// parsed once per test file and all of its requests are evaluated against it.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/parser.h"
#include "policy/schema.h"

namespace custody::policy {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Counts {
  int files = 0;
  int requests = 0;
  int mismatches = 0;
  std::vector<std::string> details;
};

std::set<std::string> IdSet(const json::value* v) {
  std::set<std::string> out;
  if (!v || !v->is_array()) return out;
  for (const auto& x : v->get_array()) {
    if (x.is_string()) out.insert(std::string(x.get_string()));
  }
  return out;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
  return "[" + out + "]";
}

void RunTestFile(const fs::path& test_file, const fs::path& base, Counts* counts) {
  ++counts->files;
  auto fail = [&](const std::string& why, int n) {
    counts->mismatches += n;
    counts->requests += n;
    if (counts->details.size() < 40) counts->details.push_back(test_file.string() + ": " + why);
  };
  json::value test = json::parse(ReadFile(test_file));
  const json::object& t = test.as_object();
  const auto& reqs = t.at("requests").as_array();
  std::string policy_text = ReadFile(base / std::string(t.at("policies").as_string()));
  std::unique_ptr<Schema> schema;
  if (const json::value* s = t.if_contains("schema"); s && s->is_string()) {
    Result<Schema> parsed = ParseSchema(ReadFile(base / std::string(s->as_string())));
    if (!parsed.ok()) return fail("schema: " + parsed.status().message(), reqs.size());
    schema = std::make_unique<Schema>(std::move(parsed).value());
  }
  // The reference harness names policies policy0, policy1, ... regardless of annotations.
  Result<PolicySet> ps = PolicySet::FromText(policy_text, /*use_id_annotation=*/false);
  if (!ps.ok()) return fail("policies: " + ps.status().message(), reqs.size());
  Result<Entities> es =
      ParseEntitiesJson(ReadFile(base / std::string(t.at("entities").as_string())), schema.get());
  if (!es.ok()) return fail("entities: " + es.status().message(), reqs.size());

  for (const auto& rv : reqs) {
    ++counts->requests;
    const json::object& r = rv.as_object();
    json::object req;
    req["principal"] = r.at("principal");
    req["action"] = r.at("action");
    req["resource"] = r.at("resource");
    req["context"] = r.at("context");
    Result<Request> request = ParseRequestJson(json::serialize(req), schema.get());
    std::string desc =
        r.contains("description") ? std::string(r.at("description").as_string()) : "";
    if (!request.ok()) {
      ++counts->mismatches;
      if (counts->details.size() < 40)
        counts->details.push_back(test_file.string() + " [" + desc +
                                  "]: request: " + request.status().message());
      continue;
    }
    Response resp = ps->IsAuthorized(*request, *es);
    std::string want_decision(r.at("decision").as_string());
    std::set<std::string> want_reason = IdSet(r.if_contains("reason"));
    std::set<std::string> want_errors = IdSet(r.if_contains("errors"));
    std::set<std::string> got_reason(resp.reasons.begin(), resp.reasons.end());
    std::set<std::string> got_errors;
    std::string messages;
    for (const auto& e : resp.errors) {
      got_errors.insert(e.policy_id);
      messages += " " + e.policy_id + ": " + e.message + ";";
    }
    if (want_decision != DecisionName(resp.decision) || want_reason != got_reason ||
        want_errors != got_errors) {
      ++counts->mismatches;
      if (counts->details.size() < 40) {
        counts->details.push_back(test_file.string() + " [" + desc + "]: want " + want_decision +
                                  " " + Join(want_reason) + " errors " + Join(want_errors) +
                                  ", got " + std::string(DecisionName(resp.decision)) + " " +
                                  Join(got_reason) + " errors " + Join(got_errors) + messages);
      }
    }
  }
}

void Report(const char* name, const Counts& c) {
  std::printf("%s: %d test files, %d requests compared, %d mismatches\n", name, c.files, c.requests,
              c.mismatches);
  for (const auto& d : c.details) std::printf("  MISMATCH %s\n", d.c_str());
}

fs::path SharedDir() {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  return fs::path(src ? src : ".") / ".." / "shared" / "cedar-integration-tests";
}

TEST(CedarConformance, HandWrittenTests) {
  fs::path base = SharedDir();
  ASSERT_TRUE(fs::exists(base / "tests")) << "missing " << base << " (set CUSTODY_SOURCE_DIR)";
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(base / "tests"))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  Counts c;
  for (const auto& f : files) RunTestFile(f, base, &c);
  Report("hand-written", c);
  EXPECT_EQ(c.files, 22);
  EXPECT_EQ(c.requests, 74);
  EXPECT_EQ(c.mismatches, 0);
}

TEST(CedarConformance, IntegrationCorpus) {
  const char* dir = std::getenv("CEDAR_CORPUS_DIR");
  ASSERT_NE(dir, nullptr) << "CEDAR_CORPUS_DIR is not set; run through CTest";
  fs::path base(dir);
  ASSERT_TRUE(fs::exists(base / "corpus-tests")) << "corpus not extracted in " << base;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(base / "corpus-tests")) {
    std::string name = e.path().filename().string();
    if (name.size() > 5 && name.ends_with(".json") && !name.ends_with(".entities.json"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  Counts c;
  for (const auto& f : files) RunTestFile(f, base, &c);
  Report("corpus", c);
  EXPECT_EQ(c.files, 7809);
  EXPECT_EQ(c.requests, 62472);
  EXPECT_EQ(c.mismatches, 0);
}

}  // namespace
}  // namespace custody::policy
