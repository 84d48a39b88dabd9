// The Cedar policy-text parser.
//
// Parses a policy set (a sequence of policies) or a single expression. Errors carry line:column
// and say what was expected. Stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "policy/ast.h"

namespace custody::policy {

struct ParseError {
  int line = 0;
  int column = 0;
  std::string message;
  // "line:column: message".
  std::string ToString() const;
};

struct ParseOutput {
  std::vector<Policy> policies;
  // Empty when the text parsed cleanly. The parser recovers at the next `;` so that every
  // malformed policy is reported.
  std::vector<ParseError> errors;
};

// Policy ids are "policy0", "policy1", ... in text order, unless an @id("...") annotation gives
// one (pass use_id_annotation=false to always use positional ids, as the reference corpus does).
ParseOutput ParsePolicies(std::string_view text, bool use_id_annotation = true);

// Parses the text as policies and fails with every error joined if any policy is malformed.
[[nodiscard]] Result<std::vector<Policy>> ParsePolicySetText(std::string_view text,
                                                             bool use_id_annotation = true);

// Parses a standalone Cedar expression (for tests and tools).
[[nodiscard]] Result<ExprPtr> ParseExpression(std::string_view text);

}  // namespace custody::policy
