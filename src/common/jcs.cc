#include "common/jcs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "common/utf8.h"

namespace custody {
namespace {

// The bytes a JCS string escapes (controls, '"' and '\\'), and the bytes of a string being
// parsed that stand for themselves (ASCII but those; other bytes are checked as UTF-8 one
// character at a time). Strings are copied in runs of such bytes: the ledger canonicalizes
// every event and formats every receipt as one.
constexpr std::array<bool, 256> kJcsEscaped = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = t['\\'] = true;
  return t;
}();
constexpr std::array<bool, 256> kJcsPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x80; ++c) t[c] = !kJcsEscaped[c];
  return t;
}();

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  Result<std::string> Run() {
    std::string out;
    SkipWs();
    RETURN_IF_ERROR(Value(out, 0));
    SkipWs();
    if (pos_ != in_.size()) return Error("unexpected data after the JSON value");
    return out;
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError("invalid JSON at offset " + std::to_string(pos_) + ": " +
                                std::string(what));
  }

  void SkipWs() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view lit) {
    if (in_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
      return true;
    }
    return false;
  }

  Status Value(std::string& out, int depth) {
    if (pos_ >= in_.size()) return Error("unexpected end of input");
    char c = in_[pos_];
    switch (c) {
      case '{':
        return Object(out, depth + 1);
      case '[':
        return Array(out, depth + 1);
      case '"': {
        std::string s;
        RETURN_IF_ERROR(String(s));
        AppendJcsString(s, out);
        return OkStatus();
      }
      case 't':
        if (Consume("true")) {
          out += "true";
          return OkStatus();
        }
        return Error("invalid literal");
      case 'f':
        if (Consume("false")) {
          out += "false";
          return OkStatus();
        }
        return Error("invalid literal");
      case 'n':
        if (Consume("null")) {
          out += "null";
          return OkStatus();
        }
        return Error("invalid literal");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return Number(out);
        return Error("expected a JSON value");
    }
  }

  Status Object(std::string& out, int depth) {
    if (depth > kJcsMaxDepth) return Error("nesting too deep");
    ++pos_;  // '{'
    // (UTF-16 sort key, name, canonical value)
    struct Member {
      std::u16string key;
      std::string name;
      std::string value;
    };
    std::vector<Member> members;
    SkipWs();
    if (pos_ < in_.size() && in_[pos_] == '}') {
      ++pos_;
      out += "{}";
      return OkStatus();
    }
    while (true) {
      SkipWs();
      if (pos_ >= in_.size() || in_[pos_] != '"') return Error("expected a member name");
      Member m;
      RETURN_IF_ERROR(String(m.name));
      m.key = JcsMemberSortKey(m.name);
      SkipWs();
      if (pos_ >= in_.size() || in_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      SkipWs();
      RETURN_IF_ERROR(Value(m.value, depth));
      members.push_back(std::move(m));
      SkipWs();
      if (pos_ < in_.size() && in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < in_.size() && in_[pos_] == '}') {
        ++pos_;
        break;
      }
      return Error("expected ',' or '}'");
    }
    std::sort(members.begin(), members.end(),
              [](const Member& a, const Member& b) { return a.key < b.key; });
    for (size_t i = 1; i < members.size(); ++i) {
      if (members[i].key == members[i - 1].key) {
        return InvalidArgumentError("invalid JSON: duplicate member name \"" + members[i].name +
                                    "\"");
      }
    }
    out += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i) out += ',';
      AppendJcsString(members[i].name, out);
      out += ':';
      out += members[i].value;
    }
    out += '}';
    return OkStatus();
  }

  Status Array(std::string& out, int depth) {
    if (depth > kJcsMaxDepth) return Error("nesting too deep");
    ++pos_;  // '['
    out += '[';
    SkipWs();
    if (pos_ < in_.size() && in_[pos_] == ']') {
      ++pos_;
      out += ']';
      return OkStatus();
    }
    bool first = true;
    while (true) {
      SkipWs();
      if (!first) out += ',';
      first = false;
      RETURN_IF_ERROR(Value(out, depth));
      SkipWs();
      if (pos_ < in_.size() && in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < in_.size() && in_[pos_] == ']') {
        ++pos_;
        out += ']';
        return OkStatus();
      }
      return Error("expected ',' or ']'");
    }
  }

  Status Number(std::string& out) {
    size_t start = pos_;
    if (in_[pos_] == '-') ++pos_;
    if (pos_ >= in_.size()) return Error("truncated number");
    if (in_[pos_] == '0') {
      ++pos_;
    } else if (in_[pos_] >= '1' && in_[pos_] <= '9') {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    } else {
      return Error("invalid number");
    }
    if (pos_ < in_.size() && in_[pos_] == '.') {
      ++pos_;
      if (pos_ >= in_.size() || !IsDigit(in_[pos_])) return Error("digit expected after '.'");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (pos_ >= in_.size() || !IsDigit(in_[pos_])) return Error("digit expected in exponent");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    double d = 0;
    auto [ptr, ec] = std::from_chars(in_.data() + start, in_.data() + pos_, d);
    if (ec == std::errc::result_out_of_range) {
      // from_chars reports underflow as out of range too; underflow rounds to zero in ECMAScript.
      if (!IsHugeExponent(in_.substr(start, pos_ - start))) {
        out += "0";
        return OkStatus();
      }
      pos_ = start;
      return Error("number out of range (I-JSON requires IEEE 754 doubles)");
    }
    if (ec != std::errc() || ptr != in_.data() + pos_ || !std::isfinite(d)) {
      pos_ = start;
      return Error("number out of range (I-JSON requires IEEE 754 doubles)");
    }
    out += SerializeJcsNumber(d);
    return OkStatus();
  }

  // Distinguishes overflow from underflow for a syntactically valid number that from_chars
  // could not represent: overflow iff the decimal exponent of its first significant digit is
  // positive.
  static bool IsHugeExponent(std::string_view num) {
    long exp = 0;
    size_t e = num.find_first_of("eE");
    std::string_view mant = num.substr(0, e);
    if (e != std::string_view::npos) {
      std::string_view ex = num.substr(e + 1);
      bool neg = !ex.empty() && ex[0] == '-';
      if (!ex.empty() && (ex[0] == '+' || ex[0] == '-')) ex.remove_prefix(1);
      for (char c : ex) exp = std::min<long>(exp * 10 + (c - '0'), 1000000);
      if (neg) exp = -exp;
    }
    if (!mant.empty() && mant[0] == '-') mant.remove_prefix(1);
    size_t dot = mant.find('.');
    std::string_view intpart = mant.substr(0, dot);
    if (!(intpart.size() == 1 && intpart[0] == '0')) {
      return exp + static_cast<long>(intpart.size()) > 0;
    }
    // 0.000ddd: count leading zeros of the fraction.
    long zeros = 0;
    if (dot != std::string_view::npos) {
      for (size_t i = dot + 1; i < mant.size() && mant[i] == '0'; ++i) ++zeros;
    }
    return exp - zeros > 0;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  Status Hex4(uint32_t& v) {
    if (pos_ + 4 > in_.size()) return Error("truncated \\u escape");
    v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return Error("invalid \\u escape");
    }
    return OkStatus();
  }

  // Decodes one UTF-8 sequence at pos_, rejecting overlong forms, surrogates and > U+10FFFF.
  Status Utf8(uint32_t& cp) {
    auto b = [&](size_t i) { return static_cast<uint8_t>(in_[i]); };
    uint8_t c = b(pos_);
    int len;
    uint32_t min;
    if (c < 0x80) {
      cp = c;
      ++pos_;
      return OkStatus();
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else
      return Error("invalid UTF-8");
    if (pos_ + len > in_.size()) return Error("truncated UTF-8 sequence");
    for (int i = 1; i < len; ++i) {
      uint8_t cc = b(pos_ + i);
      if ((cc & 0xC0) != 0x80) return Error("invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Error("invalid UTF-8");
    }
    pos_ += len;
    return OkStatus();
  }

  Status String(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      size_t run = pos_;
      while (pos_ < in_.size() && kJcsPlainAscii[static_cast<uint8_t>(in_[pos_])]) ++pos_;
      out.append(in_.data() + run, pos_ - run);
      if (pos_ >= in_.size()) return Error("unterminated string");
      char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        return OkStatus();
      }
      if (static_cast<uint8_t>(c) < 0x20) return Error("unescaped control character in string");
      if (c != '\\') {
        size_t start = pos_;
        uint32_t cp;
        RETURN_IF_ERROR(Utf8(cp));
        out.append(in_.substr(start, pos_ - start));
        continue;
      }
      ++pos_;
      if (pos_ >= in_.size()) return Error("unterminated escape");
      char e = in_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t v = 0;
          RETURN_IF_ERROR(Hex4(v));
          if (v >= 0xDC00 && v <= 0xDFFF) return Error("lone low surrogate");
          if (v >= 0xD800 && v <= 0xDBFF) {
            if (!Consume("\\u")) return Error("lone high surrogate");
            uint32_t lo = 0;
            RETURN_IF_ERROR(Hex4(lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("lone high surrogate");
            v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(v, out);
          break;
        }
        default:
          return Error("invalid escape");
      }
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

std::u16string JcsMemberSortKey(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    uint32_t cp;
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (cp >> 10));
      out += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

std::string SerializeJcsNumber(double value) {
  if (value == 0) return "0";
  if (value < 0) return "-" + SerializeJcsNumber(-value);
  // Shortest round-trip digits, then ECMAScript's Number::toString layout.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  int exp10 = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp10);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int k = static_cast<int>(digits.size());
  int n = exp10 + 1;
  std::string out;
  if (k <= n && n <= 21) {
    out = digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out = digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out = "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out = digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    int e = n - 1;
    out += e >= 0 ? "e+" : "e-";
    out += std::to_string(e >= 0 ? e : -e);
  }
  return out;
}

void AppendJcsString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the bytes that stand for themselves, copied at once
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (!kJcsEscaped[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

Result<std::string> CanonicalizeJson(std::string_view json) { return Parser(json).Run(); }

}  // namespace custody
