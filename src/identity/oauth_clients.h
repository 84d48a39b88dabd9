// OAuth clients of Custody's authorization endpoint (identity/authorization_server.h): who a
// client_id is, where it may be sent back to, and which registered agent it acts as.
//
// ClientDirectory is the one lookup the authorization server uses, so that Client ID Metadata
// Documents (identity/client_metadata.h) and Dynamic Client Registration can be added as other
// directories later. Today: StaticClientDirectory, the clients an operator pre-registers in the
// configuration ([oauth.clients."<client_id>"]). They are public clients
// (token_endpoint_auth_method "none"): PKCE S256 binds the code to the client that asked for it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"

namespace custody::identity {

struct OAuthClient {
  std::string client_id;
  std::string name;                        // shown on the consent page; default: client_id
  std::vector<std::string> redirect_uris;  // matched exactly (no patterns, no prefixes)
  std::string agent;                       // the registered agent the client acts as
  std::string logo_uri{};  // a metadata document's logo_uri: shown on the consent page via Custody
  std::string client_uri{};  // a metadata document's client_uri: named on the consent page (text)
  // Admitted by oauth.dev_unknown_clients, not registered: its agent is a dev agent Custody
  // registers for it with the signing-in person as owner; loopback redirect URIs only.
  bool dev = false;
};

class ClientDirectory {
 public:
  virtual ~ClientDirectory() = default;
  // NotFound for a client_id the directory does not know; another code when it cannot tell.
  virtual Result<OAuthClient> Find(const std::string& client_id) = 0;
};

class StaticClientDirectory final : public ClientDirectory {
 public:
  // InvalidArgument for a client without agent, or without redirect URIs unless its client_id
  // is a URL (a Client ID Metadata Document's redirect URIs are then used, see
  // MetadataDocumentClientDirectory), or a redirect URI that is not an absolute https URL or a
  // loopback http URL (RFC 8252 §7.3), or has a fragment.
  static Result<StaticClientDirectory> Create(std::vector<OAuthClient> clients);
  Result<OAuthClient> Find(const std::string& client_id) override;
  const std::map<std::string, OAuthClient>& clients() const { return clients_; }

 private:
  std::map<std::string, OAuthClient> clients_;
};

// The first directory that knows a client_id answers (NotFound from all: NotFound).
class FirstFoundClientDirectory final : public ClientDirectory {
 public:
  explicit FirstFoundClientDirectory(std::vector<ClientDirectory*> directories)
      : directories_(std::move(directories)) {}
  Result<OAuthClient> Find(const std::string& client_id) override;

 private:
  std::vector<ClientDirectory*> directories_;
};

// RFC 7591 Dynamic Client Registration of public clients (token_endpoint_auth_method "none"):
// redirect_uris (required, each checked as ValidateRedirectUri), client_name, grant_types within
// authorization_code and refresh_token, response_types within code. Registered clients have no
// agent, so the authorization server admits them only with oauth.dev_unknown_clients. Kept in
// memory (at most max_clients, the oldest forgotten first; a restart forgets them all and the
// client registers again). Thread-safe.
class DynamicClientRegistry final : public ClientDirectory {
 public:
  struct Registered {
    OAuthClient client;
    int64_t issued_at = 0;
  };
  // An RFC 7591 §3.2.2 error: "invalid_redirect_uri" or "invalid_client_metadata".
  struct Error {
    std::string error, description;
  };
  DynamicClientRegistry(Random& random, size_t max_clients = 10000)
      : random_(random), max_clients_(max_clients) {}
  // `metadata_json`: the registration request's body. On success the client_id is
  // "dcr_<32 random bytes, base64url>".
  Result<Registered> Register(const std::string& metadata_json, int64_t now, Error* error)
      EXCLUDES(mu_);
  Result<OAuthClient> Find(const std::string& client_id) override EXCLUDES(mu_);

 private:
  Random& random_;
  const size_t max_clients_;
  Mutex mu_;
  std::map<std::string, OAuthClient> clients_ GUARDED_BY(mu_);
  std::deque<std::string> order_ GUARDED_BY(mu_);  // registration order, for the bound
};

class ClientMetadataFetcher;  // identity/client_metadata.h

// Client ID Metadata Documents in front of the registered clients. A registered client with
// redirect URIs is answered as registered. A client_id that is a URL (https, or loopback http
// when the fetcher allows it) is fetched: its document gives the redirect URIs and the name; its
// agent is that of its registration ([oauth.clients."<url>"] with agent and no redirect_uris),
// else none (the authorization server then admits it only with oauth.dev_unknown_clients).
// A document refused is InvalidArgument, one that cannot be fetched Unavailable (the fetcher's
// messages, safe to show). Only public clients (token_endpoint_auth_method "none").
class MetadataDocumentClientDirectory final : public ClientDirectory {
 public:
  MetadataDocumentClientDirectory(ClientDirectory& registered, ClientMetadataFetcher& fetcher)
      : registered_(registered), fetcher_(fetcher) {}
  Result<OAuthClient> Find(const std::string& client_id) override;

 private:
  ClientDirectory& registered_;
  ClientMetadataFetcher& fetcher_;
};

// A redirect URI a client may register: https://…, or http:// on a loopback host (127.0.0.1,
// [::1], localhost) for native apps (RFC 8252), or a private-use scheme ("com.example.app:/cb");
// never a fragment. OK or InvalidArgument saying why.
Status ValidateRedirectUri(std::string_view uri);
// http://127.0.0.1…, http://[::1]…, http://localhost…: the only redirect URIs an unknown client
// admitted in development may use.
bool IsLoopbackHttpUri(std::string_view uri);
// A client_id is 1..256 printable ASCII characters without spaces.
Status ValidateClientId(std::string_view client_id);

}  // namespace custody::identity
