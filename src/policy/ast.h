// The Cedar abstract syntax tree produced by the parser and walked by the evaluator.
//
// A Policy owns its expressions. Policies are immutable after parsing and safe to evaluate from
// many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/extensions.h"
#include "policy/value.h"

namespace custody::policy {

enum class Var : uint8_t { kPrincipal, kAction, kResource, kContext };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// One element of a `like` pattern: a literal character or a wildcard.
struct PatternElem {
  bool wildcard = false;
  char ch = 0;
};

struct Expr {
  enum class Kind : uint8_t {
    kLit,  // lit
    kVar,  // var
    kIf,   // kids[0] ? kids[1] : kids[2]
    kAnd,  // kids[0] && kids[1]
    kOr,   // kids[0] || kids[1]
    kNot,  // !kids[0]
    kNeg,  // -kids[0]
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kIn,
    kAdd,
    kSub,
    kMul,
    kContains,  // kids[0].contains(kids[1])
    kContainsAll,
    kContainsAny,
    kIsEmpty,
    kGetTag,
    kHasTag,
    kHas,      // kids[0] has name
    kGetAttr,  // kids[0].name
    kLike,     // kids[0] like pattern
    kIs,       // kids[0] is name (an entity type)
    kSet,      // [kids...]
    kRecord,   // {keys[i]: kids[i]}
    kExtCall,  // ext_fn(kids...)
  };
  Kind kind = Kind::kLit;
  Var var = Var::kPrincipal;
  ExtFn ext_fn = ExtFn::kDecimal;
  Value lit;
  std::string name;
  std::vector<std::string> keys;
  std::vector<PatternElem> pattern;
  std::vector<ExprPtr> kids;
  // 1 + the greatest height of the kids; the parser bounds it so that evaluation and
  // destruction recurse only so deep.
  uint32_t height = 1;
};

// A scope constraint on principal, action or resource.
struct ScopeConstraint {
  enum class Op : uint8_t {
    kAny,    // no constraint
    kEq,     // == uids[0]
    kIn,     // in uids[0]
    kInSet,  // in [uids...] (action only)
    kIs,     // is type
    kIsIn,   // is type in uids[0]
  };
  Op op = Op::kAny;
  std::string type;
  std::vector<EntityUid> uids;
  // EntityUidHash of each uid, filled by the parser (and refreshed by PolicySet::Create).
  std::vector<size_t> hashes;
};

enum class Effect : uint8_t { kPermit, kForbid };

struct Condition {
  bool is_when = true;
  ExprPtr expr;
};

struct Policy {
  std::string id;
  Effect effect = Effect::kPermit;
  std::vector<std::pair<std::string, std::string>> annotations;
  ScopeConstraint principal, action, resource;
  std::vector<Condition> conditions;
  // The exact source text of the policy, used for the policy-set hash.
  std::string text;
  int line = 0;
  int column = 0;
};

}  // namespace custody::policy
