// libFuzzer target: arbitrary bytes as Cedar policy text, schema text and entities JSON. Every
// input must produce a value or an error, never a crash, hang or sanitizer report. Parsed
// policies are also evaluated against a small fixed request, to reach the evaluator.
//
// Built by the fuzz preset; `scripts/fuzz.sh 60 policy_parser` runs it on
// fuzz/corpus/policy_parser/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/parser.h"
#include "policy/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace custody::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  static const Entities* entities = [] {
    auto es =
        ParseEntitiesJson(R"([{"uid": {"type": "User", "id": "a"}, "attrs": {"n": 1, "s": "x"},
        "parents": [{"type": "Group", "id": "g"}], "tags": {"t": 2}}])",
                          nullptr);
    return new Entities(std::move(es).value());
  }();
  Request request{{"User", "a"}, {"Action", "read"}, {"Doc", "d"}, Value::MakeRecord({})};

  ParseOutput out = ParsePolicies(text);
  if (!out.policies.empty()) {
    auto ps = PolicySet::Create(std::move(out.policies));
    if (ps.ok()) (void)ps->IsAuthorized(request, *entities);
  }
  auto schema = ParseSchema(text);
  (void)ParseEntitiesJson(text, schema.ok() ? &*schema : nullptr);
  (void)ParseRequestJson(text, nullptr);
  return 0;
}
