// Absolute URIs in one canonical form (RFC 3986 section 6.2.2): what policy decides on is what
// is passed on, so two spellings of one URI cannot get two answers.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace custody {

// `uri` normalized: scheme and host lower-cased, percent-encodings of unreserved characters
// decoded and the others upper-cased, "." and ".." path segments removed. InvalidArgument for
// anything that is not an absolute URI, including one with spaces or control characters.
Result<std::string> NormalizeUri(std::string_view uri);

}  // namespace custody
