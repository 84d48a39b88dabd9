#include "policy/schema.h"

#include <algorithm>
#include <set>

#include "policy/entities.h"
#include "policy/evaluator.h"
#include "policy/internal/lexer.h"

namespace custody::policy {
namespace {

using internal::Describe;
using internal::Lex;
using internal::SyntaxError;
using internal::Tok;
using internal::Token;

std::string Qualify(const std::string& ns, std::string_view name) {
  return ns.empty() ? std::string(name) : ns + "::" + std::string(name);
}

SchemaTypePtr Prim(SchemaType::Kind kind, std::string name = "") {
  auto t = std::make_shared<SchemaType>();
  t->kind = kind;
  t->name = std::move(name);
  return t;
}

// Builtin type names usable without qualification or with the `__cedar::` prefix.
SchemaTypePtr Builtin(std::string_view name) {
  using K = SchemaType::Kind;
  if (name == "Long") return Prim(K::kLong);
  if (name == "String") return Prim(K::kString);
  if (name == "Bool" || name == "Boolean") return Prim(K::kBool);
  if (name == "ipaddr" || name == "decimal" || name == "datetime" || name == "duration")
    return Prim(K::kExtension, std::string(name));
  return nullptr;
}

class SchemaParser {
 public:
  SchemaParser(std::string_view src, std::vector<Token> toks) : src_(src), toks_(std::move(toks)) {}

  void Parse(Schema* schema) {
    schema_ = schema;
    while (Peek().kind != Tok::kEnd) {
      SkipAnnotations();
      if (IsIdent("namespace")) {
        ++pos_;
        std::string ns = ParsePath();
        ExpectPunct("{");
        while (!IsPunct("}")) {
          SkipAnnotations();
          ParseDecl(ns);
        }
        ++pos_;
      } else {
        ParseDecl("");
      }
    }
  }

 private:
  const Token& Peek(size_t k = 0) const {
    size_t i = pos_ + k;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  bool IsPunct(std::string_view p) const { return Peek().kind == Tok::kPunct && Peek().text == p; }
  bool IsIdent(std::string_view s) const { return Peek().kind == Tok::kIdent && Peek().text == s; }
  SyntaxError Unexpected(std::string_view expected) const {
    return SyntaxError{Peek().offset,
                       "unexpected " + Describe(Peek()) + ", expected " + std::string(expected)};
  }
  const Token& ExpectPunct(std::string_view p) {
    if (!IsPunct(p)) throw Unexpected("`" + std::string(p) + "`");
    return toks_[pos_++];
  }
  const Token& ExpectIdent(std::string_view what) {
    if (Peek().kind != Tok::kIdent) throw Unexpected(what);
    return toks_[pos_++];
  }
  std::string ParseStr() {
    if (Peek().kind != Tok::kStr) throw Unexpected("a string literal");
    const Token& t = toks_[pos_++];
    std::string s;
    internal::Unescape(t.text, t.offset, &s, nullptr);
    return s;
  }
  std::string ParseName() {
    if (Peek().kind == Tok::kStr) return ParseStr();
    return std::string(ExpectIdent("a name").text);
  }
  std::string ParsePath() {
    std::string p(ExpectIdent("a name").text);
    while (IsPunct("::") && Peek(1).kind == Tok::kIdent) {
      pos_ += 2;
      p += "::";
      p += toks_[pos_ - 1].text;
    }
    return p;
  }

  void SkipAnnotations() {
    while (IsPunct("@")) {
      ++pos_;
      ExpectIdent("an annotation name");
      if (IsPunct("(")) {
        ++pos_;
        ParseStr();
        ExpectPunct(")");
      }
    }
  }

  void ParseDecl(const std::string& ns) {
    if (IsIdent("entity")) {
      ++pos_;
      ParseEntity(ns);
    } else if (IsIdent("action")) {
      ++pos_;
      ParseAction(ns);
    } else if (IsIdent("type")) {
      ++pos_;
      std::string name(ExpectIdent("a type name").text);
      ExpectPunct("=");
      schema_->common_types[Qualify(ns, name)] = ParseType(ns);
      ExpectPunct(";");
    } else {
      throw Unexpected("`entity`, `action`, `type` or `namespace`");
    }
  }

  // A list of entity type names: `A` or `[A, B]`.
  std::vector<std::string> ParseTypeList(const std::string& ns) {
    std::vector<std::string> out;
    if (IsPunct("[")) {
      ++pos_;
      while (!IsPunct("]")) {
        out.push_back(ResolveEntityTypeName(ns, ParsePath()));
        if (!IsPunct(",")) break;
        ++pos_;
      }
      ExpectPunct("]");
    } else {
      out.push_back(ResolveEntityTypeName(ns, ParsePath()));
    }
    return out;
  }

  // Entity type references are resolved once all declarations are known; keep the name as
  // written together with its namespace, encoded as "ns\x1fname", and fix them up in Finish().
  std::string ResolveEntityTypeName(const std::string& ns, const std::string& name) {
    return ns + '\x1f' + name;
  }

  void ParseEntity(const std::string& ns) {
    std::vector<std::string> names;
    names.emplace_back(ExpectIdent("an entity type name").text);
    while (IsPunct(",")) {
      ++pos_;
      names.emplace_back(ExpectIdent("an entity type name").text);
    }
    Schema::EntityType et;
    if (IsIdent("enum")) {
      ++pos_;
      ExpectPunct("[");
      while (!IsPunct("]")) {
        et.enum_ids.push_back(ParseStr());
        if (!IsPunct(",")) break;
        ++pos_;
      }
      ExpectPunct("]");
    } else {
      if (IsIdent("in")) {
        ++pos_;
        et.member_of = ParseTypeList(ns);
      }
      if (IsPunct("=")) ++pos_;
      if (IsPunct("{")) et.shape = ParseRecord(ns);
      if (IsIdent("tags")) {
        ++pos_;
        et.tags = ParseType(ns);
      }
    }
    ExpectPunct(";");
    for (const auto& n : names) {
      Schema::EntityType copy = et;
      copy.name = Qualify(ns, n);
      if (!schema_->entity_types.emplace(copy.name, copy).second)
        throw SyntaxError{Peek().offset, "duplicate entity type `" + copy.name + "`"};
    }
  }

  EntityUid ParseActionRef(const std::string& ns) {
    if (Peek().kind == Tok::kStr) return EntityUid{Qualify(ns, "Action"), ParseStr()};
    std::string path = ParsePath();
    if (IsPunct("::") && Peek(1).kind == Tok::kStr) {
      ++pos_;
      std::string type = path == "Action" ? Qualify(ns, "Action") : path;
      return EntityUid{type, ParseStr()};
    }
    return EntityUid{Qualify(ns, "Action"), path};
  }

  void ParseAction(const std::string& ns) {
    std::vector<std::string> names;
    names.push_back(ParseName());
    while (IsPunct(",")) {
      ++pos_;
      names.push_back(ParseName());
    }
    Schema::Action a;
    if (IsIdent("in")) {
      ++pos_;
      if (IsPunct("[")) {
        ++pos_;
        while (!IsPunct("]")) {
          a.member_of.push_back(ParseActionRef(ns));
          if (!IsPunct(",")) break;
          ++pos_;
        }
        ExpectPunct("]");
      } else {
        a.member_of.push_back(ParseActionRef(ns));
      }
    }
    if (IsIdent("appliesTo")) {
      ++pos_;
      ExpectPunct("{");
      while (!IsPunct("}")) {
        const Token& key = ExpectIdent("`principal`, `resource` or `context`");
        ExpectPunct(":");
        if (key.text == "principal") {
          a.principal_types = ParseTypeList(ns);
        } else if (key.text == "resource") {
          a.resource_types = ParseTypeList(ns);
        } else if (key.text == "context") {
          a.context = ParseType(ns);
        } else {
          throw SyntaxError{key.offset, "unexpected `" + std::string(key.text) + "` in appliesTo"};
        }
        if (!IsPunct(",")) break;
        ++pos_;
      }
      ExpectPunct("}");
    }
    ExpectPunct(";");
    for (const auto& n : names) {
      Schema::Action copy = a;
      copy.uid = EntityUid{Qualify(ns, "Action"), n};
      if (!schema_->actions.emplace(copy.uid, copy).second)
        throw SyntaxError{Peek().offset, "duplicate action `" + copy.uid.ToString() + "`"};
    }
  }

  SchemaTypePtr ParseRecord(const std::string& ns) {
    ExpectPunct("{");
    auto rec = std::make_shared<SchemaType>();
    rec->kind = SchemaType::Kind::kRecord;
    while (!IsPunct("}")) {
      SkipAnnotations();
      std::string name = ParseName();
      SchemaAttr attr;
      if (IsPunct("?")) {
        ++pos_;
        attr.required = false;
      }
      ExpectPunct(":");
      attr.type = ParseType(ns);
      rec->attrs[name] = attr;
      if (!IsPunct(",")) break;
      ++pos_;
    }
    ExpectPunct("}");
    return rec;
  }

  SchemaTypePtr ParseType(const std::string& ns) {
    if (++depth_ > 100) throw SyntaxError{Peek().offset, "type nested too deeply"};
    SchemaTypePtr out;
    if (IsPunct("{")) {
      out = ParseRecord(ns);
    } else if (IsIdent("Set") && pos_ + 1 < toks_.size() && toks_[pos_ + 1].text == "<") {
      pos_ += 2;
      auto set = std::make_shared<SchemaType>();
      set->kind = SchemaType::Kind::kSet;
      set->element = ParseType(ns);
      ExpectPunct(">");
      out = set;
    } else {
      auto named = std::make_shared<SchemaType>();
      named->kind = SchemaType::Kind::kNamed;
      named->name = ParsePath();
      named->ns = ns;
      out = named;
    }
    --depth_;
    return out;
  }

  std::string_view src_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  Schema* schema_ = nullptr;
};

// Resolves a written entity type name (as encoded by ResolveEntityTypeName) to a qualified one.
std::string FixEntityTypeName(const Schema& s, const std::string& encoded) {
  size_t sep = encoded.find('\x1f');
  if (sep == std::string::npos) return encoded;
  std::string ns = encoded.substr(0, sep);
  std::string name = encoded.substr(sep + 1);
  if (!ns.empty() && name.find("::") == std::string::npos) {
    std::string q = ns + "::" + name;
    if (s.entity_types.count(q)) return q;
    if (!s.entity_types.count(name)) return q;
  }
  return name;
}

}  // namespace

const SchemaType* Schema::Resolve(const SchemaType& type) const {
  const SchemaType* t = &type;
  // Bounded so that a cycle of common types cannot loop forever.
  for (int hops = 0; hops < 64 && t && t->kind == SchemaType::Kind::kNamed; ++hops) {
    const std::string& name = t->name;
    const SchemaType* next = nullptr;
    std::vector<std::string> candidates;
    if (name.rfind("__cedar::", 0) == 0) {
      // Builtins only.
    } else if (name.find("::") != std::string::npos) {
      candidates.push_back(name);
    } else {
      if (!t->ns.empty()) candidates.push_back(t->ns + "::" + name);
      candidates.push_back(name);
    }
    for (const auto& q : candidates) {
      if (auto it = common_types.find(q); it != common_types.end()) {
        next = it->second.get();
        break;
      }
      if (auto it = entity_refs_.find(q); it != entity_refs_.end()) {
        next = it->second.get();
        break;
      }
    }
    if (!next) {
      std::string_view base = name;
      if (base.rfind("__cedar::", 0) == 0) base.remove_prefix(9);
      auto it = builtins_.find(base);
      if (it == builtins_.end()) return nullptr;
      next = it->second.get();
    }
    t = next;
  }
  return t && t->kind != SchemaType::Kind::kNamed ? t : nullptr;
}

const Schema::EntityType* Schema::FindEntityType(std::string_view name) const {
  auto it = entity_types.find(name);
  return it == entity_types.end() ? nullptr : &it->second;
}

const Schema::Action* Schema::FindAction(const EntityUid& uid) const {
  auto it = actions.find(uid);
  return it == actions.end() ? nullptr : &it->second;
}

void Schema::Finish() {
  for (auto& [name, et] : entity_types) {
    for (auto& m : et.member_of) m = FixEntityTypeName(*this, m);
    entity_refs_[name] = Prim(SchemaType::Kind::kEntity, name);
  }
  for (auto& [uid, a] : actions) {
    for (auto& p : a.principal_types) p = FixEntityTypeName(*this, p);
    for (auto& r : a.resource_types) r = FixEntityTypeName(*this, r);
  }
  for (const char* b :
       {"Long", "String", "Bool", "Boolean", "ipaddr", "decimal", "datetime", "duration"})
    builtins_[b] = Builtin(b);
}

namespace {

Status Mismatch(std::string_view where, std::string_view expected, const Value& v) {
  return InvalidArgumentError(std::string(where) + ": type mismatch: expected " +
                              std::string(expected) + ", got " +
                              std::string(Value::KindName(v.kind())));
}

Status Conforms(const Schema& schema, const Value& v, const SchemaType& declared,
                const std::string& where, int depth) {
  if (depth > 100) return InvalidArgumentError(where + ": type nested too deeply");
  const SchemaType* t = schema.Resolve(declared);
  if (t == nullptr)
    return InvalidArgumentError(where + ": unknown type `" + declared.name + "` in the schema");
  using SK = SchemaType::Kind;
  using VK = Value::Kind;
  switch (t->kind) {
    case SK::kLong:
      return v.is(VK::kLong) ? OkStatus() : Mismatch(where, "Long", v);
    case SK::kString:
      return v.is(VK::kString) ? OkStatus() : Mismatch(where, "String", v);
    case SK::kBool:
      return v.is(VK::kBool) ? OkStatus() : Mismatch(where, "Bool", v);
    case SK::kExtension: {
      VK want = t->name == "ipaddr"     ? VK::kIp
                : t->name == "decimal"  ? VK::kDecimal
                : t->name == "datetime" ? VK::kDatetime
                                        : VK::kDuration;
      return v.is(want) ? OkStatus() : Mismatch(where, t->name, v);
    }
    case SK::kEntity:
      if (!v.is(VK::kEntity)) return Mismatch(where, "entity of type " + t->name, v);
      if (v.as_entity().type != t->name)
        return InvalidArgumentError(where + ": type mismatch: expected an entity of type " +
                                    t->name + ", got " + v.as_entity().ToString());
      return OkStatus();
    case SK::kSet:
      if (!v.is(VK::kSet)) return Mismatch(where, "Set", v);
      if (t->element) {
        for (const Value& e : v.as_set())
          RETURN_IF_ERROR(Conforms(schema, e, *t->element, where, depth + 1));
      }
      return OkStatus();
    case SK::kRecord: {
      if (!v.is(VK::kRecord)) return Mismatch(where, "Record", v);
      const Record& rec = v.as_record();
      for (const auto& [name, attr] : t->attrs) {
        auto it = rec.find(name);
        if (it == rec.end()) {
          if (attr.required)
            return InvalidArgumentError(where + ": missing required attribute `" + name + "`");
          continue;
        }
        RETURN_IF_ERROR(Conforms(schema, it->second, *attr.type, where + "." + name, depth + 1));
      }
      if (!t->additional_attributes) {
        for (const auto& [name, value] : rec)
          if (!t->attrs.count(name))
            return InvalidArgumentError(where + ": attribute `" + name +
                                        "` is not declared in the schema");
      }
      return OkStatus();
    }
    case SK::kNamed:
      break;
  }
  return InternalError("unresolved schema type");
}

bool IsActionType(std::string_view type) {
  return type == "Action" || (type.size() > 8 && type.substr(type.size() - 8) == "::Action");
}

}  // namespace

Status CheckConforms(const Schema& schema, const Value& value, const SchemaType& type,
                     std::string_view where) {
  return Conforms(schema, value, type, std::string(where), 0);
}

Status ValidateEntity(const Schema& schema, const Entity& e) {
  const std::string where = e.uid.ToString();
  if (IsActionType(e.uid.type)) {
    const Schema::Action* a = schema.FindAction(e.uid);
    if (a == nullptr)
      return InvalidArgumentError("action " + where + " is not declared in the schema");
    // Entity data may list an action's transitive groups; each must be one in the schema.
    std::set<EntityUid> declared;
    std::vector<const EntityUid*> stack;
    for (const auto& p : a->member_of) stack.push_back(&p);
    while (!stack.empty()) {
      const EntityUid* cur = stack.back();
      stack.pop_back();
      if (!declared.insert(*cur).second) continue;
      if (const Schema::Action* pa = schema.FindAction(*cur))
        for (const auto& p : pa->member_of) stack.push_back(&p);
    }
    for (const auto& p : e.parents)
      if (!declared.count(p))
        return InvalidArgumentError("the definition of action " + where +
                                    " does not match its schema declaration");
    if (!e.attrs.empty())
      return InvalidArgumentError("action " + where + " may not have attributes");
    return OkStatus();
  }
  const Schema::EntityType* et = schema.FindEntityType(e.uid.type);
  if (et == nullptr)
    return InvalidArgumentError("entity " + where + " has type `" + e.uid.type +
                                "`, which the schema does not declare");
  if (!et->enum_ids.empty() &&
      std::find(et->enum_ids.begin(), et->enum_ids.end(), e.uid.id) == et->enum_ids.end())
    return InvalidArgumentError("entity " + where +
                                " is of an enumerated type, but its id is not one of its values");
  if (et->shape) {
    RETURN_IF_ERROR(Conforms(schema, Value::MakeRecord(e.attrs), *et->shape, where, 0));
  } else if (!e.attrs.empty()) {
    return InvalidArgumentError(where + ": attribute `" + e.attrs.begin()->first +
                                "` is not declared in the schema");
  }
  if (!e.tags.empty()) {
    if (!et->tags)
      return InvalidArgumentError(where + ": the schema declares no tags for `" + e.uid.type + "`");
    for (const auto& [k, v] : e.tags)
      RETURN_IF_ERROR(Conforms(schema, v, *et->tags, where + " tag `" + k + "`", 0));
  }
  for (const auto& p : e.parents) {
    if (std::find(et->member_of.begin(), et->member_of.end(), p.type) == et->member_of.end())
      return InvalidArgumentError(where + " may not have a parent of type `" + p.type +
                                  "` according to the schema");
  }
  return OkStatus();
}

Status ValidateRequest(const Schema& schema, const Request& r) {
  const Schema::Action* a = schema.FindAction(r.action);
  if (a == nullptr)
    return InvalidArgumentError("action " + r.action.ToString() + " is not declared in the schema");
  auto check = [&](const EntityUid& uid, const std::vector<std::string>& allowed,
                   const char* role) -> Status {
    if (schema.FindEntityType(uid.type) == nullptr)
      return InvalidArgumentError(std::string(role) + " type `" + uid.type +
                                  "` is not declared in the schema");
    if (std::find(allowed.begin(), allowed.end(), uid.type) == allowed.end())
      return InvalidArgumentError(std::string(role) + " type `" + uid.type + "` is not valid for " +
                                  r.action.ToString());
    const Schema::EntityType* et = schema.FindEntityType(uid.type);
    if (!et->enum_ids.empty() &&
        std::find(et->enum_ids.begin(), et->enum_ids.end(), uid.id) == et->enum_ids.end())
      return InvalidArgumentError(std::string(role) + " " + uid.ToString() +
                                  " is not a value of its enumerated type");
    return OkStatus();
  };
  RETURN_IF_ERROR(check(r.principal, a->principal_types, "principal"));
  RETURN_IF_ERROR(check(r.resource, a->resource_types, "resource"));
  if (a->context) return Conforms(schema, r.context, *a->context, "context", 0);
  if (r.context.is(Value::Kind::kRecord) && !r.context.as_record().empty())
    return InvalidArgumentError("context: " + r.action.ToString() +
                                " declares no context attributes");
  return OkStatus();
}

Result<Schema> ParseCedarSchema(std::string_view text) {
  Schema schema;
  try {
    SchemaParser p(text, Lex(text));
    p.Parse(&schema);
  } catch (const SyntaxError& e) {
    int line = 1, col = 1;
    for (size_t i = 0; i < e.offset && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgumentError("schema parse error: " + std::to_string(line) + ":" +
                                std::to_string(col) + ": " + e.message);
  }
  schema.Finish();
  return schema;
}

Result<Schema> ParseSchema(std::string_view text) {
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i != std::string_view::npos && text[i] == '{') return ParseJsonSchema(text);
  return ParseCedarSchema(text);
}

}  // namespace custody::policy
