#include "common/jcs_value.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "common/jcs.h"

namespace custody {
namespace {

namespace json = boost::json;

// Valid UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF (as the parser checks).
bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(len) > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

bool Ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

Status Emit(const json::value& v, std::string& out, int depth);

Status EmitObject(const json::object& o, std::string& out, int depth) {
  if (depth > kJcsMaxDepth) return InvalidArgumentError("invalid JSON: nesting too deep");
  struct Member {
    std::string_view name;
    std::u16string key;  // only when some name is not ASCII
    const json::value* value;
  };
  std::vector<Member> members;
  members.reserve(o.size());
  bool ascii = true;
  for (const auto& kv : o) {
    std::string_view name(kv.key().data(), kv.key().size());
    if (!ValidUtf8(name))
      return InvalidArgumentError("invalid JSON: invalid UTF-8 in a member name");
    ascii = ascii && Ascii(name);
    members.push_back(Member{name, {}, &kv.value()});
  }
  // For ASCII names, byte order is UTF-16 order.
  if (ascii) {
    std::sort(members.begin(), members.end(),
              [](const Member& a, const Member& b) { return a.name < b.name; });
  } else {
    for (Member& m : members) m.key = JcsMemberSortKey(m.name);
    std::sort(members.begin(), members.end(),
              [](const Member& a, const Member& b) { return a.key < b.key; });
  }
  out += '{';
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) {
      if (members[i].name == members[i - 1].name) {
        return InvalidArgumentError("invalid JSON: duplicate member name \"" +
                                    std::string(members[i].name) + "\"");
      }
      out += ',';
    }
    AppendJcsString(members[i].name, out);
    out += ':';
    RETURN_IF_ERROR(Emit(*members[i].value, out, depth));
  }
  out += '}';
  return OkStatus();
}

Status Emit(const json::value& v, std::string& out, int depth) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return OkStatus();
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return OkStatus();
    case json::kind::int64:
      out += SerializeJcsNumber(static_cast<double>(v.get_int64()));
      return OkStatus();
    case json::kind::uint64:
      out += SerializeJcsNumber(static_cast<double>(v.get_uint64()));
      return OkStatus();
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) return InvalidArgumentError("invalid JSON: number is not finite");
      out += SerializeJcsNumber(d);
      return OkStatus();
    }
    case json::kind::string: {
      std::string_view s(v.get_string().data(), v.get_string().size());
      if (!ValidUtf8(s)) return InvalidArgumentError("invalid JSON: invalid UTF-8 in a string");
      AppendJcsString(s, out);
      return OkStatus();
    }
    case json::kind::array: {
      if (depth + 1 > kJcsMaxDepth) return InvalidArgumentError("invalid JSON: nesting too deep");
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        RETURN_IF_ERROR(Emit(e, out, depth + 1));
      }
      out += ']';
      return OkStatus();
    }
    case json::kind::object:
      return EmitObject(v.get_object(), out, depth + 1);
  }
  return InternalError("unknown JSON kind");
}

}  // namespace

Result<std::string> CanonicalizeJsonValue(const json::value& v) {
  std::string out;
  out.reserve(1024);
  RETURN_IF_ERROR(Emit(v, out, 0));
  return out;
}

}  // namespace custody
