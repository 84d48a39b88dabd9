#include "crypto/rsa.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <string>

#include "crypto/internal/openssl_util.h"

namespace custody::crypto {
namespace {

std::vector<uint8_t> StripLeadingZeros(std::span<const uint8_t> b) {
  size_t i = 0;
  while (i < b.size() && b[i] == 0) ++i;
  return {b.begin() + static_cast<std::ptrdiff_t>(i), b.end()};
}

int BitLength(const std::vector<uint8_t>& b) {  // b has no leading zeros
  if (b.empty()) return 0;
  int top = 0;
  for (uint8_t v = b[0]; v != 0; v >>= 1) ++top;
  return static_cast<int>((b.size() - 1) * 8) + top;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

}  // namespace

struct RsaPublicKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

RsaPublicKey::RsaPublicKey(std::shared_ptr<const Impl> impl, std::vector<uint8_t> n,
                           std::vector<uint8_t> e, int bits)
    : impl_(std::move(impl)), n_(std::move(n)), e_(std::move(e)), bits_(bits) {}

Result<RsaPublicKey> RsaPublicKey::FromComponents(std::span<const uint8_t> n_bytes,
                                                  std::span<const uint8_t> e_bytes) {
  std::vector<uint8_t> n = StripLeadingZeros(n_bytes);
  std::vector<uint8_t> e = StripLeadingZeros(e_bytes);
  int bits = BitLength(n);
  if (bits < kRsaMinModulusBits) {
    return InvalidArgumentError("RSA modulus of " + std::to_string(bits) +
                                " bits is too small (at least " +
                                std::to_string(kRsaMinModulusBits) + ")");
  }
  if (bits > kRsaMaxModulusBits) {
    return InvalidArgumentError("RSA modulus of " + std::to_string(bits) +
                                " bits is too large (at most " +
                                std::to_string(kRsaMaxModulusBits) + ")");
  }
  if ((n.back() & 1) == 0) return InvalidArgumentError("RSA modulus must be odd");
  if (e.empty() || e.size() > 8 || (e.back() & 1) == 0 || (e.size() == 1 && e[0] < 3)) {
    return InvalidArgumentError("RSA public exponent must be odd, at least 3 and at most 64 bits");
  }
  std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  bool pushed = bn_n && bn_e && bld &&
                OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
                OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1;
  OSSL_PARAM* params = pushed ? OSSL_PARAM_BLD_to_param(bld) : nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = ctx && params && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError(internal::OpenSslError("not a valid RSA public key"));
  }
  auto impl = std::make_shared<Impl>();
  impl->pkey = pkey;
  return RsaPublicKey(std::move(impl), std::move(n), std::move(e), bits);
}

bool RsaPublicKey::VerifyRs256(std::span<const uint8_t> message,
                               std::span<const uint8_t> signature) const {
  if (signature.size() != n_.size()) return false;
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, impl_->pkey) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
            EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace custody::crypto
