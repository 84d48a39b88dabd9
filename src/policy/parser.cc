#include "policy/parser.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "policy/internal/lexer.h"

namespace custody::policy {
namespace {

using internal::Describe;
using internal::Lex;
using internal::SyntaxError;
using internal::Tok;
using internal::Token;
using internal::Unescape;

// Nesting bound: deeper input is rejected with an error instead of exhausting the stack.
constexpr int kMaxDepth = 200;
// Bound on the height of an expression tree, which long operator chains (`1 + 1 + ...`,
// `a.b.c...`) grow without nesting.
constexpr uint32_t kMaxHeight = 500;

bool IsReserved(std::string_view s) {
  return s == "true" || s == "false" || s == "if" || s == "then" || s == "else" || s == "in" ||
         s == "is" || s == "like" || s == "has" || s == "__cedar";
}

ExprPtr MakeExpr(Expr::Kind kind) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  return e;
}

// Computes the node's height; throws when the tree would be too deep to evaluate safely.
ExprPtr Seal(ExprPtr e, size_t offset) {
  uint32_t h = 0;
  for (const auto& k : e->kids) h = std::max(h, k->height);
  e->height = h + 1;
  if (e->height > kMaxHeight) throw SyntaxError{offset, "expression nested too deeply"};
  return e;
}

ExprPtr MakeUnary(Expr::Kind kind, ExprPtr a, size_t offset) {
  auto e = MakeExpr(kind);
  e->kids.push_back(std::move(a));
  return Seal(std::move(e), offset);
}

ExprPtr MakeBinary(Expr::Kind kind, ExprPtr a, ExprPtr b, size_t offset) {
  auto e = MakeExpr(kind);
  e->kids.push_back(std::move(a));
  e->kids.push_back(std::move(b));
  return Seal(std::move(e), offset);
}

class Parser {
 public:
  Parser(std::string_view src, std::vector<Token> toks) : src_(src), toks_(std::move(toks)) {}

  bool AtEnd() const { return Peek().kind == Tok::kEnd; }
  size_t pos() const { return pos_; }

  // Error recovery: skips to just past the next `;`, or to the start of the next policy
  // (`@`, `permit`, `forbid`) when the `;` is missing. Always makes progress.
  void SkipPolicy(size_t before, size_t error_pos) {
    pos_ = std::max(pos_, error_pos);
    if (pos_ == before && !AtEnd()) ++pos_;
    while (!AtEnd()) {
      if (IsPunct(";")) {
        ++pos_;
        return;
      }
      bool after_dot =
          pos_ > 0 && toks_[pos_ - 1].kind == Tok::kPunct && toks_[pos_ - 1].text == ".";
      if (!after_dot && (IsPunct("@") || IsIdent("permit") || IsIdent("forbid"))) return;
      ++pos_;
    }
  }
  size_t PosOfOffset(size_t offset) const {
    auto it = std::lower_bound(toks_.begin(), toks_.end(), offset,
                               [](const Token& t, size_t off) { return t.offset < off; });
    return std::min(static_cast<size_t>(it - toks_.begin()), toks_.size() - 1);
  }

  Policy ParsePolicy() {
    Policy p;
    size_t start = Peek().offset;
    std::set<std::string, std::less<>> seen;
    while (IsPunct("@")) {
      ++pos_;
      const Token& name = ExpectIdent("an annotation name");
      std::string value;
      if (IsPunct("(")) {
        ++pos_;
        const Token& s = Expect(Tok::kStr, "a string literal");
        Unescape(s.text, s.offset, &value, nullptr);
        ExpectPunct(")");
      }
      if (!seen.insert(std::string(name.text)).second)
        throw SyntaxError{name.offset, "duplicate annotation `@" + std::string(name.text) + "`"};
      p.annotations.emplace_back(std::string(name.text), std::move(value));
    }
    if (IsIdent("permit")) {
      p.effect = Effect::kPermit;
    } else if (IsIdent("forbid")) {
      p.effect = Effect::kForbid;
    } else {
      throw Unexpected("`permit` or `forbid`");
    }
    ++pos_;
    ExpectPunct("(");
    ParseScopeVar("principal", &p.principal);
    ExpectPunct(",");
    ParseScopeVar("action", &p.action);
    ExpectPunct(",");
    ParseScopeVar("resource", &p.resource);
    if (IsPunct(",")) ++pos_;  // trailing comma is allowed by the reference grammar
    ExpectPunct(")");
    while (IsIdent("when") || IsIdent("unless")) {
      Condition c;
      c.is_when = Peek().text == "when";
      ++pos_;
      ExpectPunct("{");
      if (IsPunct("}")) throw Unexpected("an expression");
      c.expr = ParseExpr();
      ExpectPunct("}");
      p.conditions.push_back(std::move(c));
    }
    const Token& semi = ExpectPunct(";");
    p.text = std::string(src_.substr(start, semi.offset + 1 - start));
    return p;
  }

  ExprPtr ParseStandaloneExpr() {
    ExprPtr e = ParseExpr();
    if (!AtEnd()) throw Unexpected("end of input");
    return e;
  }

  size_t StartOffset() const { return Peek().offset; }

 private:
  ExprPtr Unary(Expr::Kind k, ExprPtr a) { return MakeUnary(k, std::move(a), Peek().offset); }
  ExprPtr Binary(Expr::Kind k, ExprPtr a, ExprPtr b) {
    return MakeBinary(k, std::move(a), std::move(b), Peek().offset);
  }
  ExprPtr Sealed(ExprPtr e) { return Seal(std::move(e), Peek().offset); }

  const Token& Peek(size_t k = 0) const {
    size_t i = pos_ + k;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  bool IsPunct(std::string_view p, size_t k = 0) const {
    return Peek(k).kind == Tok::kPunct && Peek(k).text == p;
  }
  bool IsIdent(std::string_view s, size_t k = 0) const {
    return Peek(k).kind == Tok::kIdent && Peek(k).text == s;
  }
  SyntaxError Unexpected(std::string_view expected) const {
    return SyntaxError{Peek().offset,
                       "unexpected " + Describe(Peek()) + ", expected " + std::string(expected)};
  }
  const Token& Expect(Tok kind, std::string_view what) {
    if (Peek().kind != kind) throw Unexpected(what);
    return toks_[pos_++];
  }
  const Token& ExpectIdent(std::string_view what) { return Expect(Tok::kIdent, what); }
  const Token& ExpectPunct(std::string_view p) {
    if (!IsPunct(p)) throw Unexpected("`" + std::string(p) + "`");
    return toks_[pos_++];
  }

  // An identifier used as an attribute name or record key; reserved words are rejected.
  std::string_view ExpectAttrIdent(std::string_view what) {
    const Token& t = ExpectIdent(what);
    if (IsReserved(t.text))
      throw SyntaxError{t.offset, "`" + std::string(t.text) +
                                      "` is a reserved identifier and cannot be used here"};
    return t.text;
  }

  std::string ParseStr() {
    const Token& t = Expect(Tok::kStr, "a string literal");
    std::string s;
    Unescape(t.text, t.offset, &s, nullptr);
    return s;
  }

  // PATH ::= IDENT {'::' IDENT}; stops before `::` STR.
  std::string ParsePath() {
    const Token& first = ExpectIdent("an identifier");
    if (IsReserved(first.text))
      throw SyntaxError{first.offset, "`" + std::string(first.text) + "` is a reserved word"};
    std::string path(first.text);
    while (IsPunct("::") && Peek(1).kind == Tok::kIdent) {
      pos_ += 2;
      path += "::";
      path += toks_[pos_ - 1].text;
    }
    return path;
  }

  EntityUid ParseEntityRef() {
    if (IsPunct("?"))
      throw SyntaxError{Peek().offset,
                        "policy templates (`?principal`, `?resource`) are not supported"};
    std::string type = ParsePath();
    if (!IsPunct("::")) throw Unexpected("`::` and an entity id");
    ++pos_;
    return EntityUid{std::move(type), ParseStr()};
  }

  void ParseScopeVar(std::string_view var, ScopeConstraint* sc) {
    size_t at = Peek().offset;
    ParseScopeVarInner(var, sc);
    if (var == "action") {
      for (const auto& u : sc->uids) {
        std::string_view t = u.type;
        if (t != "Action" && !(t.size() > 8 && t.substr(t.size() - 8) == "::Action"))
          throw SyntaxError{at,
                            "expected an entity uid with type `Action` but got " + u.ToString()};
      }
    }
    for (const auto& u : sc->uids) sc->hashes.push_back(EntityUidHash()(u));
  }

  void ParseScopeVarInner(std::string_view var, ScopeConstraint* sc) {
    if (!IsIdent(var)) throw Unexpected("`" + std::string(var) + "`");
    ++pos_;
    using Op = ScopeConstraint::Op;
    if (IsPunct("==")) {
      ++pos_;
      sc->op = Op::kEq;
      sc->uids.push_back(ParseEntityRef());
    } else if (IsIdent("in")) {
      ++pos_;
      if (IsPunct("[")) {
        if (var != "action")
          throw SyntaxError{Peek().offset,
                            "a list of entities is only allowed in the action scope"};
        ++pos_;
        sc->op = Op::kInSet;
        if (!IsPunct("]")) {
          sc->uids.push_back(ParseEntityRef());
          while (IsPunct(",")) {
            ++pos_;
            if (IsPunct("]")) break;
            sc->uids.push_back(ParseEntityRef());
          }
        }
        ExpectPunct("]");
      } else {
        sc->op = Op::kIn;
        sc->uids.push_back(ParseEntityRef());
      }
    } else if (IsIdent("is")) {
      if (var == "action")
        throw SyntaxError{Peek().offset, "`is` is not allowed in the action scope"};
      ++pos_;
      sc->type = ParsePath();
      sc->op = Op::kIs;
      if (IsIdent("in")) {
        ++pos_;
        sc->op = Op::kIsIn;
        sc->uids.push_back(ParseEntityRef());
      }
    }
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxDepth)
        throw SyntaxError{p_->Peek().offset, "expression nested too deeply"};
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  ExprPtr ParseExpr() {
    DepthGuard g(this);
    if (IsIdent("if")) {
      ++pos_;
      auto c = ParseExpr();
      if (!IsIdent("then")) throw Unexpected("`then`");
      ++pos_;
      auto t = ParseExpr();
      if (!IsIdent("else")) throw Unexpected("`else`");
      ++pos_;
      auto e = ParseExpr();
      auto x = MakeExpr(Expr::Kind::kIf);
      x->kids.push_back(std::move(c));
      x->kids.push_back(std::move(t));
      x->kids.push_back(std::move(e));
      return Sealed(std::move(x));
    }
    return ParseOr();
  }

  ExprPtr ParseOr() {
    auto lhs = ParseAnd();
    while (IsPunct("||")) {
      ++pos_;
      lhs = Binary(Expr::Kind::kOr, std::move(lhs), ParseAnd());
    }
    return lhs;
  }

  ExprPtr ParseAnd() {
    auto lhs = ParseRelation();
    while (IsPunct("&&")) {
      ++pos_;
      lhs = Binary(Expr::Kind::kAnd, std::move(lhs), ParseRelation());
    }
    return lhs;
  }

  ExprPtr ParseRelation() {
    auto lhs = ParseAdd();
    using K = Expr::Kind;
    static const std::pair<std::string_view, K> kOps[] = {{"==", K::kEq}, {"!=", K::kNe},
                                                          {"<", K::kLt},  {"<=", K::kLe},
                                                          {">", K::kGt},  {">=", K::kGe}};
    for (const auto& [op, kind] : kOps) {
      if (IsPunct(op)) {
        ++pos_;
        auto rhs = ParseAdd();
        return Binary(kind, std::move(lhs), std::move(rhs));
      }
    }
    if (IsPunct("=")) throw SyntaxError{Peek().offset, "unexpected `=`, did you mean `==`?"};
    if (IsIdent("in")) {
      ++pos_;
      return Binary(K::kIn, std::move(lhs), ParseAdd());
    }
    if (IsIdent("has")) {
      ++pos_;
      std::vector<std::string> path;
      if (Peek().kind == Tok::kStr) {
        path.push_back(ParseStr());
      } else {
        path.emplace_back(ExpectAttrIdent("an attribute name"));
        while (IsPunct(".") && Peek(1).kind == Tok::kIdent) {
          ++pos_;
          path.emplace_back(ExpectAttrIdent("an attribute name"));
        }
      }
      // `e has a.b.c` means `e has a && e.a has b && e.a.b has c`.
      ExprPtr result;
      for (size_t i = 0; i < path.size(); ++i) {
        ExprPtr base = CloneExpr(*lhs);
        for (size_t j = 0; j < i; ++j) {
          auto g = Unary(K::kGetAttr, std::move(base));
          g->name = path[j];
          base = std::move(g);
        }
        auto h = Unary(K::kHas, std::move(base));
        h->name = path[i];
        result = result ? Binary(K::kAnd, std::move(result), std::move(h)) : std::move(h);
      }
      return result;
    }
    if (IsIdent("like")) {
      ++pos_;
      const Token& t = Expect(Tok::kStr, "a pattern string");
      auto e = Unary(K::kLike, std::move(lhs));
      Unescape(t.text, t.offset, nullptr, &e->pattern);
      return e;
    }
    if (IsIdent("is")) {
      ++pos_;
      auto e = Unary(K::kIs, CloneExpr(*lhs));
      e->name = ParsePath();
      if (IsIdent("in")) {
        ++pos_;
        // `e is T in x` means `e is T && e in x`.
        auto in = Binary(K::kIn, std::move(lhs), ParseAdd());
        return Binary(K::kAnd, std::move(e), std::move(in));
      }
      return e;
    }
    return lhs;
  }

  static ExprPtr CloneExpr(const Expr& e) {
    auto c = std::make_unique<Expr>();
    c->kind = e.kind;
    c->var = e.var;
    c->ext_fn = e.ext_fn;
    c->height = e.height;
    c->lit = e.lit;
    c->name = e.name;
    c->keys = e.keys;
    c->pattern = e.pattern;
    for (const auto& k : e.kids) c->kids.push_back(CloneExpr(*k));
    return c;
  }

  ExprPtr ParseAdd() {
    auto lhs = ParseMult();
    while (IsPunct("+") || IsPunct("-")) {
      auto kind = Peek().text == "+" ? Expr::Kind::kAdd : Expr::Kind::kSub;
      ++pos_;
      lhs = Binary(kind, std::move(lhs), ParseMult());
    }
    return lhs;
  }

  ExprPtr ParseMult() {
    auto lhs = ParseUnary();
    while (IsPunct("*")) {
      ++pos_;
      lhs = Binary(Expr::Kind::kMul, std::move(lhs), ParseUnary());
    }
    if (IsPunct("/") || IsPunct("%"))
      throw SyntaxError{Peek().offset,
                        "`" + std::string(Peek().text) + "` is not a Cedar operator"};
    return lhs;
  }

  // Unary ::= ('!'{1,4} | '-'{1,4})? Member. The two operators do not mix, as in the reference.
  ExprPtr ParseUnary() {
    DepthGuard g(this);
    if (!IsPunct("!") && !IsPunct("-")) return ParseMember();
    std::string_view op = Peek().text;
    size_t at = Peek().offset;
    int n = 0;
    while (IsPunct(op)) {
      ++pos_;
      ++n;
    }
    if (n > 4) throw SyntaxError{at, "too many occurrences of `" + std::string(op) + "`"};
    const Expr::Kind kind = op == "!" ? Expr::Kind::kNot : Expr::Kind::kNeg;
    ExprPtr e;
    // A minus directly before an integer literal is part of the literal, so that
    // -9223372036854775808 is representable.
    if (kind == Expr::Kind::kNeg && Peek().kind == Tok::kInt && !IsPunct(".", 1) &&
        !IsPunct("[", 1)) {
      const Token& t = toks_[pos_++];
      uint64_t v = ParseU64(t);
      if (v > (uint64_t{1} << 63)) throw SyntaxError{t.offset, "integer literal out of range"};
      e = MakeExpr(Expr::Kind::kLit);
      e->lit = Value::Long(static_cast<int64_t>(0 - v));
      --n;
    } else {
      e = ParseMember();
    }
    for (int i = 0; i < n; ++i) e = Unary(kind, std::move(e));
    return e;
  }

  static uint64_t ParseU64(const Token& t) {
    uint64_t v = 0;
    for (char c : t.text) {
      uint64_t d = c - '0';
      if (v > (UINT64_MAX - d) / 10) throw SyntaxError{t.offset, "integer literal out of range"};
      v = v * 10 + d;
    }
    return v;
  }

  std::vector<ExprPtr> ParseArgs() {
    ExpectPunct("(");
    std::vector<ExprPtr> args;
    if (!IsPunct(")")) {
      args.push_back(ParseExpr());
      while (IsPunct(",")) {
        ++pos_;
        args.push_back(ParseExpr());
      }
    }
    ExpectPunct(")");
    return args;
  }

  ExprPtr ParseMember() {
    auto e = ParsePrimary();
    using K = Expr::Kind;
    while (true) {
      if (IsPunct(".")) {
        ++pos_;
        const Token& name = ExpectIdent("an attribute or method name");
        if (!IsPunct("(") && IsReserved(name.text))
          throw SyntaxError{name.offset, "`" + std::string(name.text) +
                                             "` is a reserved identifier and cannot be used here"};
        if (IsPunct("(")) {
          size_t at = name.offset;
          auto args = ParseArgs();
          struct Builtin {
            std::string_view name;
            K kind;
            size_t arity;
          };
          static const Builtin kBuiltins[] = {
              {"contains", K::kContains, 1},       {"containsAll", K::kContainsAll, 1},
              {"containsAny", K::kContainsAny, 1}, {"isEmpty", K::kIsEmpty, 0},
              {"getTag", K::kGetTag, 1},           {"hasTag", K::kHasTag, 1}};
          bool found = false;
          for (const auto& b : kBuiltins) {
            if (b.name == name.text) {
              if (args.size() != b.arity)
                throw SyntaxError{at, "`" + std::string(b.name) + "` takes " +
                                          std::to_string(b.arity) + " argument(s)"};
              auto m = MakeExpr(b.kind);
              m->kids.push_back(std::move(e));
              for (auto& a : args) m->kids.push_back(std::move(a));
              e = Sealed(std::move(m));
              found = true;
              break;
            }
          }
          if (found) continue;
          auto fn = LookupExtMethod(name.text);
          if (!fn) throw SyntaxError{at, "unknown method `" + std::string(name.text) + "`"};
          auto m = MakeExpr(K::kExtCall);
          m->ext_fn = *fn;
          m->kids.push_back(std::move(e));
          for (auto& a : args) m->kids.push_back(std::move(a));
          e = Sealed(std::move(m));
        } else {
          auto g = Unary(K::kGetAttr, std::move(e));
          g->name = std::string(name.text);
          e = std::move(g);
        }
      } else if (IsPunct("[")) {
        ++pos_;
        std::string key = ParseStr();
        ExpectPunct("]");
        auto g = Unary(K::kGetAttr, std::move(e));
        g->name = std::move(key);
        e = std::move(g);
      } else {
        return e;
      }
    }
  }

  ExprPtr ParsePrimary() {
    DepthGuard g(this);
    using K = Expr::Kind;
    const Token& t = Peek();
    if (t.kind == Tok::kInt) {
      ++pos_;
      uint64_t v = ParseU64(t);
      if (v > static_cast<uint64_t>(INT64_MAX))
        throw SyntaxError{t.offset, "integer literal out of range"};
      auto e = MakeExpr(K::kLit);
      e->lit = Value::Long(static_cast<int64_t>(v));
      return e;
    }
    if (t.kind == Tok::kStr) {
      auto e = MakeExpr(K::kLit);
      e->lit = Value::String(ParseStr());
      return e;
    }
    if (IsPunct("(")) {
      ++pos_;
      auto e = ParseExpr();
      ExpectPunct(")");
      return e;
    }
    if (IsPunct("[")) {
      ++pos_;
      auto e = MakeExpr(K::kSet);
      while (!IsPunct("]")) {  // a trailing comma is allowed
        e->kids.push_back(ParseExpr());
        if (!IsPunct(",")) break;
        ++pos_;
      }
      ExpectPunct("]");
      return Sealed(std::move(e));
    }
    if (IsPunct("{")) {
      ++pos_;
      auto e = MakeExpr(K::kRecord);
      std::set<std::string, std::less<>> seen;
      while (!IsPunct("}")) {
        size_t at = Peek().offset;
        std::string key;
        if (Peek().kind == Tok::kStr) {
          key = ParseStr();
        } else {
          key = std::string(ExpectAttrIdent("a record key"));
        }
        if (!seen.insert(key).second) throw SyntaxError{at, "duplicate record key `" + key + "`"};
        ExpectPunct(":");
        e->keys.push_back(std::move(key));
        e->kids.push_back(ParseExpr());
        if (!IsPunct(",")) break;
        ++pos_;
      }
      ExpectPunct("}");
      return Sealed(std::move(e));
    }
    if (IsPunct("?")) throw SyntaxError{t.offset, "policy templates are not supported"};
    if (t.kind != Tok::kIdent) throw Unexpected("an expression");
    if (t.text == "true" || t.text == "false") {
      ++pos_;
      auto e = MakeExpr(K::kLit);
      e->lit = Value::Bool(t.text == "true");
      return e;
    }
    static const std::pair<std::string_view, Var> kVars[] = {{"principal", Var::kPrincipal},
                                                             {"action", Var::kAction},
                                                             {"resource", Var::kResource},
                                                             {"context", Var::kContext}};
    for (const auto& [name, var] : kVars) {
      if (t.text == name && !IsPunct("::", 1)) {
        ++pos_;
        auto e = MakeExpr(K::kVar);
        e->var = var;
        return e;
      }
    }
    size_t at = t.offset;
    std::string path = ParsePath();
    if (IsPunct("::") && Peek(1).kind == Tok::kStr) {
      ++pos_;
      auto e = MakeExpr(K::kLit);
      e->lit = Value::Entity(EntityUid{std::move(path), ParseStr()});
      return e;
    }
    if (IsPunct("(")) {
      auto fn = LookupExtConstructor(path);
      if (!fn) throw SyntaxError{at, "unknown function `" + path + "`"};
      // A wrong argument count is an evaluation error in Cedar, not a parse error.
      auto args = ParseArgs();
      auto e = MakeExpr(K::kExtCall);
      e->ext_fn = *fn;
      e->kids = std::move(args);
      return Sealed(std::move(e));
    }
    throw SyntaxError{at, "unexpected identifier `" + path + "`, expected an expression"};
  }

  std::string_view src_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// Offsets of the first character of every line, for offset -> line:column.
std::vector<size_t> LineStarts(std::string_view src) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < src.size(); ++i)
    if (src[i] == '\n') starts.push_back(i + 1);
  return starts;
}

ParseError MakeError(const std::vector<size_t>& lines, size_t offset, std::string message) {
  auto it = std::upper_bound(lines.begin(), lines.end(), offset);
  ParseError e;
  e.line = static_cast<int>(it - lines.begin());
  e.column = static_cast<int>(offset - *(it - 1)) + 1;
  e.message = std::move(message);
  return e;
}

}  // namespace

std::string ParseError::ToString() const {
  return std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

ParseOutput ParsePolicies(std::string_view text, bool use_id_annotation) {
  ParseOutput out;
  const std::vector<size_t> lines = LineStarts(text);
  std::vector<Token> toks;
  try {
    toks = Lex(text);
  } catch (const SyntaxError& e) {
    out.errors.push_back(MakeError(lines, e.offset, e.message));
    return out;
  }
  Parser p(text, std::move(toks));
  std::set<std::string> ids;
  int index = 0;
  while (!p.AtEnd()) {
    size_t start = p.StartOffset();
    size_t before = p.pos();
    try {
      Policy pol = p.ParsePolicy();
      ParseError where = MakeError(lines, start, "");
      pol.line = where.line;
      pol.column = where.column;
      pol.id = "policy" + std::to_string(index);
      if (use_id_annotation) {
        for (const auto& [k, v] : pol.annotations)
          if (k == "id") pol.id = v;
      }
      if (!ids.insert(pol.id).second) {
        out.errors.push_back(MakeError(lines, start, "duplicate policy id `" + pol.id + "`"));
      } else {
        out.policies.push_back(std::move(pol));
      }
    } catch (const SyntaxError& e) {
      out.errors.push_back(MakeError(lines, e.offset, e.message));
      p.SkipPolicy(before, p.PosOfOffset(e.offset));
      if (p.pos() == before) break;
    }
    ++index;
  }
  return out;
}

Result<std::vector<Policy>> ParsePolicySetText(std::string_view text, bool use_id_annotation) {
  ParseOutput out = ParsePolicies(text, use_id_annotation);
  if (!out.errors.empty()) {
    std::string msg;
    for (const auto& e : out.errors) {
      if (!msg.empty()) msg += "; ";
      msg += e.ToString();
    }
    return InvalidArgumentError("policy parse error: " + msg);
  }
  return std::move(out.policies);
}

Result<ExprPtr> ParseExpression(std::string_view text) {
  try {
    Parser p(text, Lex(text));
    return p.ParseStandaloneExpr();
  } catch (const SyntaxError& e) {
    return InvalidArgumentError("expression parse error: " +
                                MakeError(LineStarts(text), e.offset, e.message).ToString());
  }
}

}  // namespace custody::policy
