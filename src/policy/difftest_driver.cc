// Test tool for tests/cedar/difftest.mjs: reads one case per stdin line,
//   {"policies": "<cedar text>", "entities": [...], "requests": [{principal, action, resource,
//   context}],
//    "schema": "<cedarschema or JSON schema text>" (optional)}
// and writes one line per case,
//   {"results": [{"decision", "reason", "errors": [{"policy", "message"}]} | {"error": "..."}]}
// or {"error": "..."} when the policies or entities are rejected. Policy ids are positional
// (policy0, policy1, ...), as in cedar-wasm.
#include <boost/json.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "common/json_parse.h"
#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/schema.h"

namespace json = boost::json;
using namespace custody::policy;

namespace {

json::value ErrorObject(const std::string& message) {
  json::object o;
  o["error"] = message;
  return o;
}

json::value RunCase(const std::string& line) {
  json::error_code ec;
  json::value c = custody::ParseJson(line, ec);
  if (ec || !c.is_object()) return ErrorObject("bad case line");
  const json::object& o = c.get_object();
  if (!o.contains("policies") || !o.at("policies").is_string()) return ErrorObject("no policies");
  auto ps = PolicySet::FromText(std::string(o.at("policies").get_string()), false);
  if (!ps.ok()) return ErrorObject(ps.status().message());
  std::unique_ptr<Schema> schema;
  if (o.contains("schema") && o.at("schema").is_string()) {
    auto s = ParseSchema(std::string(o.at("schema").get_string()));
    if (!s.ok()) return ErrorObject(s.status().message());
    schema = std::make_unique<Schema>(std::move(s).value());
  }
  auto es = ParseEntitiesJson(
      json::serialize(o.contains("entities") ? o.at("entities") : json::array()), schema.get());
  if (!es.ok()) return ErrorObject(es.status().message());
  json::array results;
  if (o.contains("requests") && o.at("requests").is_array()) {
    for (const auto& r : o.at("requests").get_array()) {
      auto req = ParseRequestJson(json::serialize(r), schema.get());
      if (!req.ok()) {
        results.push_back(ErrorObject(req.status().message()));
        continue;
      }
      results.push_back(custody::ParseJson(ResponseToJson(ps->IsAuthorized(*req, *es))));
    }
  }
  json::object out;
  out["results"] = std::move(results);
  return out;
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::cout << json::serialize(RunCase(line)) << "\n";
  }
  return 0;
}
