// Tokenizer shared by the policy and schema parsers. Internal to the policy module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ast.h"

namespace custody::policy::internal {

enum class Tok : uint8_t { kIdent, kInt, kStr, kPunct, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;  // identifier, punctuation, digits, or string body without quotes
  size_t offset = 0;
};

// Thrown only inside the policy and schema parsers, which convert it to an error value.
struct SyntaxError {
  size_t offset;
  std::string message;
};

bool IsIdentStart(char c);
bool IsIdentChar(char c);
std::string Describe(const Token& t);
// Splits `src` into tokens; `//` comments and whitespace are skipped. Throws SyntaxError.
std::vector<Token> Lex(std::string_view src);
// Unescapes a string body. With `pattern`, `\*` is a literal star and a bare `*` a wildcard.
// Throws SyntaxError on an invalid escape.
void Unescape(std::string_view body, size_t offset, std::string* out,
              std::vector<PatternElem>* pattern);

}  // namespace custody::policy::internal
