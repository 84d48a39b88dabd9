// AuthorizationServer: Custody as the OAuth 2.1 authorization server of MCP clients (the MCP
// authorization spec): GET /oauth2/authorize (authorization code, PKCE S256 only, exact
// redirect URI match, RFC 9207 iss, RFC 8707 resource), the person's sign-in at the company IdP
// (identity/login.h), a consent page, and the authorization_code and refresh_token grants of
// POST /oauth2/token. Every access token is the RFC 9068 session token an RFC 8693 exchange
// issues (TokenService::IssueSignedInSession): sub = the person (a verified initiator), act =
// a new instance of the client's agent; so the gateway, policy, containment and investigations
// treat it as any other session.
//
// HTTP-free: api/oauth_routes.cc turns requests into these calls and BrowserAnswers into
// responses. Sign-ins and consents in flight are held in memory by the node that started them,
// bounded per node, and stored beside it in the identity store (PutBrowserState, keyed by the
// SHA-256 of the IdP state or the consent page's request id), so the browser's next step may
// reach any node, which takes the entry once across all nodes (TakeBrowserState); authorization
// codes (single use, at most 60 s, keyed by their hash), refresh token families (hashes only) and
// consents are in the identity store, so the client's token request (server to server) may reach
// any node. A console sign-in (StartSignIn: its answer is code) stays on its node.
// Every step is a ledger event (events/identity_events.h: oauth.*); never a token, code,
// verifier or secret in an event, a log line or an error.
//
// The same sign-in serves approvers (docs/APPROVALS.md, "Approving in the browser"): an
// approval page starts it, the IdP's answer at the same callback opens an approver session (a
// random cookie, held in memory by the node that opened it, bounded per node, short-lived, and in
// the identity store by the cookie's SHA-256, so every node honours it and a sign-out at any node
// ends it everywhere) instead of the consent page, and the approval page's form is checked
// against that session's CSRF token.
//
// Thread-safe: the in-memory state is guarded by mu_; the store settles races between nodes.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"
#include "identity/login.h"
#include "identity/oauth_clients.h"
#include "identity/token_service.h"
#include "store/identity_store.h"

namespace custody::identity {

class ClientMetadataFetcher;  // identity/client_metadata.h
struct ClientLogo;

inline constexpr std::string_view kBrowserCookie = "custody_authz";
// The approver session's cookie (Path=/approvals): a random token; the server keeps its hash.
inline constexpr std::string_view kApproverCookie = "custody_approver";
// The client id an approver's oauth.sign_in event names: the sign-in is for the approval pages,
// not for an OAuth client.
inline constexpr std::string_view kApprovalPagesClient = "custody:approvals";

struct AuthorizationServerOptions {
  std::string issuer;    // RFC 9207 iss; the IdP callback is <issuer>/oauth2/login/callback
  std::string resource;  // the gateway's resource (its RFC 9728 metadata's `resource`)
  // Development: a client_id no directory knows is let in (loopback redirect URIs only), acting
  // as a dev agent Custody registers for it on first sign-in, owned by the signing-in person.
  bool dev_unknown_clients = false;
  ScopeSet dev_grants;  // the grants of those dev agents
  // The directory fetches Client ID Metadata Documents (advertised in the RFC 8414 metadata).
  bool client_id_metadata_documents = false;
  int64_t code_lifetime_s = 60;
  int64_t login_lifetime_s = 600;               // sign-in + consent must finish within this
  int64_t refresh_lifetime_s = 30 * 24 * 3600;  // a refresh token family's lifetime
  size_t max_in_flight = 10000;                 // sign-ins and consents a node holds (per node)
  // Of those, at most this many started from one source address (SourceAddress of the TCP
  // peer), so that one browser or host cannot take every slot and lock everyone else out; 0: no
  // bound per address (behind a reverse proxy every browser shares the proxy's address).
  size_t max_in_flight_per_source = 64;
  int64_t approver_session_lifetime_s = 900;  // approval.session_ttl_s
  size_t max_approver_sessions = 10000;       // approver sessions a node opened (per node)
  // Browser steps waiting for one of the server's threads (Post); past it they are refused
  // (503) rather than queued without end behind a slow IdP or metadata host.
  size_t max_queued_work = 1024;
  // token.refuse events of the two grants recorded one by one per minute; past it a flood of
  // bad requests is counted, and the next refusal recorded says how many were not
  // (TokenRefuse::unrecorded), so the ledger does not grow with the flood.
  int64_t refusal_events_per_minute = 600;
};

// A person signed in on the approval pages.
struct ApproverSession {
  SignedInPerson person;
  std::string csrf;  // the session's form token, put in the approval page's form
  int64_t expires_at = 0;
};

// GET /oauth2/authorize's query, as sent (nullopt: absent).
struct AuthorizeRequest {
  std::optional<std::string> response_type, client_id, redirect_uri, scope, state, code_challenge,
      code_challenge_method, resource;
  // Not from the query: the TCP peer as the HTTP server records it (http::Request::remote,
  // "ADDR:PORT"), for the bound per source address; "" (unknown): not bounded per address.
  std::string remote;
};

// What the browser gets: a redirect (`location` set, 302/303), or a small HTML page.
struct BrowserAnswer {
  int status = 302;
  std::string location;
  std::string html;
  std::vector<std::string> set_cookies;  // Set-Cookie values
  // For a page: the OAuth error it shows (tests and logs), "" for the consent page.
  std::string error;
};

// POST /oauth2/token's fields for the two grants handled here.
struct CodeTokenRequest {
  std::string grant_type;  // "authorization_code" or "refresh_token"
  std::string client_id, code, redirect_uri, code_verifier, resource, refresh_token, scope;
  bool client_authenticated_otherwise = false;  // a client_secret/assertion was sent: refused
};

struct CodeTokenAnswer {
  IssuedToken token;
  std::string refresh_token;
  std::string family_id;  // not sent: the refresh token family's id (events, tests)
};

class AuthorizationServer {
 public:
  // `login` may be null: then /oauth2/authorize answers that no login provider is configured.
  // Everything passed must outlive the server.
  AuthorizationServer(TokenService& tokens, store::IdentityStore& store, ClientDirectory& clients,
                      IdentityProvider* login, const Clock& clock, Random& random,
                      ErrorReporter& errors, IdentityEventSink sink,
                      AuthorizationServerOptions options);
  // Stop().
  ~AuthorizationServer();

  // Runs `work` on one of the server's own threads: the browser-facing steps call other hosts
  // (the IdP's metadata and token endpoint, a client's metadata document), so the HTTP handlers
  // hand them here and no server worker waits on another host. After Stop(), `work` runs on
  // the calling thread. False (and `work` dropped, not run) when max_queued_work steps are
  // already waiting: the caller answers 503 itself.
  [[nodiscard]] bool Post(std::function<void()> work) EXCLUDES(work_mu_);
  // The page a browser gets when Post refused its step.
  static BrowserAnswer BusyPage();
  // Finishes the work queued and in progress, then joins the threads. custody serve calls it
  // after the HTTP server has stopped and before the ledger closes (the work records events).
  void Stop() EXCLUDES(work_mu_);

  // GET /oauth2/authorize. Until the client and its redirect URI are validated, errors are an
  // HTML page (never a redirect); after, a redirect to the client with the RFC 6749 §4.1.2.1
  // error, its state and iss. On success: a redirect to the IdP, with the browser cookie.
  BrowserAnswer Authorize(const AuthorizeRequest& request, const std::string& cookie_header);
  // GET /oauth2/login/callback: the IdP sends the browser back. An `iss` (RFC 9207) other than
  // the IdP's is refused (a mix-up: access_denied, the code never redeemed). Answers the consent
  // page, or (consent remembered) the redirect to the client with code, state and iss.
  BrowserAnswer LoginCallback(const std::optional<std::string>& state,
                              const std::optional<std::string>& code,
                              const std::optional<std::string>& error,
                              const std::string& cookie_header,
                              const std::optional<std::string>& iss = std::nullopt);
  // POST /oauth2/consent: `decision` "allow" or "deny", with the page's request id and CSRF
  // token, from the browser that started the request.
  BrowserAnswer Consent(const std::string& request_id, const std::string& csrf,
                        const std::string& decision, const std::string& cookie_header);

  // GET /approvals/{id}/sign-in: an approver's sign-in at the IdP (PKCE S256, state, nonce, the
  // browser cookie, as for a client). Its answer at LoginCallback opens an approver session
  // (the kApproverCookie cookie: HttpOnly, Secure, SameSite=Lax, Path=/approvals) and sends the
  // browser back to <issuer>/approvals/<approval_id>; errors are pages. `approval_id` is only
  // checked for its syntax here: the route knows the approvals.
  // `remote`: the TCP peer ("ADDR:PORT", http::Request::remote), as AuthorizeRequest::remote.
  BrowserAnswer StartApproverSignIn(const std::string& approval_id,
                                    const std::string& cookie_header,
                                    const std::string& remote = "") EXCLUDES(mu_);
  // The approver session of the browser that sent `cookie_header`, if it has a live one (opened
  // at any node: the store is read on every call, unless this node alone holds it).
  std::optional<ApproverSession> FindApproverSession(const std::string& cookie_header)
      EXCLUDES(mu_);
  // The person behind an approval page's form: Unauthenticated without a live approver session,
  // PermissionDenied when `csrf` is not that session's token.
  Result<SignedInPerson> ApproverOfForm(const std::string& cookie_header, const std::string& csrf)
      EXCLUDES(mu_);
  // POST /approvals/{id}/sign-out: ends the browser's approver session (dropped here, so the
  // cookie is worth nothing even if the browser kept it) and records oauth.sign_out naming the
  // person, their IdP and kApprovalPagesClient (never the cookie). The session is dropped even
  // when the event cannot be recorded (reported, still OK): ending authority never waits for the
  // ledger. Unauthenticated when there is no live session (nothing to end; an expiry is not
  // recorded), PermissionDenied when `csrf` is not its token (a forged sign-out; the session
  // stays). The route clears the cookie with ClearedApproverCookie() either way but the second.
  Status SignOutApprover(const std::string& cookie_header, const std::string& csrf) EXCLUDES(mu_);
  static std::string ClearedApproverCookie();

  // Another page of Custody's own signs a person in the same way (the console,
  // api/console_routes.cc): PKCE S256, state, nonce and the browser cookie; the IdP's answer at
  // LoginCallback is redeemed and its ID token verified as an approver's, the sign-in recorded
  // (oauth.sign_in naming `client`), then `signed_in` answers the browser (on the server's
  // thread). Errors before that are pages.
  using SignedInAnswer = std::function<BrowserAnswer(SignedInPerson)>;
  BrowserAnswer StartSignIn(const std::string& client, SignedInAnswer signed_in,
                            const std::string& cookie_header, const std::string& remote = "")
      EXCLUDES(mu_);

  // The source address a bound per address counts: the address of a TCP peer given as
  // "ADDR:PORT" (the port dropped, so one host's connections count together); "" for "".
  static std::string SourceAddress(std::string_view remote);

  // What is held in memory now (tests, the flood bounds): sign-ins and consents in flight,
  // approver sessions, steps queued for the server's threads.
  struct Held {
    size_t in_flight = 0, approver_sessions = 0, queued_work = 0;
  };
  Held held() EXCLUDES(mu_, work_mu_);
  // Sign-ins and consents in flight started from `remote`'s source address (SourceAddress).
  size_t held_from(std::string_view remote) EXCLUDES(mu_);

  // POST /oauth2/token, grant_type authorization_code or refresh_token.
  OAuthResult<CodeTokenAnswer> Token(const CodeTokenRequest& request);

  // Consents (admin API). Revoking records an oauth.consent event ("revoked") naming `by`.
  Result<std::vector<identity::Consent>> ListConsents() { return store_.ListConsents(); }
  Status RevokeConsent(const std::string& initiator_issuer, const std::string& initiator,
                       const std::string& client_id, const std::string& by);

  bool client_id_metadata_documents() const { return options_.client_id_metadata_documents; }

  // RFC 7591 Dynamic Client Registration (POST /oauth2/register), when `registry` is set (it
  // must also be one of the directories the server looks clients up in, and outlive it).
  void EnableDynamicRegistration(DynamicClientRegistry* registry) { registry_ = registry; }
  bool dynamic_registration() const { return registry_ != nullptr; }
  // 201 with the client's metadata (RFC 7591 §3.2.1), or 400 with its error (§3.2.2), 503 when
  // the registration cannot be recorded; `json` is the body.
  struct Registration {
    int status = 201;
    std::string json;
  };
  Registration RegisterClient(const std::string& body);

  // Client logos (a metadata document's logo_uri) on the consent page, fetched with `fetcher`'s
  // rules and limits (ClientMetadataFetcher::FetchLogo) and served by Custody itself at
  // /oauth2/logo/<id>, never linked to the client's host. Null (the default): no logos.
  void EnableClientLogos(ClientMetadataFetcher* fetcher) { logo_fetcher_ = fetcher; }
  // The logo a consent page shows as /oauth2/logo/<id> (the hex SHA-256 of its bytes), while
  // that page may be answered; null when unknown or expired.
  std::shared_ptr<const ClientLogo> Logo(const std::string& id) EXCLUDES(mu_);

  // The dev agent name an unknown client gets (oauth-dev-<12 hex of SHA-256(client_id)>).
  static std::string DevAgentName(const std::string& client_id);

 private:
  struct Pending;  // an authorization request in flight (sign-in, then consent)

  int64_t Now() const;
  std::string RandomToken(size_t bytes);
  // `p` as the identity store keeps it for the other nodes (PutBrowserState), and back
  // (null for a body that cannot be read).
  static std::string PendingJson(const Pending& p);
  static std::shared_ptr<Pending> PendingOf(const std::string& body);
  // Stores `p` under (kind, SHA-256 of `secret`) for the other nodes; p->shared tells whether
  // it is there. Called before the browser learns `secret`, so nothing else reads `p` yet.
  void Share(std::string_view kind, const std::string& secret, Pending& p);
  // The entry of `secret` taken for this step, once across all nodes: `local` (held here,
  // already taken from the map), or the one the store holds. Null when no node may continue
  // it (unknown, expired, or taken already, here or at another node); `*unavailable` when the
  // store cannot tell now.
  std::shared_ptr<Pending> TakeShared(std::string_view kind, const std::string& secret,
                                      std::shared_ptr<Pending> local, int64_t now,
                                      bool* unavailable);
  // Deletes the browser states expired in the store, at most once a minute.
  void PurgeShared(int64_t now) EXCLUDES(mu_);
  // The redirect to the client: `params` already encoded ("code=…" or "error=…"), then state
  // and iss.
  BrowserAnswer ToClient(const std::string& redirect_uri, const std::string& params,
                         const std::optional<std::string>& state) const;
  BrowserAnswer ClientError(const std::string& redirect_uri, const std::string& error,
                            const std::string& description,
                            const std::optional<std::string>& state) const;
  // The IdP refused Custody itself (its client authentication or its request): a page saying
  // so, with a link back to the client carrying server_error, its state and iss.
  BrowserAnswer IdpRefusedPage(const Pending& p, const std::string& what) const;
  BrowserAnswer IssueCode(const Pending& p);
  // Sends the browser to the IdP for `p` (a client's authorization or an approver's sign-in):
  // binds it to the browser's cookie, gives it a fresh nonce, PKCE verifier and IdP state, and
  // holds it until the IdP answers. nullopt when the IdP's metadata cannot be read or too many
  // sign-ins are in progress (`*full`: kAll in all, kSource from p->source): the caller answers
  // in its own shape.
  enum class Full { kNo, kAll, kSource };
  static std::string BusySentence(Full full);  // an approver's or console sign-in's page
  std::optional<BrowserAnswer> SendToIdp(std::shared_ptr<Pending> p,
                                         const std::string& cookie_header, Full* full);
  BrowserAnswer ConsentPage(const Pending& p, const std::string& request_id,
                            const std::string& csrf);
  // The IdP's answer to an approver's sign-in (LoginCallback, once the state and browser match).
  BrowserAnswer ApproverSignedIn(Pending& p, const std::optional<std::string>& code,
                                 const std::optional<std::string>& error,
                                 const std::optional<std::string>& iss) EXCLUDES(mu_);
  // The agent a client acts as; a dev client's is registered on first use.
  Result<Agent> AgentFor(const OAuthClient& client, const SignedInPerson& person);
  void PurgeLocked(int64_t now) REQUIRES(mu_);
  // Deletes the stored codes expired at `now` (used ones after CodeReuseGrace()), at most once
  // per code lifetime.
  void PurgeCodes(int64_t now) EXCLUDES(mu_);
  // How long a used code is kept past its expiry, so that its reuse is detected (and revokes
  // what its first use issued) rather than answered "unknown".
  int64_t CodeReuseGrace() const { return options_.login_lifetime_s; }
  bool FullLocked() const REQUIRES(mu_);
  // logins_ and consents_ are changed only through these, which keep in_flight_by_source_.
  void HoldLocked(std::map<std::string, std::shared_ptr<Pending>>& m, const std::string& key,
                  std::shared_ptr<Pending> p) REQUIRES(mu_);
  std::shared_ptr<Pending> TakeLocked(std::map<std::string, std::shared_ptr<Pending>>& m,
                                      const std::string& key) REQUIRES(mu_);
  void ReleaseSourceLocked(const Pending& p) REQUIRES(mu_);
  Status Record(const std::string& event);
  OAuthResult<CodeTokenAnswer> CodeGrant(const CodeTokenRequest& request);
  OAuthResult<CodeTokenAnswer> RefreshGrant(const CodeTokenRequest& request);
  // Revokes a refresh family and its sessions (reuse detected); returns the sessions revoked.
  std::vector<std::string> RevokeFamily(const std::string& family_id, const std::string& reason);
  void RecordRefusal(const CodeTokenRequest& request, const OAuthError& error) EXCLUDES(mu_);
  // Issues the session and the refresh token of a grant; `family` is set for a refresh.
  OAuthResult<CodeTokenAnswer> IssueTokens(const Agent& agent, const std::string& client_id,
                                           const SignedInPerson& person, const ScopeSet& scopes,
                                           const std::string& resource, const RefreshFamily* family,
                                           const std::string& code_id);

  TokenService& tokens_;
  store::IdentityStore& store_;
  ClientDirectory& clients_;
  IdentityProvider* login_;
  DynamicClientRegistry* registry_ = nullptr;
  const Clock& clock_;
  Random& random_;
  ErrorReporter& errors_;
  UuidV7Generator ids_;
  IdentityEventSink sink_;
  AuthorizationServerOptions options_;

  void WorkLoop() EXCLUDES(work_mu_);
  static constexpr size_t kWorkers = 4;
  Mutex work_mu_;
  CondVar work_cv_;
  std::deque<std::function<void()>> work_ GUARDED_BY(work_mu_);
  std::vector<std::thread> workers_ GUARDED_BY(work_mu_);  // started on the first Post
  bool stopping_ GUARDED_BY(work_mu_) = false;

  Mutex mu_;
  std::map<std::string, std::shared_ptr<Pending>> logins_ GUARDED_BY(mu_);    // by IdP state
  std::map<std::string, std::shared_ptr<Pending>> consents_ GUARDED_BY(mu_);  // by request id
  // How many of those were started from each source address ("" not counted).
  std::map<std::string, size_t> in_flight_by_source_ GUARDED_BY(mu_);
  int64_t next_code_purge_ GUARDED_BY(mu_) = 0;  // PurgeCodes' next run (store_'s codes)
  // The refusal events' budget (refusal_events_per_minute): the minute's start, the refusals
  // recorded in it, and those counted but not recorded since the last one recorded.
  int64_t refusal_window_start_ GUARDED_BY(mu_) = 0;
  int64_t refusals_recorded_ GUARDED_BY(mu_) = 0;
  int64_t refusals_unrecorded_ GUARDED_BY(mu_) = 0;
  bool refusal_flood_noticed_ GUARDED_BY(mu_) = false;  // logged in this minute
  // Approver sessions opened here, by SHA-256 of the cookie; `shared`: also in the identity
  // store, which then decides whether it is still live (a sign-out at another node ends it).
  struct HeldApprover {
    ApproverSession session;
    bool shared = false;
  };
  std::map<std::string, HeldApprover> approvers_ GUARDED_BY(mu_);
  int64_t next_state_purge_ GUARDED_BY(mu_) = 0;  // PurgeShared's next run
  // Logos of the consent pages shown, by the hex SHA-256 of their bytes (bounded by kMaxLogos).
  struct ServedLogo {
    std::shared_ptr<const ClientLogo> logo;
    int64_t expires_at = 0;
  };
  static constexpr size_t kMaxLogos = 256;
  std::map<std::string, ServedLogo> logos_ GUARDED_BY(mu_);
  ClientMetadataFetcher* logo_fetcher_ = nullptr;  // set before serving; read-only after
  // The consent page's logo id for `p`'s client ("" when none is shown): fetched and kept.
  std::string ConsentLogo(const Pending& p) EXCLUDES(mu_);
};

// The RFC 8414 fields the authorization endpoint adds to the metadata (for identity_routes).
inline constexpr std::string_view kAuthorizationCodeGrant = "authorization_code";
inline constexpr std::string_view kRefreshTokenGrant = "refresh_token";

}  // namespace custody::identity
