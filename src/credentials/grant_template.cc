#include "credentials/grant_template.h"

namespace custody::credentials {

Status ValidateGrantTemplate(std::string_view sql, std::string_view key) {
  const std::string k(key);
  if (sql.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return InvalidArgumentError(k + " must not be empty");
  }
  size_t uses = 0;
  for (size_t i = 0; i < sql.size();) {
    if (sql.substr(i).starts_with(kRoleParameter)) {
      ++uses;
      i += kRoleParameter.size();
      continue;
    }
    if (sql.substr(i).starts_with("{{") || sql.substr(i).starts_with("}}")) {
      size_t end = sql.find("}}", i + 2);
      std::string_view found =
          end == std::string_view::npos ? sql.substr(i, 2) : sql.substr(i, end + 2 - i);
      return InvalidArgumentError(k + ": the only template parameter is {{role}}, found " +
                                  std::string(found.substr(0, 40)));
    }
    ++i;
  }
  if (uses == 0) {
    return InvalidArgumentError(k + " must name the role it grants to as {{role}}");
  }
  return OkStatus();
}

std::string RenderGrant(std::string_view sql, std::string_view quoted_role) {
  std::string out;
  out.reserve(sql.size() + quoted_role.size());
  for (size_t i = 0; i < sql.size();) {
    if (sql.substr(i).starts_with(kRoleParameter)) {
      out += quoted_role;
      i += kRoleParameter.size();
    } else {
      out += sql[i++];
    }
  }
  return out;
}

}  // namespace custody::credentials
