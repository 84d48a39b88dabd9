// For tests that serve TLS: a self-signed P-256 certificate and its key, written as PEM files,
// valid from a minute ago for an hour. Header-only (OpenSSL only), so any test binary can use it.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <string>

namespace custody::http::testing {

// `cn` is the subject's common name, `san` the subjectAltName in OpenSSL's syntax
// ("IP:127.0.0.1", "DNS:client.test"). False if any step failed.
inline bool WriteSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                       const std::string& cn, const std::string& san) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  if (pkey == nullptr) return false;
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, subject);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  bool ok = ext != nullptr && X509_add_ext(x, ext, -1) == 1 && X509_sign(x, pkey, EVP_sha256()) > 0;
  X509_EXTENSION_free(ext);
  if (ok) {
    FILE* cf = std::fopen(cert_path.c_str(), "w");
    FILE* kf = std::fopen(key_path.c_str(), "w");
    ok = cf != nullptr && kf != nullptr && PEM_write_X509(cf, x) == 1 &&
         PEM_write_PrivateKey(kf, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (cf != nullptr) std::fclose(cf);
    if (kf != nullptr) std::fclose(kf);
  }
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

}  // namespace custody::http::testing
