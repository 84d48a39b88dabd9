// Scopes: what an agent may use. A scope is a non-empty token without spaces (RFC 6749 §3.3);
// a trailing "*" makes it a prefix pattern ("github/*" covers "github/create_issue" and
// "github/issues/*"). Delegation only narrows: a child's scopes are each covered by its parent's.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace custody::identity {

using ScopeSet = std::vector<std::string>;  // sorted, unique

// Splits a space-delimited scope string; InvalidArgument for bad characters.
Result<ScopeSet> ParseScopes(std::string_view space_delimited);
Status ValidateScope(std::string_view scope);
std::string JoinScopes(const ScopeSet& scopes);

// True iff every scope `narrow` allows is allowed by `broad`.
bool Covers(std::string_view broad, std::string_view narrow);
bool CoveredBy(std::string_view scope, const ScopeSet& set);

// The largest set of scopes allowed by both a and b (pairwise, the narrower of two comparable
// scopes).
ScopeSet Intersect(const ScopeSet& a, const ScopeSet& b);

}  // namespace custody::identity
