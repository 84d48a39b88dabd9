// Hex, base64 (RFC 4648 §4, padded) and base64url (RFC 4648 §5, unpadded) codecs.
// Decoders are strict: they reject characters outside the alphabet and bad padding.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace custody {

std::string HexEncode(std::span<const uint8_t> data);
inline std::string HexEncode(std::string_view data) {
  return HexEncode({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
}
Result<std::vector<uint8_t>> HexDecode(std::string_view hex);

std::string Base64Encode(std::span<const uint8_t> data);
inline std::string Base64Encode(std::string_view data) {
  return Base64Encode({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
}
Result<std::vector<uint8_t>> Base64Decode(std::string_view text);

std::string Base64UrlEncode(std::span<const uint8_t> data);
inline std::string Base64UrlEncode(std::string_view data) {
  return Base64UrlEncode({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
}
Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text);

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace custody
