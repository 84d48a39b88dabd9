// A list of arbitrary strings (an IdP's group names: spaces and any other character allowed) as
// one text column: a JSON array. Only the SQL backends' .cc files include this (it carries
// Boost.JSON); words without spaces use JoinSpaces (internal/columns.h) instead.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_array.h"

namespace custody::store::internal {

inline std::string EncodeStringList(const std::vector<std::string>& v) {
  return boost::json::serialize(StringArray(v));
}

// A column this code did not write (not an array of strings) reads as an empty list: it only
// ever names groups, which grant nothing the code's scopes do not.
inline std::vector<std::string> DecodeStringList(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& e : v.as_array()) {
    if (e.is_string()) out.emplace_back(e.get_string());
  }
  return out;
}

}  // namespace custody::store::internal
