// SHA-256 through OpenSSL 3 EVP.
//
// Sha256Hasher is an incremental hasher that owns one EVP_MD_CTX; it is not thread-safe, but
// instances are independent. Sha256() is a one-shot helper that is safe to call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace custody::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  Sha256Hasher& Update(std::span<const uint8_t> data);
  Sha256Hasher& Update(std::string_view data);
  Sha256Hasher& Update(uint8_t byte);
  // Returns the digest and resets the hasher for reuse.
  Sha256Digest Finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

Sha256Digest Sha256(std::span<const uint8_t> data);
Sha256Digest Sha256(std::string_view data);

}  // namespace custody::crypto
