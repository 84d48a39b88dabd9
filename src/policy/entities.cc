#include "policy/entities.h"

namespace custody::policy {

Status Entities::Add(Entity entity) {
  EntityUid uid = entity.uid;
  if (!map_.emplace(uid, std::move(entity)).second)
    return AlreadyExistsError("duplicate entity " + uid.ToString());
  return OkStatus();
}

void Entities::AddParent(const EntityUid& uid, const EntityUid& parent) {
  auto it = map_.find(uid);
  if (it == map_.end()) return;
  for (const auto& p : it->second.parents)
    if (p == parent) return;
  it->second.parents.push_back(parent);
}

void Entities::Finish() {
  // Iterative DFS from each entity; parents that are not in the store are still ancestors.
  for (auto& [uid, entity] : map_) {
    entity.ancestors.clear();
    entity.ancestor_refs.clear();
    std::vector<const EntityUid*> stack;
    for (const auto& p : entity.parents) stack.push_back(&p);
    while (!stack.empty()) {
      const EntityUid* cur = stack.back();
      stack.pop_back();
      if (!entity.ancestors.insert(*cur).second) continue;
      auto it = map_.find(*cur);
      if (it != map_.end()) {
        for (const auto& p : it->second.parents) stack.push_back(&p);
      } else if (const Entity* b = base_ ? base_->Find(*cur) : nullptr) {
        // The base store's ancestors are already transitive.
        for (const auto& a : b->ancestors) entity.ancestors.insert(a);
      }
    }
    for (const auto& a : entity.ancestors) entity.ancestor_refs.push_back(MakeUidRef(a));
  }
}

}  // namespace custody::policy
