// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02, "CIMD"): an
// OAuth client whose client_id is an https URL publishes its metadata (redirect URIs, name,
// authentication method) at that URL, and the authorization server fetches it.
//
// ClientMetadataFetcher fetches and validates such documents with strict limits, and caches
// them by their HTTP caching headers within bounds. It resolves the host itself, refuses the
// fetch if any address is non-public (unless an option allows that class), and connects only to
// the addresses it checked (http::ClientOptions::connect_addresses), so a DNS answer that
// changes between the check and the connection (rebinding) cannot redirect it. Redirects are
// never followed (the draft forbids it); failures are never cached (the draft forbids that too).
//
// Every error's message is safe to hand to the client as an OAuth `invalid_client`
// error_description: it names the rule broken, never an address, a file or the document's text.
// Codes: InvalidArgument for a client_id or an answer that breaks a rule (not a URL, http, a
// non-200 status, a redirect, too large, not JSON, a field wrong); Unavailable when the document
// could not be fetched (unresolvable, unreachable, too slow, too many fetches in progress).
//
// Thread-safe. The fetcher runs its fetches on one thread of its own; the Clock and Logger must
// outlive it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/logger.h"
#include "common/status.h"
#include "http/http.h"

namespace custody::identity {

// A validated document: the fields Custody reads (RFC 7591 client metadata).
struct ClientMetadata {
  std::string client_id;                   // equals the URL it was fetched from, exactly
  std::vector<std::string> redirect_uris;  // at least one; each checked (see docs/IDENTITY.md)
  std::string token_endpoint_auth_method;  // "none" (also when absent) or "private_key_jwt"
  std::string jwks;                        // private_key_jwt: the "jwks" object as JSON text
  std::string jwks_uri;                    // private_key_jwt: or an https URL (exactly one)
  std::string client_name;                 // the optional strings are empty when absent
  std::string client_uri;
  std::string logo_uri;
  std::string scope;
  std::vector<std::string> grant_types;     // default {"authorization_code"}
  std::vector<std::string> response_types;  // default {"code"}
  TimePoint fetched_at;
  TimePoint expires_at;  // the end of its cache lifetime (== fetched_at when not cached)
};

struct ClientMetadataOptions {
  const Clock* clock = nullptr;          // required: fetch times and cache lifetimes
  Logger* logger = nullptr;              // optional: why a fetch failed, for operators (info level)
  size_t max_document_bytes = 5 * 1024;  // the draft's recommended limit
  size_t max_logo_bytes = 64 * 1024;     // a client's logo (FetchLogo)
  std::chrono::milliseconds timeout{5000};  // the whole fetch: DNS, connect, TLS, response
  // Development only: accept http:// client IDs whose host is loopback (localhost,
  // 127.0.0.0/8, [::1]), fetched from loopback addresses.
  bool allow_loopback_http = false;
  // Fetch from hosts that resolve to loopback (127.0.0.0/8, ::1), or to private addresses
  // (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). Link-local (169.254/16, fe80::/10,
  // cloud metadata services live there) and other special-use addresses (RFC 6890) are never
  // fetched from.
  bool allow_loopback_addresses = false;
  bool allow_private_addresses = false;
  // Cache lifetime: Cache-Control max-age (else Expires) bounded to [min, max]; no-store,
  // no-cache, max-age=0 or an Expires in the past: not cached at all; neither header: default.
  std::chrono::seconds min_cache_lifetime{60};
  std::chrono::seconds max_cache_lifetime{24 * 3600};
  std::chrono::seconds default_cache_lifetime{300};
  size_t max_cache_entries = 1024;  // least recently used goes first; 0: no cache
  size_t max_concurrent_fetches = 64;
  std::string ca_file;  // PEM trust anchors for https; empty: the system store
  // Resolves a host name to IP address literals instead of the system resolver (tests, or a
  // deployment with a name service of its own). Called on the fetcher's thread; the addresses
  // it returns are checked like DNS answers.
  std::function<Result<std::vector<std::string>>(const std::string& host)> resolve;
};

// What kind of address an IP literal is (RFC 6890 and the IANA special-purpose registries).
enum class AddressClass {
  kPublic,
  kLoopback,   // 127.0.0.0/8, ::1
  kPrivate,    // RFC 1918, 100.64.0.0/10 (shared), fc00::/7 (unique local)
  kLinkLocal,  // 169.254.0.0/16, fe80::/10
  kSpecial,    // everything else not globally reachable: unspecified, multicast, reserved,
               // documentation, benchmarking, 6to4, Teredo, IPv6 outside 2000::/3, ...
};
// IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::/96) addresses are classified by the IPv4
// address inside. InvalidArgument for anything but an IP literal.
Result<AddressClass> ClassifyAddress(std::string_view ip);
std::string_view AddressClassName(AddressClass c);  // "public", "loopback", "private", ...

// Whether `client_id` is meant as a Client Identifier URL (it starts with https:// or http://).
bool IsClientIdUrl(std::string_view client_id);
// The draft's rules for a Client Identifier URL (https, a host, a path, no userinfo, no
// fragment, no dot segments), with http only for a loopback host when allow_loopback_http.
Status ValidateClientIdUrl(std::string_view client_id, bool allow_loopback_http);

// Checks a fetched document's text against `client_id` (the URL it came from) and reads it.
// fetched_at/expires_at are left for the caller.
Result<ClientMetadata> ParseClientMetadataDocument(std::string_view client_id,
                                                   std::string_view body, bool allow_loopback_http);

// A client's logo: an image Custody serves itself (the consent page never links to the client's
// host). Only these types, each checked against its first bytes as well as the Content-Type, so
// nothing a browser would run as a page (SVG, HTML) is ever served as a logo.
struct ClientLogo {
  std::string content_type;  // image/png, image/jpeg, image/gif or image/webp
  std::string bytes;
};
// The logo's type when `content_type` (a Content-Type header) names one of those four and
// `bytes` begin as that format does; InvalidArgument otherwise.
Result<std::string> CheckLogoImage(std::string_view content_type, std::string_view bytes);

// How long a response with these headers may be cached at `now` (0: not at all).
std::chrono::seconds CacheLifetime(const http::Headers& headers, TimePoint now,
                                   const ClientMetadataOptions& options);

class ClientMetadataFetcher {
 public:
  using Callback = std::function<void(Result<ClientMetadata>)>;

  explicit ClientMetadataFetcher(ClientMetadataOptions options);
  // Stops the fetch thread; callbacks still waiting get Unavailable, on the destroying thread.
  ~ClientMetadataFetcher();
  ClientMetadataFetcher(const ClientMetadataFetcher&) = delete;
  ClientMetadataFetcher& operator=(const ClientMetadataFetcher&) = delete;

  // Calls `done` exactly once with the document of `client_id`: from the cache, or fetched.
  // A cache hit or a client_id refused outright calls `done` before FetchAsync returns, on the
  // caller's thread; a fetch calls it on the fetcher's thread (which `done` must not block for
  // long). Concurrent requests for one client_id share one fetch. For HTTP handlers.
  void FetchAsync(std::string client_id, Callback done);
  // FetchAsync, waiting for the answer. Never call it from a FetchAsync callback.
  Result<ClientMetadata> Fetch(std::string client_id);

  // Fetches a document's logo_uri under the same rules as a document (https, or loopback http
  // when allowed; every address checked; no redirects; the same timeout), at most
  // max_logo_bytes, and CheckLogoImage. Not cached. Waits for the answer: for the authorization
  // server's own threads, never a FetchAsync callback. Errors are for logs, not for clients.
  Result<ClientLogo> FetchLogo(std::string logo_uri);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::identity
