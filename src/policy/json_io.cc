#include "policy/json_io.h"

#include <boost/json.hpp>
#include <set>

#include "common/json_parse.h"
#include "policy/extensions.h"

namespace custody::policy {
namespace json = boost::json;
namespace {

constexpr int kMaxDepth = 256;

Result<json::value> ParseJson(std::string_view text, std::string_view what) {
  json::parse_options opts;
  opts.max_depth = kMaxDepth;
  json::error_code ec;
  json::value v = custody::ParseJson(text, ec, {}, opts);
  if (ec) return InvalidArgumentError(std::string(what) + ": invalid JSON: " + ec.message());
  return v;
}

std::string Str(const json::string& s) { return std::string(s.data(), s.size()); }

bool IsReservedName(std::string_view s) {
  return s == "true" || s == "false" || s == "if" || s == "then" || s == "else" || s == "in" ||
         s == "is" || s == "like" || s == "has" || s == "__cedar";
}

// A Cedar entity type name: `::`-separated identifiers, none reserved, no `__cedar` namespace.
bool IsValidTypeName(std::string_view name) {
  size_t start = 0;
  while (true) {
    size_t end = name.find("::", start);
    std::string_view seg =
        name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (seg.empty() || IsReservedName(seg)) return false;
    if (!((seg[0] >= 'a' && seg[0] <= 'z') || (seg[0] >= 'A' && seg[0] <= 'Z') || seg[0] == '_'))
      return false;
    for (char c : seg)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
        return false;
    if (end == std::string_view::npos) return true;
    start = end + 2;
  }
}

bool LooksLikeUid(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return false;
  const json::value* type = o->if_contains("type");
  const json::value* id = o->if_contains("id");
  return type && id && type->is_string() && id->is_string();
}

Result<EntityUid> UidFromJson(const json::value& v, std::string_view what) {
  const json::object* o = v.if_object();
  if (!o) return InvalidArgumentError(std::string(what) + ": expected an entity reference object");
  if (const json::value* inner = o->if_contains("__entity"); inner && o->size() == 1)
    return UidFromJson(*inner, what);
  if (!LooksLikeUid(v))
    return InvalidArgumentError(std::string(what) +
                                ": an entity reference needs string fields \"type\" and \"id\"");
  std::string type = Str(o->at("type").get_string());
  if (!IsValidTypeName(type))
    return InvalidArgumentError(std::string(what) + ": `" + type +
                                "` is not a valid entity type name");
  return EntityUid{std::move(type), Str(o->at("id").get_string())};
}

class Converter {
 public:
  explicit Converter(const Schema* schema) : schema_(schema) {}

  // `expected` may be null (no schema information).
  Result<Value> Convert(const json::value& v, const SchemaType* expected, int depth) {
    if (depth > kMaxDepth) return InvalidArgumentError("value nested too deeply");
    if (expected && schema_) expected = schema_->Resolve(*expected);
    using SK = SchemaType::Kind;
    switch (v.kind()) {
      case json::kind::bool_:
        return Value::Bool(v.get_bool());
      case json::kind::int64:
        return Value::Long(v.get_int64());
      case json::kind::uint64:
        return InvalidArgumentError("integer " + std::to_string(v.get_uint64()) +
                                    " is out of range");
      case json::kind::double_:
        return InvalidArgumentError("floating-point numbers are not Cedar values");
      case json::kind::null:
        return InvalidArgumentError("null is not a Cedar value");
      case json::kind::string: {
        std::string s = Str(v.get_string());
        if (expected && expected->kind == SK::kExtension) {
          std::string_view fn =
              expected->name == "ipaddr" ? "ip" : std::string_view(expected->name);
          auto ext = LookupExtConstructor(fn);
          if (!ext) return InvalidArgumentError("unknown extension type " + expected->name);
          Value arg = Value::String(std::move(s));
          return CallExt(*ext, std::span<const Value>(&arg, 1));
        }
        return Value::String(std::move(s));
      }
      case json::kind::array: {
        const SchemaType* elem = expected && expected->kind == SK::kSet && expected->element
                                     ? expected->element.get()
                                     : nullptr;
        std::vector<Value> out;
        out.reserve(v.get_array().size());
        for (const auto& x : v.get_array()) {
          ASSIGN_OR_RETURN(Value e, Convert(x, elem, depth + 1));
          out.push_back(std::move(e));
        }
        return Value::Set(std::move(out));
      }
      case json::kind::object: {
        const json::object& o = v.get_object();
        // An escape whose body has the wrong shape is an ordinary record, as in the reference.
        if (o.size() == 1 && o.contains("__entity") && LooksLikeUid(o.at("__entity"))) {
          ASSIGN_OR_RETURN(EntityUid uid, UidFromJson(o.at("__entity"), "__entity"));
          return Value::Entity(std::move(uid));
        }
        if (o.size() == 1 && o.contains("__extn") && IsExtnBody(o.at("__extn")))
          return ConvertExtn(o.at("__extn"), depth);
        if (o.size() == 1 && o.contains("__expr"))
          return InvalidArgumentError("the `__expr` escape is no longer supported");
        if (expected && expected->kind == SK::kEntity) {
          ASSIGN_OR_RETURN(EntityUid uid, UidFromJson(v, "entity reference"));
          return Value::Entity(std::move(uid));
        }
        Record rec;
        for (const auto& kv : o) {
          const SchemaType* at = nullptr;
          if (expected && expected->kind == SK::kRecord) {
            auto it = expected->attrs.find(std::string_view(kv.key().data(), kv.key().size()));
            if (it != expected->attrs.end()) at = it->second.type.get();
          }
          ASSIGN_OR_RETURN(Value x, Convert(kv.value(), at, depth + 1));
          rec.insert_or_assign(std::string(kv.key().data(), kv.key().size()), std::move(x));
        }
        return Value::MakeRecord(std::move(rec));
      }
    }
    return InternalError("unknown JSON kind");
  }

 private:
  Result<Value> ConvertExtn(const json::value& v, int depth) {
    const json::object* o = v.if_object();
    if (!o) return InvalidArgumentError("__extn: expected an object with \"fn\" and \"arg\"");
    const json::value* fn = o->if_contains("fn");
    if (!fn || !fn->is_string()) return InvalidArgumentError("__extn: missing string \"fn\"");
    std::string name = Str(fn->get_string());
    auto ext = LookupExtAny(name);
    if (!ext) return InvalidArgumentError("__extn: unknown extension function `" + name + "`");
    std::vector<Value> args;
    if (const json::value* arg = o->if_contains("arg")) {
      ASSIGN_OR_RETURN(Value a, Convert(*arg, nullptr, depth + 1));
      args.push_back(std::move(a));
    } else if (const json::value* as = o->if_contains("args"); as && as->is_array()) {
      for (const auto& x : as->get_array()) {
        ASSIGN_OR_RETURN(Value a, Convert(x, nullptr, depth + 1));
        args.push_back(std::move(a));
      }
    } else {
      return InvalidArgumentError("__extn: missing \"arg\" or \"args\"");
    }
    return CallExt(*ext, args);
  }

  static bool IsExtnBody(const json::value& v) {
    const json::object* o = v.if_object();
    return o && o->contains("fn") && o->at("fn").is_string() &&
           (o->contains("arg") || o->contains("args"));
  }

  const Schema* schema_;
};

const SchemaType* ContextType(const Schema* schema, const EntityUid& action) {
  if (!schema) return nullptr;
  const Schema::Action* a = schema->FindAction(action);
  return a && a->context ? a->context.get() : nullptr;
}

// Entity type names in the JSON schema are resolved relative to their namespace when the
// schema is finished (see Schema::Finish), using the "namespace\x1fname" encoding.
std::string Unresolved(const std::string& ns, std::string_view name) {
  return ns + '\x1f' + std::string(name);
}

Result<SchemaTypePtr> JsonSchemaType(const json::value& v, const std::string& ns, int depth) {
  if (depth > 64) return InvalidArgumentError("schema type nested too deeply");
  const json::object* o = v.if_object();
  if (!o || !o->contains("type") || !o->at("type").is_string())
    return InvalidArgumentError("schema type must be an object with a string \"type\"");
  std::string type = Str(o->at("type").get_string());
  auto t = std::make_shared<SchemaType>();
  using SK = SchemaType::Kind;
  auto name_field = [&]() -> std::string {
    const json::value* n = o->if_contains("name");
    return n && n->is_string() ? Str(n->get_string()) : "";
  };
  if (type == "Long") {
    t->kind = SK::kLong;
  } else if (type == "String") {
    t->kind = SK::kString;
  } else if (type == "Boolean" || type == "Bool") {
    t->kind = SK::kBool;
  } else if (type == "Set") {
    t->kind = SK::kSet;
    const json::value* e = o->if_contains("element");
    if (!e) return InvalidArgumentError("Set type needs \"element\"");
    ASSIGN_OR_RETURN(t->element, JsonSchemaType(*e, ns, depth + 1));
  } else if (type == "Record") {
    t->kind = SK::kRecord;
    if (const json::value* attrs = o->if_contains("attributes"); attrs && attrs->is_object()) {
      for (const auto& kv : attrs->get_object()) {
        SchemaAttr a;
        ASSIGN_OR_RETURN(a.type, JsonSchemaType(kv.value(), ns, depth + 1));
        if (const json::value* r = kv.value().as_object().if_contains("required");
            r && r->is_bool())
          a.required = r->get_bool();
        t->attrs[std::string(kv.key().data(), kv.key().size())] = a;
      }
    }
    if (const json::value* add = o->if_contains("additionalAttributes"); add && add->is_bool())
      t->additional_attributes = add->get_bool();
  } else if (type == "Entity" || type == "EntityOrCommon") {
    t->kind = SK::kNamed;
    t->name = name_field();
    t->ns = ns;
  } else if (type == "Extension") {
    t->kind = SK::kExtension;
    t->name = name_field();
  } else {
    t->kind = SK::kNamed;  // a common type reference
    t->name = type;
    t->ns = ns;
  }
  return SchemaTypePtr(t);
}

Result<std::vector<std::string>> StringList(const json::value* v, std::string_view what) {
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_array()) return InvalidArgumentError(std::string(what) + " must be an array");
  for (const auto& x : v->get_array()) {
    if (!x.is_string()) return InvalidArgumentError(std::string(what) + " must hold strings");
    out.push_back(Str(x.get_string()));
  }
  return out;
}

Status ParseJsonNamespace(const std::string& ns, const json::object& body, Schema* schema) {
  std::string qual = ns.empty() ? "" : ns + "::";
  if (const json::value* cts = body.if_contains("commonTypes"); cts && cts->is_object()) {
    for (const auto& kv : cts->get_object()) {
      ASSIGN_OR_RETURN(SchemaTypePtr t, JsonSchemaType(kv.value(), ns, 0));
      schema->common_types[qual + std::string(kv.key().data(), kv.key().size())] = t;
    }
  }
  if (const json::value* ets = body.if_contains("entityTypes"); ets && ets->is_object()) {
    for (const auto& kv : ets->get_object()) {
      Schema::EntityType et;
      et.name = qual + std::string(kv.key().data(), kv.key().size());
      const json::object* eo = kv.value().if_object();
      if (!eo) return InvalidArgumentError("entity type " + et.name + " must be an object");
      ASSIGN_OR_RETURN(std::vector<std::string> member_of,
                       StringList(eo->if_contains("memberOfTypes"), "memberOfTypes"));
      for (const auto& m : member_of) et.member_of.push_back(Unresolved(ns, m));
      if (const json::value* shape = eo->if_contains("shape")) {
        ASSIGN_OR_RETURN(et.shape, JsonSchemaType(*shape, ns, 0));
      }
      if (const json::value* tags = eo->if_contains("tags")) {
        ASSIGN_OR_RETURN(et.tags, JsonSchemaType(*tags, ns, 0));
      }
      ASSIGN_OR_RETURN(et.enum_ids, StringList(eo->if_contains("enum"), "enum"));
      schema->entity_types[et.name] = std::move(et);
    }
  }
  if (const json::value* acts = body.if_contains("actions"); acts && acts->is_object()) {
    for (const auto& kv : acts->get_object()) {
      Schema::Action a;
      a.uid = EntityUid{qual + "Action", std::string(kv.key().data(), kv.key().size())};
      const json::object* ao = kv.value().if_object();
      if (!ao) return InvalidArgumentError("action " + a.uid.ToString() + " must be an object");
      if (const json::value* mo = ao->if_contains("memberOf"); mo && mo->is_array()) {
        for (const auto& m : mo->get_array()) {
          const json::object* mobj = m.if_object();
          if (!mobj || !mobj->contains("id") || !mobj->at("id").is_string())
            return InvalidArgumentError("memberOf entries need a string \"id\"");
          std::string type = qual + "Action";
          if (const json::value* t = mobj->if_contains("type"); t && t->is_string()) {
            std::string written = Str(t->get_string());
            type = written == "Action" ? qual + "Action" : written;
          }
          a.member_of.push_back(EntityUid{type, Str(mobj->at("id").get_string())});
        }
      }
      if (const json::value* at = ao->if_contains("appliesTo"); at && at->is_object()) {
        const json::object& ato = at->get_object();
        ASSIGN_OR_RETURN(std::vector<std::string> ps,
                         StringList(ato.if_contains("principalTypes"), "principalTypes"));
        ASSIGN_OR_RETURN(std::vector<std::string> rs,
                         StringList(ato.if_contains("resourceTypes"), "resourceTypes"));
        for (const auto& p : ps) a.principal_types.push_back(Unresolved(ns, p));
        for (const auto& r : rs) a.resource_types.push_back(Unresolved(ns, r));
        if (const json::value* ctx = ato.if_contains("context")) {
          ASSIGN_OR_RETURN(a.context, JsonSchemaType(*ctx, ns, 0));
        }
      }
      schema->actions[a.uid] = std::move(a);
    }
  }
  return OkStatus();
}

}  // namespace

Result<Schema> ParseJsonSchema(std::string_view text) {
  ASSIGN_OR_RETURN(json::value root, ParseJson(text, "schema"));
  if (!root.is_object())
    return InvalidArgumentError("schema: expected a JSON object of namespaces");
  Schema schema;
  for (const auto& kv : root.get_object()) {
    if (!kv.value().is_object())
      return InvalidArgumentError("schema: namespace `" + std::string(kv.key()) +
                                  "` must be an object");
    RETURN_IF_ERROR(ParseJsonNamespace(std::string(kv.key().data(), kv.key().size()),
                                       kv.value().get_object(), &schema)
                        .WithContext("schema"));
  }
  schema.Finish();
  return schema;
}

Result<Entities> ParseEntitiesJson(std::string_view text, const Schema* schema) {
  ASSIGN_OR_RETURN(json::value root, ParseJson(text, "entities"));
  if (!root.is_array()) return InvalidArgumentError("entities: expected a JSON array");
  Entities entities;
  Converter conv(schema);
  size_t index = 0;
  for (const auto& item : root.get_array()) {
    std::string where = "entities[" + std::to_string(index++) + "]";
    const json::object* o = item.if_object();
    if (!o) return InvalidArgumentError(where + ": expected an object");
    const json::value* uid_v = o->if_contains("uid");
    if (!uid_v) return InvalidArgumentError(where + ": missing \"uid\"");
    ASSIGN_OR_RETURN(EntityUid uid, UidFromJson(*uid_v, where + ".uid"));
    if (!o->contains("attrs")) return InvalidArgumentError(where + ": missing \"attrs\"");
    if (!o->contains("parents")) return InvalidArgumentError(where + ": missing \"parents\"");
    Entity e;
    e.uid = uid;
    const Schema::EntityType* et = schema ? schema->FindEntityType(uid.type) : nullptr;
    if (const json::value* attrs = o->if_contains("attrs"); attrs && !attrs->is_null()) {
      if (!attrs->is_object()) return InvalidArgumentError(where + ".attrs: expected an object");
      const SchemaType* shape = et && et->shape ? schema->Resolve(*et->shape) : nullptr;
      for (const auto& kv : attrs->get_object()) {
        std::string key(kv.key().data(), kv.key().size());
        const SchemaType* at = nullptr;
        if (shape && shape->kind == SchemaType::Kind::kRecord) {
          auto it = shape->attrs.find(key);
          if (it != shape->attrs.end()) at = it->second.type.get();
        }
        Result<Value> v = conv.Convert(kv.value(), at, 1);
        if (!v.ok()) return v.status().WithContext(where + ".attrs." + key);
        e.attrs.insert_or_assign(std::move(key), std::move(v).value());
      }
    }
    if (const json::value* tags = o->if_contains("tags"); tags && !tags->is_null()) {
      if (!tags->is_object()) return InvalidArgumentError(where + ".tags: expected an object");
      const SchemaType* tt = et && et->tags ? et->tags.get() : nullptr;
      for (const auto& kv : tags->get_object()) {
        std::string key(kv.key().data(), kv.key().size());
        Result<Value> v = conv.Convert(kv.value(), tt, 1);
        if (!v.ok()) return v.status().WithContext(where + ".tags." + key);
        e.tags.insert_or_assign(std::move(key), std::move(v).value());
      }
    }
    if (const json::value* parents = o->if_contains("parents"); parents && !parents->is_null()) {
      if (!parents->is_array()) return InvalidArgumentError(where + ".parents: expected an array");
      for (const auto& p : parents->get_array()) {
        ASSIGN_OR_RETURN(EntityUid puid, UidFromJson(p, where + ".parents"));
        e.parents.push_back(std::move(puid));
      }
    }
    if (schema) RETURN_IF_ERROR(ValidateEntity(*schema, e).WithContext("entities"));
    // A repeated entry is accepted only if it says exactly the same thing.
    if (const Entity* prev = entities.Find(e.uid)) {
      std::set<EntityUid> p1(prev->parents.begin(), prev->parents.end());
      std::set<EntityUid> p2(e.parents.begin(), e.parents.end());
      if (prev->attrs != e.attrs || prev->tags != e.tags || p1 != p2)
        return InvalidArgumentError(where + ": duplicate entity " + e.uid.ToString());
      continue;
    }
    RETURN_IF_ERROR(entities.Add(std::move(e)));
  }
  if (schema) {
    for (const auto& [uid, action] : schema->actions) {
      if (entities.Find(uid) == nullptr) {
        Entity e;
        e.uid = uid;
        e.parents = action.member_of;
        RETURN_IF_ERROR(entities.Add(std::move(e)));
      } else {
        for (const auto& p : action.member_of) entities.AddParent(uid, p);
      }
    }
  }
  entities.Finish();
  for (const auto& [uid, entity] : entities.all()) {
    if (entity.ancestors.count(uid))
      return InvalidArgumentError("entities: the parent hierarchy has a cycle through " +
                                  uid.ToString());
  }
  return entities;
}

Result<Value> ParseContextJson(std::string_view text, const Schema* schema,
                               const EntityUid& action) {
  ASSIGN_OR_RETURN(json::value root, ParseJson(text, "context"));
  if (!root.is_object()) return InvalidArgumentError("context: expected a JSON object");
  Converter conv(schema);
  ASSIGN_OR_RETURN(Value ctx, conv.Convert(root, ContextType(schema, action), 0));
  if (schema) {
    const Schema::Action* a = schema->FindAction(action);
    if (a == nullptr)
      return InvalidArgumentError("context: action " + action.ToString() +
                                  " is not declared in the schema");
    if (a->context) {
      RETURN_IF_ERROR(CheckConforms(*schema, ctx, *a->context, "context"));
    } else if (!ctx.as_record().empty()) {
      return InvalidArgumentError("context: " + action.ToString() +
                                  " declares no context attributes");
    }
  }
  return ctx;
}

Result<Request> ParseRequestJson(std::string_view text, const Schema* schema) {
  ASSIGN_OR_RETURN(json::value root, ParseJson(text, "request"));
  const json::object* o = root.if_object();
  if (!o) return InvalidArgumentError("request: expected a JSON object");
  Request r;
  for (auto [name, field] : {std::pair{"principal", &r.principal}, std::pair{"action", &r.action},
                             std::pair{"resource", &r.resource}}) {
    const json::value* v = o->if_contains(name);
    if (!v) return InvalidArgumentError(std::string("request: missing \"") + name + "\"");
    ASSIGN_OR_RETURN(*field, UidFromJson(*v, std::string("request.") + name));
  }
  if (const json::value* ctx = o->if_contains("context"); ctx && !ctx->is_null()) {
    if (!ctx->is_object()) return InvalidArgumentError("request.context: expected an object");
    Converter conv(schema);
    Result<Value> v = conv.Convert(*ctx, ContextType(schema, r.action), 0);
    if (!v.ok()) return v.status().WithContext("request.context");
    r.context = std::move(v).value();
  }
  if (schema) RETURN_IF_ERROR(ValidateRequest(*schema, r).WithContext("request"));
  return r;
}

std::string ResponseToJson(const Response& response) {
  json::object o;
  o["decision"] = std::string(DecisionName(response.decision));
  json::array reasons;
  for (const auto& id : response.reasons) reasons.emplace_back(id);
  o["reason"] = std::move(reasons);
  json::array errors;
  for (const auto& e : response.errors) {
    json::object eo;
    eo["policy"] = e.policy_id;
    eo["message"] = e.message;
    errors.emplace_back(std::move(eo));
  }
  o["errors"] = std::move(errors);
  return json::serialize(o);
}

}  // namespace custody::policy
