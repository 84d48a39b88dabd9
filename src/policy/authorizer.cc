#include "policy/authorizer.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "common/encoding.h"
#include "crypto/sha256.h"
#include "policy/parser.h"

namespace custody::policy {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

}  // namespace

std::string_view DecisionName(Decision d) { return d == Decision::kAllow ? "allow" : "deny"; }

Result<PolicySet> PolicySet::Create(std::vector<Policy> policies) {
  PolicySet ps;
  std::set<std::string> ids;
  for (const auto& p : policies)
    if (!ids.insert(p.id).second) return InvalidArgumentError("duplicate policy id `" + p.id + "`");
  ps.policies_ = std::move(policies);
  for (Policy& p : ps.policies_) {
    for (ScopeConstraint* c : {&p.principal, &p.action, &p.resource}) {
      c->hashes.clear();
      for (const auto& u : c->uids) c->hashes.push_back(EntityUidHash()(u));
    }
  }
  ps.BuildIndex();

  std::vector<const Policy*> sorted;
  for (const auto& p : ps.policies_) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(),
            [](const Policy* a, const Policy* b) { return a->id < b->id; });
  std::string buf;
  for (const Policy* p : sorted) {
    PutU32(&buf, static_cast<uint32_t>(p->id.size()));
    buf += p->id;
    PutU32(&buf, static_cast<uint32_t>(p->text.size()));
    buf += p->text;
  }
  ps.hash_hex_ = HexEncode(crypto::Sha256(buf));
  return ps;
}

Result<PolicySet> PolicySet::FromText(std::string_view text, bool use_id_annotation) {
  ASSIGN_OR_RETURN(std::vector<Policy> policies, ParsePolicySetText(text, use_id_annotation));
  return Create(std::move(policies));
}

void PolicySet::BuildIndex() {
  auto add = [](VarIndex* idx, const ScopeConstraint& c, uint32_t i) {
    using Op = ScopeConstraint::Op;
    switch (c.op) {
      case Op::kAny:
        idx->any.push_back(i);
        break;
      case Op::kIs:
        idx->by_type[c.type].push_back(i);
        break;
      default:
        for (const auto& u : c.uids) {
          auto& v = idx->by_uid[u];
          if (v.empty() || v.back() != i) v.push_back(i);
        }
    }
  };
  for (uint32_t i = 0; i < policies_.size(); ++i) {
    add(&principal_idx_, policies_[i].principal, i);
    add(&action_idx_, policies_[i].action, i);
    add(&resource_idx_, policies_[i].resource, i);
  }
}

void PolicySet::Candidates(const VarIndex& idx, const UidRef& uid, const Entity* entity,
                           std::vector<const std::vector<uint32_t>*>* lists) {
  if (!idx.any.empty()) lists->push_back(&idx.any);
  if (!idx.by_type.empty()) {
    if (auto it = idx.by_type.find(uid.uid->type); it != idx.by_type.end())
      lists->push_back(&it->second);
  }
  if (idx.by_uid.empty()) return;
  if (auto it = idx.by_uid.find(uid); it != idx.by_uid.end()) lists->push_back(&it->second);
  if (entity != nullptr) {
    for (const UidRef& a : entity->ancestor_refs)
      if (auto it = idx.by_uid.find(a); it != idx.by_uid.end()) lists->push_back(&it->second);
  }
}

Response PolicySet::IsAuthorized(const Request& request, const Entities& entities) const {
  // Every policy that can match must be in each variable's candidate lists; evaluate only the
  // variable with the fewest candidates (the others are checked by the scope test).
  const RequestValues vars(request, entities);
  std::vector<const std::vector<uint32_t>*> lists[3];
  Candidates(principal_idx_, vars.principal_ref, vars.principal_entity, &lists[0]);
  Candidates(action_idx_, vars.action_ref, vars.action_entity, &lists[1]);
  Candidates(resource_idx_, vars.resource_ref, vars.resource_entity, &lists[2]);
  size_t best = 0, best_size = SIZE_MAX;
  for (size_t v = 0; v < 3; ++v) {
    size_t n = 0;
    for (const auto* l : lists[v]) n += l->size();
    if (n < best_size) {
      best = v;
      best_size = n;
    }
  }
  std::vector<uint32_t> cand;
  cand.reserve(best_size);
  for (const auto* l : lists[best]) cand.insert(cand.end(), l->begin(), l->end());
  if (lists[best].size() > 1) {
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  }

  Response resp;
  std::vector<const Policy*> permits, forbids;
  for (uint32_t i : cand) {
    const Policy& p = policies_[i];
    Result<bool> r = EvaluatePolicy(p, vars, entities);
    if (!r.ok()) {
      resp.errors.push_back({p.id, r.status().message()});
    } else if (*r) {
      (p.effect == Effect::kPermit ? permits : forbids).push_back(&p);
    }
  }
  if (!forbids.empty()) {
    resp.decision = Decision::kDeny;
    for (const Policy* p : forbids) resp.reasons.push_back(p->id);
  } else if (!permits.empty()) {
    resp.decision = Decision::kAllow;
    for (const Policy* p : permits) resp.reasons.push_back(p->id);
  } else {
    resp.decision = Decision::kDeny;
  }
  return resp;
}

}  // namespace custody::policy
