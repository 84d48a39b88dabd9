// JSON adapters for the policy module: the Cedar entities format, requests, contexts, the JSON
// schema format, and authorization responses. Boost.JSON stays inside json_io.cc.
//
// With a schema, entity attributes, tags and request contexts are parsed by their declared
// types, so entity references may be written as {"type":..,"id":..} and extension values as
// plain strings; the schema's action entities (and their groups) are added to the store.
// Without a schema, only the `__entity` and `__extn` escapes produce those values.
// All functions are stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "policy/authorizer.h"
#include "policy/entities.h"
#include "policy/evaluator.h"
#include "policy/schema.h"

namespace custody::policy {

[[nodiscard]] Result<Entities> ParseEntitiesJson(std::string_view json, const Schema* schema);

// {"principal":{"type","id"},"action":{..},"resource":{..},"context":{..}}; context may be absent.
[[nodiscard]] Result<Request> ParseRequestJson(std::string_view json, const Schema* schema);

// A context object, typed by `action`'s declared context when a schema is given.
[[nodiscard]] Result<Value> ParseContextJson(std::string_view json, const Schema* schema,
                                             const EntityUid& action);

// {"decision":"allow"|"deny","reason":[ids],"errors":[{"policy":id,"message":text}]}
std::string ResponseToJson(const Response& response);

}  // namespace custody::policy
