#include "policy/internal/lexer.h"

#include "common/utf8.h"

namespace custody::policy::internal {

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd:
      return "end of input";
    case Tok::kStr:
      return "string literal";
    case Tok::kInt:
      return "integer `" + std::string(t.text) + "`";
    default:
      return "`" + std::string(t.text) + "`";
  }
}

std::vector<Token> Lex(std::string_view src) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = src.size();
  while (true) {
    while (i < n) {
      char c = src[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (c == '/' && i + 1 < n && src[i + 1] == '/') {
        while (i < n && src[i] != '\n') ++i;
      } else {
        break;
      }
    }
    if (i >= n) {
      out.push_back({Tok::kEnd, {}, n});
      return out;
    }
    size_t start = i;
    char c = src[i];
    if (IsIdentStart(c)) {
      while (i < n && IsIdentChar(src[i])) ++i;
      out.push_back({Tok::kIdent, src.substr(start, i - start), start});
    } else if (c >= '0' && c <= '9') {
      while (i < n && src[i] >= '0' && src[i] <= '9') ++i;
      if (i < n && IsIdentStart(src[i])) throw SyntaxError{i, "invalid character after number"};
      out.push_back({Tok::kInt, src.substr(start, i - start), start});
    } else if (c == '"') {
      ++i;
      while (i < n && src[i] != '"') {
        if (src[i] == '\\') ++i;
        ++i;
      }
      if (i >= n) throw SyntaxError{start, "unterminated string literal"};
      out.push_back({Tok::kStr, src.substr(start + 1, i - start - 1), start});
      ++i;
    } else {
      static const char* kTwo[] = {"==", "!=", "<=", ">=", "&&", "||", "::"};
      bool matched = false;
      if (i + 1 < n) {
        for (const char* t : kTwo) {
          if (src[i] == t[0] && src[i + 1] == t[1]) {
            out.push_back({Tok::kPunct, src.substr(i, 2), start});
            i += 2;
            matched = true;
            break;
          }
        }
      }
      if (matched) continue;
      static const std::string_view kOne = "()[]{},;:.@<>!-+*?=/%";
      if (kOne.find(c) == std::string_view::npos) {
        throw SyntaxError{i, "unexpected character `" + std::string(1, c) + "`"};
      }
      out.push_back({Tok::kPunct, src.substr(i, 1), start});
      ++i;
    }
  }
}

namespace {

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// Unescapes a string body. With `pattern`, `\*` is a literal star and a bare `*` a wildcard.
void Unescape(std::string_view body, size_t offset, std::string* out,
              std::vector<PatternElem>* pattern) {
  auto emit = [&](std::string_view bytes, bool wildcard) {
    if (pattern) {
      if (wildcard) {
        pattern->push_back({true, 0});
      } else {
        for (char b : bytes) pattern->push_back({false, b});
      }
    } else {
      out->append(bytes);
    }
  };
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\') {
      if (c == '*' && pattern) {
        emit({}, true);
      } else {
        emit(body.substr(i, 1), false);
      }
      continue;
    }
    size_t esc = offset + 1 + i;
    if (++i >= body.size()) throw SyntaxError{esc, "invalid escape at end of string"};
    char e = body[i];
    std::string tmp;
    switch (e) {
      case 'n':
        emit("\n", false);
        break;
      case 'r':
        emit("\r", false);
        break;
      case 't':
        emit("\t", false);
        break;
      case '\\':
        emit("\\", false);
        break;
      case '0':
        emit(std::string_view("\0", 1), false);
        break;
      case '\'':
        emit("'", false);
        break;
      case '"':
        emit("\"", false);
        break;
      case '*':
        if (!pattern) throw SyntaxError{esc, "invalid escape `\\*` outside a `like` pattern"};
        emit("*", false);
        break;
      case 'x': {
        int h = i + 1 < body.size() ? HexVal(body[i + 1]) : -1;
        int l = i + 2 < body.size() ? HexVal(body[i + 2]) : -1;
        if (h < 0 || l < 0 || h > 7) throw SyntaxError{esc, "invalid \\x escape"};
        tmp += static_cast<char>(h * 16 + l);
        emit(tmp, false);
        i += 2;
        break;
      }
      case 'u': {
        if (i + 1 >= body.size() || body[i + 1] != '{')
          throw SyntaxError{esc, "invalid \\u escape"};
        size_t j = i + 2;
        uint32_t cp = 0;
        int digits = 0;
        while (j < body.size() && body[j] != '}') {
          int v = HexVal(body[j]);
          if (v < 0 || ++digits > 6) throw SyntaxError{esc, "invalid \\u escape"};
          cp = cp * 16 + v;
          ++j;
        }
        if (j >= body.size() || digits == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          throw SyntaxError{esc, "invalid \\u escape"};
        AppendUtf8(cp, tmp);
        emit(tmp, false);
        i = j;
        break;
      }
      default:
        throw SyntaxError{esc, std::string("invalid escape `\\") + e + "`"};
    }
  }
}

}  // namespace custody::policy::internal
