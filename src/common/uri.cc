#include "common/uri.h"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace custody {

Result<std::string> NormalizeUri(std::string_view uri) {
  for (unsigned char c : uri) {
    if (c <= 0x20 || c == 0x7F) {
      return InvalidArgumentError("a URI must not contain spaces or control characters");
    }
  }
  auto parsed = boost::urls::parse_uri(uri);
  if (!parsed) {
    return InvalidArgumentError("not an absolute URI (RFC 3986): " + parsed.error().message());
  }
  boost::urls::url u(*parsed);
  u.normalize();
  return std::string(u.buffer());
}

}  // namespace custody
