#include "crypto/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <cstring>

#include "crypto/internal/openssl_util.h"

namespace custody::crypto {
// The key is held twice: as an OpenSSL key (PEM files, the public key) and in libsodium's form
// (seed || public key), which signs in about half the time of OpenSSL 3.0's EVP path (the
// ledger signs a checkpoint in every commit, on the path of every authorized call). Both follow
// RFC 8032, so the signatures are the same bytes.
struct Ed25519PrivateKey::Impl {
  EVP_PKEY* pkey = nullptr;
  bool has_sodium_key = false;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> sodium_key{};
  ~Impl() {
    EVP_PKEY_free(pkey);
    sodium_memzero(sodium_key.data(), sodium_key.size());
  }
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  size_t len = public_key_.size();
  EVP_PKEY_get_raw_public_key(impl_->pkey, public_key_.data(), &len);
  // Without libsodium (it failed to initialise) or on a mismatch, signing stays with OpenSSL.
  std::array<uint8_t, 32> seed{};
  size_t seed_len = seed.size();
  std::array<uint8_t, crypto_sign_PUBLICKEYBYTES> pk{};
  if (sodium_init() >= 0 &&
      EVP_PKEY_get_raw_private_key(impl_->pkey, seed.data(), &seed_len) == 1 &&
      seed_len == seed.size() &&
      crypto_sign_seed_keypair(pk.data(), impl_->sodium_key.data(), seed.data()) == 0 &&
      std::memcmp(pk.data(), public_key_.data(), pk.size()) == 0) {
    impl_->has_sodium_key = true;
  }
  sodium_memzero(seed.data(), seed.size());
}
Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

Result<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr)
    return InternalError(internal::OpenSslError("Ed25519 key generation failed"));
  auto impl = std::make_unique<Impl>();
  impl->pkey = pkey;
  return Ed25519PrivateKey(std::move(impl));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(std::span<const uint8_t> seed32) {
  if (seed32.size() != 32) return InvalidArgumentError("Ed25519 seed must be 32 bytes");
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed32.data(), seed32.size());
  if (pkey == nullptr) return InvalidArgumentError(internal::OpenSslError("invalid Ed25519 seed"));
  auto impl = std::make_unique<Impl>();
  impl->pkey = pkey;
  return Ed25519PrivateKey(std::move(impl));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::FromPkcs8Pem(std::string_view pem) {
  ASSIGN_OR_RETURN(EVP_PKEY * pkey, internal::ReadPrivateKeyPem(pem));
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError("private key is not an Ed25519 key");
  }
  auto impl = std::make_unique<Impl>();
  impl->pkey = pkey;
  return Ed25519PrivateKey(std::move(impl));
}

Result<Ed25519Signature> Ed25519PrivateKey::Sign(std::span<const uint8_t> message) const {
  if (impl_->has_sodium_key) {
    Ed25519Signature sig{};
    if (crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(),
                             impl_->sodium_key.data()) != 0) {
      return InternalError("Ed25519 sign failed (libsodium)");
    }
    return sig;
  }
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey) != 1) {
    return InternalError(internal::OpenSslError("Ed25519 sign init failed"));
  }
  Ed25519Signature sig{};
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 ||
      len != sig.size()) {
    return InternalError(internal::OpenSslError("Ed25519 sign failed"));
  }
  return sig;
}

Result<Ed25519Signature> Ed25519PrivateKey::Sign(std::string_view message) const {
  return Sign(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(message.data()), message.size()));
}

Result<std::string> Ed25519PrivateKey::ToPkcs8Pem() const {
  return internal::WritePkcs8Pem(impl_->pkey);
}

bool Ed25519Verify(const Ed25519PublicKey& public_key, std::span<const uint8_t> message,
                   std::span<const uint8_t> signature) {
  if (signature.size() != 64) return false;
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size());
  if (pkey == nullptr) {
    ERR_clear_error();
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return ok;
}

bool Ed25519Verify(const Ed25519PublicKey& public_key, std::string_view message,
                   std::span<const uint8_t> signature) {
  return Ed25519Verify(
      public_key,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(message.data()), message.size()),
      signature);
}

}  // namespace custody::crypto
