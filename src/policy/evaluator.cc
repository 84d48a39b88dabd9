#include "policy/evaluator.h"

#include <algorithm>

namespace custody::policy {
namespace {

using K = Value::Kind;

Status TypeError(std::string_view op, std::string_view expected, const Value& got) {
  return InvalidArgumentError("type error: " + std::string(op) + " expected " +
                              std::string(expected) + ", got " +
                              std::string(Value::KindName(got.kind())));
}

Status Overflow(std::string_view op) {
  return InvalidArgumentError("integer overflow in " + std::string(op));
}

bool WildcardMatch(std::string_view s, const std::vector<PatternElem>& p) {
  size_t si = 0, pi = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && !p[pi].wildcard && p[pi].ch == s[si]) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi].wildcard) {
      star_p = pi++;
      star_s = si;
    } else if (star_p != std::string_view::npos) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi].wildcard) ++pi;
  return pi == p.size();
}

class Evaluator {
 public:
  Evaluator(const RequestValues& vars, const Entities& es)
      : vars_(vars), req_(vars.request), es_(es) {}

  Result<Value> Eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLit:
        return e.lit;
      case Expr::Kind::kVar:
        switch (e.var) {
          case Var::kPrincipal:
            return vars_.principal;
          case Var::kAction:
            return vars_.action;
          case Var::kResource:
            return vars_.resource;
          case Var::kContext:
            return req_.context;
        }
        return InternalError("bad variable");
      case Expr::Kind::kIf: {
        ASSIGN_OR_RETURN(bool c, EvalBool(*e.kids[0], "if"));
        return Eval(*e.kids[c ? 1 : 2]);
      }
      case Expr::Kind::kAnd: {
        ASSIGN_OR_RETURN(bool a, EvalBool(*e.kids[0], "&&"));
        if (!a) return Value::Bool(false);
        ASSIGN_OR_RETURN(bool b, EvalBool(*e.kids[1], "&&"));
        return Value::Bool(b);
      }
      case Expr::Kind::kOr: {
        ASSIGN_OR_RETURN(bool a, EvalBool(*e.kids[0], "||"));
        if (a) return Value::Bool(true);
        ASSIGN_OR_RETURN(bool b, EvalBool(*e.kids[1], "||"));
        return Value::Bool(b);
      }
      case Expr::Kind::kNot: {
        ASSIGN_OR_RETURN(bool a, EvalBool(*e.kids[0], "!"));
        return Value::Bool(!a);
      }
      case Expr::Kind::kNeg: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.kids[0]));
        if (!v.is(K::kLong)) return TypeError("unary -", "Long", v);
        if (v.as_long() == INT64_MIN) return Overflow("negation");
        return Value::Long(-v.as_long());
      }
      case Expr::Kind::kEq:
      case Expr::Kind::kNe: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        bool eq = a == b;
        return Value::Bool(e.kind == Expr::Kind::kEq ? eq : !eq);
      }
      case Expr::Kind::kLt:
      case Expr::Kind::kLe:
      case Expr::Kind::kGt:
      case Expr::Kind::kGe:
        return Compare(e);
      case Expr::Kind::kAdd:
      case Expr::Kind::kSub:
      case Expr::Kind::kMul: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        const char* op = e.kind == Expr::Kind::kAdd ? "+" : e.kind == Expr::Kind::kSub ? "-" : "*";
        if (!a.is(K::kLong)) return TypeError(op, "Long", a);
        if (!b.is(K::kLong)) return TypeError(op, "Long", b);
        int64_t r;
        bool ovf = e.kind == Expr::Kind::kAdd ? __builtin_add_overflow(a.as_long(), b.as_long(), &r)
                   : e.kind == Expr::Kind::kSub
                       ? __builtin_sub_overflow(a.as_long(), b.as_long(), &r)
                       : __builtin_mul_overflow(a.as_long(), b.as_long(), &r);
        if (ovf) return Overflow(op);
        return Value::Long(r);
      }
      case Expr::Kind::kIn:
        return In(e);
      case Expr::Kind::kContains: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        if (!a.is(K::kSet)) return TypeError("contains", "Set", a);
        return Value::Bool(SetContains(a.as_set(), b));
      }
      case Expr::Kind::kContainsAll:
      case Expr::Kind::kContainsAny: {
        bool all = e.kind == Expr::Kind::kContainsAll;
        const char* op = all ? "containsAll" : "containsAny";
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        if (!a.is(K::kSet)) return TypeError(op, "Set", a);
        if (!b.is(K::kSet)) return TypeError(op, "Set", b);
        if (all) {
          for (const Value& v : b.as_set())
            if (!SetContains(a.as_set(), v)) return Value::Bool(false);
          return Value::Bool(true);
        }
        for (const Value& v : b.as_set())
          if (SetContains(a.as_set(), v)) return Value::Bool(true);
        return Value::Bool(false);
      }
      case Expr::Kind::kIsEmpty: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (!a.is(K::kSet)) return TypeError("isEmpty", "Set", a);
        return Value::Bool(a.as_set().empty());
      }
      case Expr::Kind::kGetTag:
      case Expr::Kind::kHasTag: {
        bool get = e.kind == Expr::Kind::kGetTag;
        const char* op = get ? "getTag" : "hasTag";
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        if (!a.is(K::kEntity)) return TypeError(op, "Entity", a);
        if (!b.is(K::kString)) return TypeError(op, "String", b);
        const Entity* ent = es_.Find(a.as_entity());
        if (!get) return Value::Bool(ent != nullptr && ent->tags.count(b.as_string()) > 0);
        if (ent == nullptr)
          return NotFoundError("entity " + a.as_entity().ToString() + " does not exist");
        auto it = ent->tags.find(b.as_string());
        if (it == ent->tags.end())
          return NotFoundError("entity " + a.as_entity().ToString() + " has no tag \"" +
                               EscapeCedarString(b.as_string()) + "\"");
        return it->second;
      }
      case Expr::Kind::kHas: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (a.is(K::kRecord)) return Value::Bool(a.as_record().count(e.name) > 0);
        if (a.is(K::kEntity)) {
          const Entity* ent = es_.Find(a.as_entity());
          return Value::Bool(ent != nullptr && ent->attrs.count(e.name) > 0);
        }
        return TypeError("has", "Entity or Record", a);
      }
      case Expr::Kind::kGetAttr: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        const Record* rec = nullptr;
        if (a.is(K::kRecord)) {
          rec = &a.as_record();
        } else if (a.is(K::kEntity)) {
          const Entity* ent = es_.Find(a.as_entity());
          if (ent == nullptr)
            return NotFoundError("entity " + a.as_entity().ToString() + " does not exist");
          rec = &ent->attrs;
        } else {
          return TypeError("attribute access", "Entity or Record", a);
        }
        auto it = rec->find(e.name);
        if (it == rec->end())
          return NotFoundError("attribute \"" + EscapeCedarString(e.name) + "\" does not exist");
        return it->second;
      }
      case Expr::Kind::kLike: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (!a.is(K::kString)) return TypeError("like", "String", a);
        return Value::Bool(WildcardMatch(a.as_string(), e.pattern));
      }
      case Expr::Kind::kIs: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (!a.is(K::kEntity)) return TypeError("is", "Entity", a);
        return Value::Bool(a.as_entity().type == e.name);
      }
      case Expr::Kind::kSet: {
        std::vector<Value> vals;
        vals.reserve(e.kids.size());
        for (const auto& k : e.kids) {
          ASSIGN_OR_RETURN(Value v, Eval(*k));
          vals.push_back(std::move(v));
        }
        return Value::Set(std::move(vals));
      }
      case Expr::Kind::kRecord: {
        Record rec;
        for (size_t i = 0; i < e.kids.size(); ++i) {
          ASSIGN_OR_RETURN(Value v, Eval(*e.kids[i]));
          rec.insert_or_assign(e.keys[i], std::move(v));
        }
        return Value::MakeRecord(std::move(rec));
      }
      case Expr::Kind::kExtCall: {
        if (e.kids.size() <= 2) {
          Value args[2];
          for (size_t i = 0; i < e.kids.size(); ++i) {
            ASSIGN_OR_RETURN(args[i], Eval(*e.kids[i]));
          }
          return CallExt(e.ext_fn, std::span<const Value>(args, e.kids.size()));
        }
        std::vector<Value> args;
        for (const auto& k : e.kids) {
          ASSIGN_OR_RETURN(Value v, Eval(*k));
          args.push_back(std::move(v));
        }
        return CallExt(e.ext_fn, args);
      }
    }
    return InternalError("unknown expression kind");
  }

 private:
  Result<bool> EvalBool(const Expr& e, std::string_view op) {
    ASSIGN_OR_RETURN(Value v, Eval(e));
    if (!v.is(K::kBool)) return TypeError(op, "Bool", v);
    return v.as_bool();
  }

  static bool SetContains(const ValueSet& set, const Value& v) {
    return std::binary_search(set.begin(), set.end(), v, [](const Value& a, const Value& b) {
      return Value::Compare(a, b) < 0;
    });
  }

  Result<Value> Compare(const Expr& e) {
    ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
    ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
    const char* op = e.kind == Expr::Kind::kLt   ? "<"
                     : e.kind == Expr::Kind::kLe ? "<="
                     : e.kind == Expr::Kind::kGt ? ">"
                                                 : ">=";
    int64_t x, y;
    if (a.is(K::kLong) && b.is(K::kLong)) {
      x = a.as_long();
      y = b.as_long();
    } else if (a.is(K::kDatetime) && b.is(K::kDatetime)) {
      x = a.as_datetime().ms;
      y = b.as_datetime().ms;
    } else if (a.is(K::kDuration) && b.is(K::kDuration)) {
      x = a.as_duration().ms;
      y = b.as_duration().ms;
    } else {
      return InvalidArgumentError(std::string("type error: ") + op + " does not apply to (" +
                                  std::string(Value::KindName(a.kind())) + ", " +
                                  std::string(Value::KindName(b.kind())) + ")");
    }
    switch (e.kind) {
      case Expr::Kind::kLt:
        return Value::Bool(x < y);
      case Expr::Kind::kLe:
        return Value::Bool(x <= y);
      case Expr::Kind::kGt:
        return Value::Bool(x > y);
      default:
        return Value::Bool(x >= y);
    }
  }

  Result<Value> In(const Expr& e) {
    ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
    ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
    if (!a.is(K::kEntity)) return TypeError("in", "Entity", a);
    if (b.is(K::kEntity)) return Value::Bool(es_.In(a.as_entity(), b.as_entity()));
    if (!b.is(K::kSet)) return TypeError("in", "Entity or Set", b);
    for (const Value& v : b.as_set())
      if (!v.is(K::kEntity)) return TypeError("in", "a set of entities", v);
    for (const Value& v : b.as_set())
      if (es_.In(a.as_entity(), v.as_entity())) return Value::Bool(true);
    return Value::Bool(false);
  }

  const RequestValues& vars_;
  const Request& req_;
  const Entities& es_;
};

bool ConstraintMatches(const ScopeConstraint& c, const UidRef& uid, const Entity* entity) {
  using Op = ScopeConstraint::Op;
  auto target = [&](size_t i) {
    return UidRef{&c.uids[i], i < c.hashes.size() ? c.hashes[i] : EntityUidHash()(c.uids[i])};
  };
  switch (c.op) {
    case Op::kAny:
      return true;
    case Op::kEq: {
      UidRef t = target(0);
      return t.hash == uid.hash && *t.uid == *uid.uid;
    }
    case Op::kIn:
      return Entities::In(uid, entity, target(0));
    case Op::kInSet:
      for (size_t i = 0; i < c.uids.size(); ++i)
        if (Entities::In(uid, entity, target(i))) return true;
      return false;
    case Op::kIs:
      return uid.uid->type == c.type;
    case Op::kIsIn:
      return uid.uid->type == c.type && Entities::In(uid, entity, target(0));
  }
  return false;
}

}  // namespace

Result<Value> Evaluate(const Expr& expr, const Request& request, const Entities& entities) {
  RequestValues vars(request, entities);
  Evaluator ev(vars, entities);
  return ev.Eval(expr);
}

bool ScopeMatches(const Policy& p, const Request& r, const Entities& es) {
  return ScopeMatches(p, RequestValues(r, es));
}

bool ScopeMatches(const Policy& p, const RequestValues& v) {
  return ConstraintMatches(p.principal, v.principal_ref, v.principal_entity) &&
         ConstraintMatches(p.action, v.action_ref, v.action_entity) &&
         ConstraintMatches(p.resource, v.resource_ref, v.resource_entity);
}

Result<bool> EvaluatePolicy(const Policy& p, const Request& r, const Entities& es) {
  return EvaluatePolicy(p, RequestValues(r, es), es);
}

Result<bool> EvaluatePolicy(const Policy& p, const RequestValues& vars, const Entities& es) {
  if (!ScopeMatches(p, vars)) return false;
  Evaluator ev(vars, es);
  for (const Condition& c : p.conditions) {
    ASSIGN_OR_RETURN(Value v, ev.Eval(*c.expr));
    if (!v.is(K::kBool)) return TypeError(c.is_when ? "when" : "unless", "Bool", v);
    if (v.as_bool() != c.is_when) return false;
  }
  return true;
}

}  // namespace custody::policy
