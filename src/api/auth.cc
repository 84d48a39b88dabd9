#include "api/auth.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include "common/encoding.h"
#include "crypto/sha256.h"

namespace custody::api {

namespace {
constexpr std::string_view kPrefix = "cst_";
constexpr size_t kIdHex = 16;
constexpr size_t kSecretChars = 43;  // base64url of 32 bytes, unpadded
}  // namespace

bool IsKnownRole(std::string_view role) {
  return role == kRoleAdmin || role == kRoleReader || role == kRoleApprover || role == kRoleIngest;
}

Result<std::string> TokenId(std::string_view token) {
  if (token.size() != kPrefix.size() + kIdHex + 1 + kSecretChars || !token.starts_with(kPrefix) ||
      token[kPrefix.size() + kIdHex] != '_') {
    return InvalidArgumentError("malformed token");
  }
  std::string_view id = token.substr(kPrefix.size(), kIdHex);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return InvalidArgumentError("malformed token");
    }
  }
  return std::string(id);
}

Result<IssuedToken> IssueAdminToken(store::AdminTokenStore& store, std::string_view role,
                                    std::string_view label, const Clock& clock, Random& random) {
  if (!IsKnownRole(role)) {
    return InvalidArgumentError("unknown role \"" + std::string(role) +
                                "\" (expected admin, reader, approver or ingest)");
  }
  if (role == kRoleApprover &&
      (label.empty() || label.size() > 256 || !std::all_of(label.begin(), label.end(), [](char c) {
         return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '"' && c != '\\';
       }))) {
    return InvalidArgumentError(
        "an approver token's label is the person's name: 1-256 printable characters, no quotes");
  }
  std::array<uint8_t, 8> id_bytes;
  std::array<uint8_t, 32> secret;
  random.Fill(id_bytes);
  random.Fill(secret);
  IssuedToken t;
  t.id = HexEncode(id_bytes);
  t.token = std::string(kPrefix) + t.id + "_" + Base64UrlEncode(secret);
  t.role = std::string(role);
  store::AdminTokenRecord rec;
  rec.id = t.id;
  rec.hash = crypto::Sha256(t.token);
  rec.role = t.role;
  rec.label = std::string(label);
  rec.created_unix_ms = UnixMillis(clock.Now());
  RETURN_IF_ERROR(store.Insert(rec));
  return t;
}

Result<http::Principal> TokenAuthenticator::Authenticate(std::string_view bearer_token) {
  while (!bearer_token.empty() && bearer_token.front() == ' ') bearer_token.remove_prefix(1);
  while (!bearer_token.empty() && bearer_token.back() == ' ') bearer_token.remove_suffix(1);
  Result<std::string> id = TokenId(bearer_token);
  if (!id.ok()) return UnauthenticatedError("invalid token");
  Result<std::optional<store::AdminTokenRecord>> rec = store_.Get(*id);
  if (!rec.ok()) return rec.status();  // storage trouble is not the caller's fault: 503
  crypto::Sha256Digest presented = crypto::Sha256(bearer_token);
  // Compare even when the id is unknown, so both paths cost the same.
  crypto::Sha256Digest expected{};
  if (rec->has_value()) expected = (*rec)->hash;
  bool match = CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
  if (!rec->has_value() || !match) return UnauthenticatedError("invalid token");
  if ((*rec)->revoked_unix_ms) return UnauthenticatedError("token revoked");
  return http::Principal{(*rec)->id, (*rec)->role};
}

}  // namespace custody::api
