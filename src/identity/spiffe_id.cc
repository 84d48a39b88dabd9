#include "identity/spiffe_id.h"

namespace custody::identity {

Status ValidateTrustDomain(std::string_view td) {
  if (td.empty()) return InvalidArgumentError("SPIFFE trust domain is empty");
  if (td.size() > 255) return InvalidArgumentError("SPIFFE trust domain exceeds 255 characters");
  for (char c : td) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return InvalidArgumentError(
          "SPIFFE trust domain may contain only lowercase letters, digits, '.', '-' and '_'");
    }
  }
  return OkStatus();
}

Status ValidatePathSegment(std::string_view segment) {
  if (segment.empty()) return InvalidArgumentError("SPIFFE ID path has an empty segment");
  if (segment == "." || segment == "..") {
    return InvalidArgumentError("SPIFFE ID path may not contain '.' or '..' segments");
  }
  for (char c : segment) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) {
      return InvalidArgumentError(
          "SPIFFE ID path segments may contain only letters, digits, '.', '-' and '_'");
    }
  }
  return OkStatus();
}

Result<SpiffeId> ParseSpiffeId(std::string_view id) {
  constexpr std::string_view kScheme = "spiffe://";
  if (id.size() > 2048) return InvalidArgumentError("SPIFFE ID exceeds 2048 bytes");
  if (id.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("SPIFFE ID must start with spiffe://");
  }
  std::string_view rest = id.substr(kScheme.size());
  size_t slash = rest.find('/');
  SpiffeId out;
  out.trust_domain = std::string(rest.substr(0, slash));
  RETURN_IF_ERROR(ValidateTrustDomain(out.trust_domain));
  if (slash == std::string_view::npos) return out;
  std::string_view path = rest.substr(slash);
  if (path.size() == 1) return InvalidArgumentError("SPIFFE ID may not end with '/'");
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    RETURN_IF_ERROR(ValidatePathSegment(path.substr(pos, next - pos)));
    pos = next + 1;
  }
  out.path = std::string(path);
  return out;
}

Result<std::string> AgentInstanceSpiffeId(std::string_view trust_domain, std::string_view agent,
                                          std::string_view instance) {
  RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  RETURN_IF_ERROR(ValidatePathSegment(agent).WithContext("agent name"));
  RETURN_IF_ERROR(ValidatePathSegment(instance).WithContext("instance id"));
  std::string id = "spiffe://" + std::string(trust_domain) + "/agent/" + std::string(agent) +
                   "/instance/" + std::string(instance);
  if (id.size() > 2048) return InvalidArgumentError("SPIFFE ID exceeds 2048 bytes");
  return id;
}

}  // namespace custody::identity
