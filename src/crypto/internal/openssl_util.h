// Helpers shared by the crypto module's OpenSSL adapters. Private to src/crypto.
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::crypto::internal {

// `what`, plus OpenSSL's first queued error if any; clears the error queue either way.
inline std::string OpenSslError(std::string_view what) {
  std::string m(what);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    m += ": ";
    m += buf;
  }
  ERR_clear_error();
  return m;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// PKCS#8 PEM text of a private key.
Result<std::string> WritePkcs8Pem(EVP_PKEY* pkey);
// Parses PEM private-key text; the caller owns the returned key (EVP_PKEY_free).
Result<EVP_PKEY*> ReadPrivateKeyPem(std::string_view pem);

}  // namespace custody::crypto::internal
