#include "crypto/internal/openssl_util.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

namespace custody::crypto::internal {

Result<std::string> WritePkcs8Pem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return InternalError("out of memory");
  if (PEM_write_bio_PKCS8PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    return InternalError(OpenSslError("PEM encoding failed"));
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

Result<EVP_PKEY*> ReadPrivateKeyPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return InternalError("out of memory");
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) return InvalidArgumentError(OpenSslError("not a PKCS#8 PEM private key"));
  return pkey;
}

}  // namespace custody::crypto::internal
