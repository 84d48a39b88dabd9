#include "crypto/rsa_private.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crypto/internal/openssl_util.h"

namespace custody::crypto {

struct RsaPrivateKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

RsaPrivateKey::RsaPrivateKey(std::shared_ptr<const Impl> impl, RsaPublicKey pub)
    : impl_(std::move(impl)), public_key_(std::move(pub)) {}

namespace {

std::vector<uint8_t> BnBytes(const BIGNUM* bn) {
  std::vector<uint8_t> out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

}  // namespace

Result<RsaPrivateKey> RsaPrivateKey::FromPkey(void* p) {
  auto impl = std::make_shared<Impl>();
  impl->pkey = static_cast<EVP_PKEY*>(p);  // owned from here on
  if (EVP_PKEY_get_base_id(impl->pkey) != EVP_PKEY_RSA)
    return InvalidArgumentError("not an RSA private key");
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  bool ok = EVP_PKEY_get_bn_param(impl->pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
            EVP_PKEY_get_bn_param(impl->pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
  std::vector<uint8_t> nb, eb;
  if (ok) {
    nb = BnBytes(n);
    eb = BnBytes(e);
  }
  BN_free(n);
  BN_free(e);
  ERR_clear_error();
  if (!ok) return InvalidArgumentError("not a usable RSA private key");
  // The public half's checks (modulus size, exponent) apply to the key pair too.
  ASSIGN_OR_RETURN(RsaPublicKey pub, RsaPublicKey::FromComponents(nb, eb));
  return RsaPrivateKey(std::move(impl), std::move(pub));
}

Result<RsaPrivateKey> RsaPrivateKey::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(EVP_PKEY * pkey, internal::ReadPrivateKeyPem(pem));
  return FromPkey(pkey);
}

Result<RsaPrivateKey> RsaPrivateKey::Generate(int bits) {
  EVP_PKEY* pkey = EVP_RSA_gen(static_cast<unsigned int>(bits));
  if (pkey == nullptr) return InternalError(internal::OpenSslError("RSA key generation failed"));
  return FromPkey(pkey);
}

Result<std::vector<uint8_t>> RsaPrivateKey::SignRs256(std::span<const uint8_t> message) const {
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, impl_->pkey) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
    return InternalError(internal::OpenSslError("RS256 signing failed"));
  }
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1)
    return InternalError(internal::OpenSslError("RS256 signing failed"));
  sig.resize(len);
  return sig;
}

Result<std::string> RsaPrivateKey::ToPkcs8Pem() const {
  return internal::WritePkcs8Pem(impl_->pkey);
}

}  // namespace custody::crypto
