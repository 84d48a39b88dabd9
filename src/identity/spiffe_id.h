// SPIFFE IDs (SPIFFE-ID standard §2): spiffe://<trust domain>/<path>.
//
// Trust domain: 1..255 characters of [a-z0-9.-_]. Path: "/"-separated segments of
// [a-zA-Z0-9.-_], none empty, none "." or "..", no trailing "/". Whole ID at most 2048 bytes.
// No percent-encoding, userinfo, port, query or fragment. Pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::identity {

struct SpiffeId {
  std::string trust_domain;
  std::string path;  // "" or "/seg/seg…"
  std::string ToString() const { return "spiffe://" + trust_domain + path; }
};

Status ValidateTrustDomain(std::string_view td);
// Validates one path segment (the part between slashes).
Status ValidatePathSegment(std::string_view segment);
Result<SpiffeId> ParseSpiffeId(std::string_view id);

// spiffe://<td>/agent/<name>/instance/<instance>
Result<std::string> AgentInstanceSpiffeId(std::string_view trust_domain, std::string_view agent,
                                          std::string_view instance);

}  // namespace custody::identity
