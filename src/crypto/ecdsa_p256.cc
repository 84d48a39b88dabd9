#include "crypto/ecdsa_p256.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstring>

#include "crypto/internal/openssl_util.h"

namespace custody::crypto {
namespace {

struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// Reads the uncompressed public point 0x04 || X || Y of an EC key.
bool PublicPoint(EVP_PKEY* pkey, std::array<uint8_t, 32>& x, std::array<uint8_t, 32>& y) {
  uint8_t buf[65];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len) != 1 ||
      len != 65 || buf[0] != 0x04) {
    return false;
  }
  std::memcpy(x.data(), buf + 1, 32);
  std::memcpy(y.data(), buf + 33, 32);
  return true;
}

bool IsP256(EVP_PKEY* pkey) {
  char group[64];
  size_t len = 0;
  return EVP_PKEY_get_id(pkey) == EVP_PKEY_EC &&
         EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &len) == 1 &&
         std::string_view(group, len) == "prime256v1";
}

}  // namespace

struct EcdsaP256PublicKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

struct EcdsaP256PrivateKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

EcdsaP256PublicKey::EcdsaP256PublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  PublicPoint(impl_->pkey, x_, y_);
}
EcdsaP256PublicKey::EcdsaP256PublicKey(const EcdsaP256PublicKey&) = default;
EcdsaP256PublicKey& EcdsaP256PublicKey::operator=(const EcdsaP256PublicKey&) = default;
EcdsaP256PublicKey::EcdsaP256PublicKey(EcdsaP256PublicKey&&) noexcept = default;
EcdsaP256PublicKey& EcdsaP256PublicKey::operator=(EcdsaP256PublicKey&&) noexcept = default;
EcdsaP256PublicKey::~EcdsaP256PublicKey() = default;

Result<EcdsaP256PublicKey> EcdsaP256PublicKey::FromCoordinates(std::span<const uint8_t> x,
                                                               std::span<const uint8_t> y) {
  if (x.size() != 32 || y.size() != 32) {
    return InvalidArgumentError("P-256 coordinates must be 32 bytes each");
  }
  uint8_t point[65];
  point[0] = 0x04;
  std::memcpy(point + 1, x.data(), 32);
  std::memcpy(point + 33, y.data(), 32);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = ctx && params && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  if (ok) {
    EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    ok = check && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
  }
  if (!ok) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError(internal::OpenSslError("not a valid P-256 public key"));
  }
  auto impl = std::make_shared<Impl>();
  impl->pkey = pkey;
  return EcdsaP256PublicKey(std::move(impl));
}

bool EcdsaP256PublicKey::Verify(std::span<const uint8_t> message,
                                std::span<const uint8_t> signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ERR_clear_error();
    return false;
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) {
    ERR_clear_error();
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->pkey) == 1 &&
            EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len), message.data(),
                             message.size()) == 1;
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

EcdsaP256PrivateKey::EcdsaP256PrivateKey(std::unique_ptr<Impl> impl, EcdsaP256PublicKey pub)
    : impl_(std::move(impl)), public_key_(std::move(pub)) {}
EcdsaP256PrivateKey::EcdsaP256PrivateKey(EcdsaP256PrivateKey&&) noexcept = default;
EcdsaP256PrivateKey& EcdsaP256PrivateKey::operator=(EcdsaP256PrivateKey&&) noexcept = default;
EcdsaP256PrivateKey::~EcdsaP256PrivateKey() = default;

Result<EcdsaP256PrivateKey> EcdsaP256PrivateKey::FromPkey(void* p) {
  EVP_PKEY* pkey = static_cast<EVP_PKEY*>(p);
  if (!IsP256(pkey)) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError("private key is not a P-256 EC key");
  }
  std::array<uint8_t, 32> x{}, y{};
  if (!PublicPoint(pkey, x, y)) {
    EVP_PKEY_free(pkey);
    return InternalError(internal::OpenSslError("cannot read the P-256 public point"));
  }
  ASSIGN_OR_RETURN(EcdsaP256PublicKey pub, EcdsaP256PublicKey::FromCoordinates(x, y));
  auto impl = std::make_unique<Impl>();
  impl->pkey = pkey;
  return EcdsaP256PrivateKey(std::move(impl), std::move(pub));
}

Result<EcdsaP256PrivateKey> EcdsaP256PrivateKey::Generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (pkey == nullptr) return InternalError(internal::OpenSslError("P-256 key generation failed"));
  return FromPkey(pkey);
}

Result<EcdsaP256PrivateKey> EcdsaP256PrivateKey::FromPkcs8Pem(std::string_view pem) {
  ASSIGN_OR_RETURN(EVP_PKEY * pkey, internal::ReadPrivateKeyPem(pem));
  return FromPkey(pkey);
}

Result<EcdsaP256PrivateKey> EcdsaP256PrivateKey::FromScalar(std::span<const uint8_t> d) {
  if (d.size() != 32) return InvalidArgumentError("P-256 private scalar must be 32 bytes");
  // Derive the public point from d, then import both.
  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  BIGNUM* bn = BN_bin2bn(d.data(), 32, nullptr);
  EC_POINT* pub = group ? EC_POINT_new(group) : nullptr;
  uint8_t point[65];
  bool ok = group && bn && pub && !BN_is_zero(bn) && BN_cmp(bn, EC_GROUP_get0_order(group)) < 0 &&
            EC_POINT_mul(group, pub, bn, nullptr, nullptr, nullptr) == 1 &&
            EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point),
                               nullptr) == sizeof(point);
  EC_POINT_free(pub);
  EC_GROUP_free(group);
  EVP_PKEY* pkey = nullptr;
  if (ok) {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn);
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    ok = ctx && params && EVP_PKEY_fromdata_init(ctx) == 1 &&
         EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
  }
  BN_clear_free(bn);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError(internal::OpenSslError("not a valid P-256 private scalar"));
  }
  return FromPkey(pkey);
}

Result<EcdsaP256Signature> EcdsaP256PrivateKey::Sign(std::span<const uint8_t> message) const {
  std::unique_ptr<EVP_MD_CTX, internal::MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->pkey) != 1) {
    return InternalError(internal::OpenSslError("ES256 sign init failed"));
  }
  unsigned char der[80];
  size_t der_len = sizeof(der);
  if (EVP_DigestSign(ctx.get(), der, &der_len, message.data(), message.size()) != 1) {
    return InternalError(internal::OpenSslError("ES256 sign failed"));
  }
  const unsigned char* p = der;
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return InternalError(internal::OpenSslError("ES256 signature decode failed"));
  EcdsaP256Signature out{};
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32) != 32) {
    return InternalError("ES256 signature component too large");
  }
  return out;
}

Result<std::string> EcdsaP256PrivateKey::ToPkcs8Pem() const {
  return internal::WritePkcs8Pem(impl_->pkey);
}

}  // namespace custody::crypto
