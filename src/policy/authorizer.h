// PolicySet and the Cedar authorizer.
//
// A PolicySet owns parsed policies, an index over their scope constraints, and a content hash.
// IsAuthorized() evaluates only the policies whose scope can match the request (found through
// the index) and follows Cedar's rules: allow iff some permit is satisfied and no forbid is; a
// policy whose evaluation errors is skipped and reported. A PolicySet is immutable after
// Create() and IsAuthorized() may be called from many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "policy/ast.h"
#include "policy/entities.h"
#include "policy/evaluator.h"

namespace custody::policy {

enum class Decision : uint8_t { kAllow, kDeny };

struct PolicyError {
  std::string policy_id;
  std::string message;
};

struct Response {
  Decision decision = Decision::kDeny;
  // Ids of the determining policies: the satisfied forbids on deny, the satisfied permits on
  // allow; in policy-set order.
  std::vector<std::string> reasons;
  std::vector<PolicyError> errors;
};

class PolicySet {
 public:
  // Fails on duplicate policy ids.
  [[nodiscard]] static Result<PolicySet> Create(std::vector<Policy> policies);
  // Parses `text` (see ParsePolicySetText) and creates the set.
  [[nodiscard]] static Result<PolicySet> FromText(std::string_view text,
                                                  bool use_id_annotation = true);

  Response IsAuthorized(const Request& request, const Entities& entities) const;

  const std::vector<Policy>& policies() const { return policies_; }

  // SHA-256 over the policies in id order. Byte layout, per policy: the id length as a 4-byte
  // big-endian integer, the id bytes, the policy text length (4-byte big-endian) and the exact
  // policy source text. Lower-case hex.
  const std::string& hash_hex() const { return hash_hex_; }

 private:
  // One index per scope variable: policies by the uid they name, by the type they name (`is`),
  // and those that do not constrain the variable at all.
  struct VarIndex {
    std::unordered_map<EntityUid, std::vector<uint32_t>, EntityUidHash, EntityUidEq> by_uid;
    std::unordered_map<std::string, std::vector<uint32_t>> by_type;
    std::vector<uint32_t> any;
  };
  void BuildIndex();
  // Appends the index lists holding every policy whose constraint on this variable may match
  // `uid` (a policy may appear in several lists).
  static void Candidates(const VarIndex& idx, const UidRef& uid, const Entity* entity,
                         std::vector<const std::vector<uint32_t>*>* lists);

  std::vector<Policy> policies_;
  VarIndex principal_idx_, action_idx_, resource_idx_;
  std::string hash_hex_;
};

std::string_view DecisionName(Decision d);

}  // namespace custody::policy
