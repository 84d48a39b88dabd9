// Cedar schemas, in the human-readable `.cedarschema` format and the JSON format.
//
// The schema drives schema-based parsing of entities and request contexts (so that entity
// references and extension values need no `__entity`/`__extn` escapes) and supplies the action
// entities and their groups. Type checking of policies against the schema is not done here.
// A Schema is immutable after parsing and safe to share between threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "policy/value.h"

namespace custody::policy {

struct SchemaType;
using SchemaTypePtr = std::shared_ptr<const SchemaType>;

struct SchemaAttr {
  SchemaTypePtr type;
  bool required = true;
};

struct SchemaType {
  enum class Kind : uint8_t { kLong, kString, kBool, kSet, kRecord, kEntity, kExtension, kNamed };
  Kind kind = Kind::kNamed;
  // kEntity: the qualified entity type. kExtension: "ipaddr", "decimal", "datetime", "duration".
  // kNamed: a name still to be resolved (a common type or entity type), seen in namespace `ns`.
  std::string name;
  std::string ns;
  SchemaTypePtr element;                                 // kSet
  std::map<std::string, SchemaAttr, std::less<>> attrs;  // kRecord
  bool additional_attributes = false;                    // kRecord
};

class Schema {
 public:
  struct EntityType {
    std::string name;  // qualified
    std::vector<std::string> member_of;
    SchemaTypePtr shape;  // a record type, or null for no attributes
    SchemaTypePtr tags;   // null when the type has no tags
    std::vector<std::string> enum_ids;
  };
  struct Action {
    EntityUid uid;
    std::vector<EntityUid> member_of;
    std::vector<std::string> principal_types;
    std::vector<std::string> resource_types;
    SchemaTypePtr context;  // null when the action does not declare one
  };

  // Follows kNamed references (common types, entity types, builtins). Returns null when the name
  // is unknown. Never returns a kNamed type.
  const SchemaType* Resolve(const SchemaType& type) const;

  const EntityType* FindEntityType(std::string_view name) const;
  const Action* FindAction(const EntityUid& uid) const;

  std::map<std::string, EntityType, std::less<>> entity_types;
  std::map<EntityUid, Action> actions;
  std::map<std::string, SchemaTypePtr, std::less<>> common_types;  // by qualified name

  // Qualifies entity type references and builds the lookup tables used by Resolve(). Called by
  // the parsers once every declaration has been read.
  void Finish();

 private:
  std::map<std::string, SchemaTypePtr, std::less<>> entity_refs_;
  std::map<std::string, SchemaTypePtr, std::less<>> builtins_;
};

struct Entity;
struct Request;

// Checks that `value` has the schema type `type`: records have their required attributes and no
// undeclared ones, entity references have the declared entity type, and so on.
[[nodiscard]] Status CheckConforms(const Schema& schema, const Value& value, const SchemaType& type,
                                   std::string_view where);

// Checks an entity as the reference does when parsing entities with a schema: its type is
// declared (or it is a declared action, with the declared groups), its attributes and tags
// conform, its parents have allowed types, and an enumerated type's id is one of the values.
[[nodiscard]] Status ValidateEntity(const Schema& schema, const Entity& entity);

// Checks a request as the reference does with request validation on: the action is declared,
// the principal and resource types are among those it applies to, and the context conforms.
[[nodiscard]] Status ValidateRequest(const Schema& schema, const Request& request);

[[nodiscard]] Result<Schema> ParseCedarSchema(std::string_view text);
// Defined with the other JSON adapters in json_io.cc.
[[nodiscard]] Result<Schema> ParseJsonSchema(std::string_view text);
// JSON when the first non-blank character is `{`, the human-readable format otherwise.
[[nodiscard]] Result<Schema> ParseSchema(std::string_view text);

}  // namespace custody::policy
