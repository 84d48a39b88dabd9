// Evaluation of Cedar expressions and policies against one request and an entity store.
//
// Errors (type errors, missing attributes, overflow, extension errors) are returned as a non-OK
// Result, exactly where the reference semantics raise them; `&&`, `||` and `if` short-circuit.
// Stateless; safe to call from many threads with distinct or shared const inputs.
#pragma once

#include "common/status.h"
#include "policy/ast.h"
#include "policy/entities.h"
#include "policy/value.h"

namespace custody::policy {

struct Request {
  EntityUid principal;
  EntityUid action;
  EntityUid resource;
  Value context = Value::MakeRecord({});
};

[[nodiscard]] Result<Value> Evaluate(const Expr& expr, const Request& request,
                                     const Entities& entities);

// The request's variables as Values, built once per request and shared by every policy
// evaluated for it (so that `principal` does not allocate on each use).
// Also caches the variables' uid hashes and their entities, for scope matching.
struct RequestValues {
  RequestValues(const Request& r, const Entities& es)
      : request(r),
        principal(Value::Entity(r.principal)),
        action(Value::Entity(r.action)),
        resource(Value::Entity(r.resource)),
        principal_ref(MakeUidRef(r.principal)),
        action_ref(MakeUidRef(r.action)),
        resource_ref(MakeUidRef(r.resource)),
        principal_entity(es.Find(principal_ref)),
        action_entity(es.Find(action_ref)),
        resource_entity(es.Find(resource_ref)) {}
  const Request& request;
  Value principal, action, resource;
  UidRef principal_ref, action_ref, resource_ref;
  const Entity* principal_entity;
  const Entity* action_entity;
  const Entity* resource_entity;
};

[[nodiscard]] Result<bool> EvaluatePolicy(const Policy& policy, const RequestValues& request,
                                          const Entities& entities);

// True iff the policy's scope matches the request. Scope checks cannot fail.
bool ScopeMatches(const Policy& policy, const Request& request, const Entities& entities);
bool ScopeMatches(const Policy& policy, const RequestValues& request);

// True iff the scope matches and every `when` holds and no `unless` does.
[[nodiscard]] Result<bool> EvaluatePolicy(const Policy& policy, const Request& request,
                                          const Entities& entities);

}  // namespace custody::policy
