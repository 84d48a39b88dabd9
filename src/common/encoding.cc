#include "common/encoding.h"

#include <array>

namespace custody {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Encode64(std::span<const uint8_t> data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

// Strict decoder: padded form requires length % 4 == 0 and correct '=' count; unpadded form
// forbids '='. Non-zero trailing bits are rejected so each byte string has one encoding.
Result<std::vector<uint8_t>> Decode64(std::string_view text, const char* alphabet, bool padded,
                                      const char* what) {
  std::array<int, 256> table;
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(alphabet[i])] = i;

  size_t len = text.size();
  if (padded) {
    if (len % 4 != 0)
      return InvalidArgumentError(std::string(what) + ": length not a multiple of 4");
    if (len > 0 && text[len - 1] == '=') --len;
    if (len > 0 && text[len - 1] == '=') --len;
  }
  if (len % 4 == 1) return InvalidArgumentError(std::string(what) + ": truncated input");
  std::vector<uint8_t> out;
  out.reserve(len * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; ++i) {
    int v = table[static_cast<uint8_t>(text[i])];
    if (v < 0) {
      return InvalidArgumentError(std::string(what) + ": invalid character at offset " +
                                  std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return InvalidArgumentError(std::string(what) + ": non-canonical trailing bits");
  }
  return out;
}

}  // namespace

std::string HexEncode(std::span<const uint8_t> data) {
  std::string out;
  out.resize(data.size() * 2);
  for (size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xf];
  }
  return out;
}

Result<std::vector<uint8_t>> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgumentError("hex: odd length");
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("hex: invalid character at offset " + std::to_string(2 * i));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::string Base64Encode(std::span<const uint8_t> data) { return Encode64(data, kB64, true); }
Result<std::vector<uint8_t>> Base64Decode(std::string_view text) {
  return Decode64(text, kB64, true, "base64");
}
std::string Base64UrlEncode(std::span<const uint8_t> data) {
  return Encode64(data, kB64Url, false);
}
Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text) {
  return Decode64(text, kB64Url, false, "base64url");
}

}  // namespace custody
