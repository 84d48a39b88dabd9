// The entity store: every entity's attributes, tags, parents and (transitive) ancestors.
//
// Ancestors are computed once, when the store is finished, so that `in` is a hash lookup at
// request time. An Entities object is immutable after Finish() and safe to read from many threads.
#pragma once

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "policy/value.h"

namespace custody::policy {

struct Entity {
  EntityUid uid;
  Record attrs;
  Record tags;
  std::vector<EntityUid> parents;
  // Every entity reachable through parents (the entity itself only through a cycle).
  std::unordered_set<EntityUid, EntityUidHash, EntityUidEq> ancestors;
  // The same uids with their hashes, pointing into `ancestors` (stable node addresses).
  std::vector<UidRef> ancestor_refs;
};

class Entities {
 public:
  Entities() = default;
  // An overlay: entities added here shadow those of `base`, which must outlive this store and
  // stay unchanged; lookups that miss fall through to it. Lets a caller add a few per-request
  // entities (the acting agent, the tool) without copying a large published store.
  explicit Entities(const Entities* base) : base_(base) {}

  // Fails with AlreadyExists on a duplicate uid.
  [[nodiscard]] Status Add(Entity entity);
  // Adds `parent` to the parents of `uid` if the entity exists.
  void AddParent(const EntityUid& uid, const EntityUid& parent);
  // Computes the transitive ancestors of every entity. Call after the last Add().
  void Finish();

  const Entity* Find(const EntityUid& uid) const {
    auto it = map_.find(uid);
    if (it != map_.end()) return &it->second;
    return base_ ? base_->Find(uid) : nullptr;
  }
  const Entity* Find(const UidRef& ref) const {
    auto it = map_.find(ref);
    if (it != map_.end()) return &it->second;
    return base_ ? base_->Find(ref) : nullptr;
  }
  // `a in b` where `a_entity` is Find(a), already looked up by the caller.
  static bool In(const UidRef& a, const Entity* a_entity, const UidRef& b) {
    if (a.hash == b.hash && *a.uid == *b.uid) return true;
    return a_entity != nullptr && a_entity->ancestors.count(b) > 0;
  }
  // `a in b`: equal, or b is an ancestor of a.
  bool In(const EntityUid& a, const EntityUid& b) const {
    if (a == b) return true;
    const Entity* e = Find(a);
    return e != nullptr && e->ancestors.count(b) > 0;
  }
  size_t size() const { return map_.size(); }
  const std::unordered_map<EntityUid, Entity, EntityUidHash, EntityUidEq>& all() const {
    return map_;
  }

 private:
  std::unordered_map<EntityUid, Entity, EntityUidHash, EntityUidEq> map_;
  const Entities* base_ = nullptr;
};

}  // namespace custody::policy
