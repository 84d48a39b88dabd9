// AdminTokenStore: durable records of the operator API's bearer tokens. Only a SHA-256 of each
// token is stored, never the token. Records are looked up by their public id (part of the token
// text, safe to log), then the hash is compared in constant time by the caller (api/auth.h).
//
// Implementations are thread-safe and may be shared by several processes (the server reads
// while `custody admin token revoke` writes), so a revocation takes effect at the next request.
// Backends: SqliteAdminTokenStore (store/sqlite/), MemoryAdminTokenStore (store/memory/), both
// checked by store/testing/admin_token_store_conformance.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/sha256.h"

namespace custody::store {

struct AdminTokenRecord {
  std::string id;               // 16 lowercase hex characters
  crypto::Sha256Digest hash{};  // SHA-256 of the whole token text
  std::string role;             // "admin" or "reader"
  std::string label;            // operator's note, may be empty
  int64_t created_unix_ms = 0;
  std::optional<int64_t> revoked_unix_ms;
};

class AdminTokenStore {
 public:
  virtual ~AdminTokenStore() = default;
  // AlreadyExists if the id is taken.
  virtual Status Insert(const AdminTokenRecord& record) = 0;
  virtual Result<std::optional<AdminTokenRecord>> Get(std::string_view id) = 0;
  // All records, oldest first.
  virtual Result<std::vector<AdminTokenRecord>> List() = 0;
  // NotFound for an unknown id; revoking twice keeps the first time.
  virtual Status Revoke(std::string_view id, int64_t at_unix_ms) = 0;
  // For readiness checks (/readyz): OK if a write would succeed now; changes nothing.
  virtual Status CheckWritable() = 0;
};

}  // namespace custody::store
