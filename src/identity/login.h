// People sign in at the company's OpenID Connect provider ([login]): Custody is a relying party
// that runs the authorization code flow with PKCE S256, state and nonce against it, and
// verifies the ID token (iss, aud, azp, exp, nonce, signature with the provider's JWKS, ES256 or
// RS256 only: crypto::kTrustedIssuerAlgorithms) before the person becomes the verified initiator
// of the sessions Custody's own authorization endpoint starts (identity/authorization_server.h).
//
// IdentityProvider is what the authorization server needs of the IdP; OidcLogin implements it
// over HTTP (http::BlockingHttpClient, TLS verified; plain http only for a loopback issuer).
// Its provider metadata (/.well-known/openid-configuration) and JWKS are fetched on first use
// and kept; an ID token signed with a kid not in the kept JWKS refetches it once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "crypto/rsa_private.h"

namespace custody::identity {

// The person an ID token vouches for.
struct SignedInPerson {
  std::string subject;  // sub
  std::string issuer;   // iss
  std::string name;     // optional claims, for the consent page
  std::string email;
  // The ID token's `groups` claim (an array of strings; what most IdPs send when asked for
  // groups): an approver's groups besides those of the published entities (docs/APPROVALS.md).
  // At most kMaxIdpGroups, each at most 256 bytes; a claim beyond that is refused.
  std::vector<std::string> groups;
};
inline constexpr size_t kMaxIdpGroups = 256;

class IdentityProvider {
 public:
  virtual ~IdentityProvider() = default;
  // The URL the browser is sent to. `state`, `nonce` and the PKCE `code_challenge` (S256) are
  // Custody's, fresh per sign-in.
  virtual Result<std::string> AuthorizationUrl(const std::string& state, const std::string& nonce,
                                               const std::string& code_challenge) = 0;
  // Redeems the provider's code (with the PKCE verifier) and verifies the ID token it answers
  // with, `nonce` included. Unauthenticated for a token that does not verify; Unavailable when
  // the provider cannot be reached. Messages never carry a token or secret.
  virtual Result<SignedInPerson> Redeem(const std::string& code, const std::string& code_verifier,
                                        const std::string& nonce) = 0;
  // The provider's issuer, which an RFC 9207 `iss` in its answer must equal ("": not checked).
  virtual std::string issuer() const { return ""; }
};

// The key of Custody's private_key_jwt client assertions to the IdP: EC P-256 (ES256, the
// default and Custody's own algorithm) or RSA (RS256, for providers that register only RSA keys
// for their clients). Immutable; thread-safe.
class ClientAssertionKey {
 public:
  explicit ClientAssertionKey(crypto::EcdsaP256PrivateKey ec);
  explicit ClientAssertionKey(crypto::RsaPrivateKey rsa);
  std::string_view alg() const { return ec_ ? "ES256" : "RS256"; }
  // RFC 7638 thumbprint of the public key (the default kid).
  std::string Thumbprint() const;
  // The compact JWS of `claims_json` under `header_json` (which must name alg()).
  Result<std::string> Sign(std::string_view header_json, std::string_view claims_json) const;

 private:
  std::shared_ptr<const crypto::EcdsaP256PrivateKey> ec_;
  std::shared_ptr<const crypto::RsaPrivateKey> rsa_;
};

struct OidcLoginOptions {
  std::string issuer;  // https://…; http:// only on a loopback host (development)
  std::string client_id;
  // Exactly one way to authenticate at the provider's token endpoint:
  std::string client_secret;  // sent with HTTP Basic (client_secret_basic), or
  // private_key_jwt (RFC 7523 §2.2, OIDC Core §9): a client assertion signed with this key
  // (ES256 or RS256), whose public half the provider holds. The provider's discovery metadata
  // must list private_key_jwt in token_endpoint_auth_methods_supported and, when it lists
  // token_endpoint_auth_signing_alg_values_supported, the key's algorithm.
  std::shared_ptr<const ClientAssertionKey> private_key;
  std::string private_key_kid;  // the assertion's header kid; empty: the key's RFC 7638 thumbprint
  std::string scopes = "openid email profile";
  std::string redirect_uri;  // Custody's callback: <identity.issuer>/oauth2/login/callback
  std::string ca_file;       // PEM trust anchors for https; empty: the system store
  std::chrono::milliseconds timeout{10000};
  int64_t leeway_s = 60;
};

// Checks the options: an issuer that is https, or http on a loopback host (then `*plain_http`
// is set, for the caller's start-up warning); a client_id; a redirect_uri; exactly one of
// client_secret and private_key.
Status ValidateOidcLoginOptions(const OidcLoginOptions& options, bool* plain_http);

class OidcLogin final : public IdentityProvider {
 public:
  OidcLogin(OidcLoginOptions options, const Clock& clock);
  ~OidcLogin() override;
  Result<std::string> AuthorizationUrl(const std::string& state, const std::string& nonce,
                                       const std::string& code_challenge) override;
  Result<SignedInPerson> Redeem(const std::string& code, const std::string& code_verifier,
                                const std::string& nonce) override;
  std::string issuer() const override { return options_.issuer; }
  // Fetches the provider's metadata and JWKS now (start-up) rather than at the first sign-in.
  // FailedPrecondition when the provider does not support the configured token endpoint
  // authentication (client_secret_basic or private_key_jwt); Unavailable when it cannot be
  // reached or its metadata is unusable.
  Status CheckProvider();

 private:
  struct Discovered;
  Result<std::shared_ptr<const Discovered>> Discover(bool refresh_keys) EXCLUDES(mu_);

  OidcLoginOptions options_;
  const Clock& clock_;
  SystemRandom random_;  // the client assertions' jti
  Mutex mu_;
  std::shared_ptr<const Discovered> discovered_ GUARDED_BY(mu_);
};

// Verifies an ID token's claims (the signature already verified): iss equals `issuer`, aud
// contains `client_id` (and azp, when present or aud has several values, equals it), exp not
// past and iat present (with `leeway_s`), nonce equals `nonce`, a non-empty sub.
Result<SignedInPerson> CheckIdTokenClaims(std::string_view payload_json, const std::string& issuer,
                                          const std::string& client_id, const std::string& nonce,
                                          int64_t now, int64_t leeway_s);

// Loads login.private_key_file: a PEM EC P-256 private key (PKCS#8; ES256) or RSA private key
// (PKCS#8 or PKCS#1, 2048-8192 bits; RS256). The file must be a regular file of mode 0600 or
// stricter (a key others can read is no proof of Custody). Errors name the file by its base
// name only.
Result<std::shared_ptr<const ClientAssertionKey>> LoadLoginPrivateKey(const std::string& path);

// A private_key_jwt client assertion (RFC 7523 §2.2, OIDC Core §9), ES256 or RS256 as the key
// is, with header `kid`:
// iss = sub = `client_id`, aud = `audience` (the provider's issuer identifier), a fresh random
// jti, iat = `now`, exp = `now` + 60 s. It is a credential: never log it.
Result<std::string> MakeClientAssertion(const std::string& client_id, const std::string& audience,
                                        const ClientAssertionKey& key, const std::string& kid,
                                        int64_t now, Random& random);
inline constexpr int64_t kClientAssertionLifetimeS = 60;

// PKCE (RFC 7636): the S256 challenge of a verifier, and the verifier syntax (43-128 characters
// of [A-Za-z0-9-._~]).
std::string PkceS256(std::string_view verifier);
bool IsPkceVerifier(std::string_view verifier);

// application/x-www-form-urlencoded encoding of one value.
std::string FormEncode(std::string_view value);

}  // namespace custody::identity
