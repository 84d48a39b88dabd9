// A list of words as one space-separated text: scopes, grants and permissions in the stores'
// columns, session ids in the change feed's messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace custody {

// "a b c" -> {"a", "b", "c"}; runs of spaces and an empty text give no empty words.
inline std::vector<std::string> SplitSpaces(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > pos) out.emplace_back(s.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

inline std::string JoinSpaces(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

}  // namespace custody
