#include "crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace custody::crypto {
namespace {

// The SHA-256 implementation is fetched once; EVP_MD objects are immutable and thread-safe.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) std::abort();  // OpenSSL without SHA-256 cannot run Custody at all.
    return m;
  }();
  return md;
}

}  // namespace

struct Sha256Hasher::Ctx {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256Hasher::Sha256Hasher() : ctx_(std::make_unique<Ctx>()) {
  ctx_->ctx = EVP_MD_CTX_new();
  if (ctx_->ctx == nullptr || EVP_DigestInit_ex2(ctx_->ctx, Sha256Md(), nullptr) != 1) std::abort();
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_->ctx); }

Sha256Hasher& Sha256Hasher::Update(std::span<const uint8_t> data) {
  EVP_DigestUpdate(ctx_->ctx, data.data(), data.size());
  return *this;
}

Sha256Hasher& Sha256Hasher::Update(std::string_view data) {
  EVP_DigestUpdate(ctx_->ctx, data.data(), data.size());
  return *this;
}

Sha256Hasher& Sha256Hasher::Update(uint8_t byte) {
  EVP_DigestUpdate(ctx_->ctx, &byte, 1);
  return *this;
}

Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->ctx, out.data(), &len);
  EVP_DigestInit_ex2(ctx_->ctx, Sha256Md(), nullptr);
  return out;
}

Sha256Digest Sha256(std::span<const uint8_t> data) {
  thread_local Sha256Hasher hasher;
  return hasher.Update(data).Finish();
}

Sha256Digest Sha256(std::string_view data) {
  thread_local Sha256Hasher hasher;
  return hasher.Update(data).Finish();
}

}  // namespace custody::crypto
