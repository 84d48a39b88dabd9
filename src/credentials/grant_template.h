// The SQL that grants an access level to a just-in-time role ([credentials.postgres.NAME.access.
// LEVEL] grant): an operator's template whose one parameter is `{{role}}`, replaced by the role's
// name quoted as an identifier (PQescapeIdentifier) and nothing else, so no value an agent sends
// ever reaches the SQL. Checked when the configuration is read.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::credentials {

inline constexpr std::string_view kRoleParameter = "{{role}}";

// InvalidArgument, naming `key`, unless `sql` is non-empty, uses `{{role}}` at least once and
// has no other `{{`/`}}` (an unknown parameter, or a typo of this one).
Status ValidateGrantTemplate(std::string_view sql, std::string_view key);

// `sql` with every `{{role}}` replaced by `quoted_role` (already quoted as an identifier).
std::string RenderGrant(std::string_view sql, std::string_view quoted_role);

}  // namespace custody::credentials
