// StringArray: a JSON array of strings, the one helper every module uses to write a list of ids,
// scopes or reasons; StringField, the one way to read an optional string member. Include only
// from .cc files (it carries Boost.JSON).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace custody {

inline boost::json::array StringArray(const std::vector<std::string>& v) {
  boost::json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// Member `key` of `o` if it is a string, else "" (absent, null or another type).
inline std::string StringField(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                  : std::string();
}

}  // namespace custody
