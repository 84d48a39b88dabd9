// StringArray: a JSON array of strings, the one helper every module uses to write a list of ids,
// scopes or reasons. Include only from .cc files (it carries Boost.JSON).
#pragma once

#include <boost/json/array.hpp>
#include <string>
#include <vector>

namespace custody {

inline boost::json::array StringArray(const std::vector<std::string>& v) {
  boost::json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace custody
