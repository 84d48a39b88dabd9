// TokenService: agent registration, client authentication, JWT-SVID issuance, RFC 8693 token
// exchange into RFC 9068 access tokens, verification, introspection and revocation.
//
// Every token Custody issues or accepts from clients is ES256 (crypto/jose.h refuses anything
// else); only trusted issuers' ID tokens may also be RS256. Every state change is reported to
// the EventSink (the ledger in production) with who asked and the token's jti, never a token;
// the events are built by events/identity_events.h. Errors no caller is told of (e.g. a failed
// store write or event behind an OAuth "server_error", a store failure behind "unknown client")
// go to the injected ErrorReporter under "identity.*" sites. A refused token request is
// recorded too (token.refuse, through TokenAsync()); the token endpoint's events can be recorded
// without blocking its caller (TokenServiceOptions::async_sink). Thread-safe: the store is
// thread-safe, the signing keys are guarded by keys_mu_; the verified-token caches lock themselves.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "identity/agent.h"
#include "identity/records.h"
#include "identity/verified_cache.h"
#include "store/identity_store.h"

namespace custody::identity {

inline constexpr std::string_view kTokenTypeJwt = "urn:ietf:params:oauth:token-type:jwt";
inline constexpr std::string_view kTokenTypeIdToken = "urn:ietf:params:oauth:token-type:id_token";
inline constexpr std::string_view kTokenTypeAccessToken =
    "urn:ietf:params:oauth:token-type:access_token";
// An unsigned initiator assertion ({"sub":…,"iss":…} as JSON), accepted only from clients with
// the assert_initiator permission.
inline constexpr std::string_view kTokenTypeInitiatorAssertion =
    "urn:custody:params:oauth:token-type:initiator-assertion";
inline constexpr std::string_view kClientAssertionTypeJwtBearer =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// An OIDC provider whose ID tokens Custody accepts as proof of a human initiator.
struct TrustedIssuer {
  std::string issuer;
  std::string audience;  // the client_id Custody is registered as at that provider
  crypto::Jwks jwks;
};

struct TokenServiceOptions {
  std::string trust_domain = "custody.local";
  std::string issuer = "https://custody.local";  // iss of Custody's tokens
  std::string token_endpoint;                    // audience of client assertions (default issuer)
  int64_t svid_lifetime_s = 300;
  int64_t leeway_s = 30;
  int64_t max_assertion_lifetime_s = 600;
  std::vector<TrustedIssuer> trusted_issuers;
  // Verified access tokens and JWT-SVIDs whose signature and claims need not be checked again
  // (keyed by the token's SHA-256, each kept until min(exp, now + 60 s, its key's end of
  // publication); this many of each kind). Audience, time, session and revocation state are
  // still checked on every verification. 0 disables the caches.
  size_t verify_cache_entries = 4096;
  // Where the token endpoint's events go without blocking its caller (custody serve: the
  // ledger's group commit, Recorder::RecordTextAsync). `done` must run exactly once, on any
  // thread, once the event is durable (or failed). Unset: every event goes through the
  // synchronous sink before TokenAsync's `done` runs (tests).
  //  - An issuance (credential.issue, session.start) is answered from `done`: no token leaves
  //    before its event is durable, and concurrent requests share the ledger's fsync.
  //  - A refusal (token.refuse) is answered at once, without waiting, so a client spamming
  //    refusals neither waits on the ledger nor holds a server thread; at most
  //    max_pending_refusals are in flight, and a refusal past that is answered but not
  //    recorded, reported as "identity.refusal_dropped".
  std::function<void(const std::string& event_json, std::function<void(Status)> done)> async_sink;
  size_t max_pending_refusals = 256;
  // Other nodes share the identity store (several `custody serve` on one database): a token
  // signed with a key this node has not loaded yet makes it re-read the keys (RefreshKeys), at
  // most once a second, so a token from any node verifies at every node.
  bool shared_store = false;
  // Runs after RotateSigningKey stored the new key: the deployment's change feed tells the
  // other nodes (RefreshKeys). Must not block.
  std::function<void()> on_keys_rotated;
};

// An RFC 6749 §5.2 error: `error` is the OAuth code, `http_status` 400 or 401.
struct OAuthError {
  std::string error;
  std::string description;
  int http_status = 400;
};

template <typename T>
struct OAuthResult {
  std::optional<T> value;
  OAuthError error;
  bool ok() const { return value.has_value(); }
  static OAuthResult Fail(std::string error, std::string description, int status = 400) {
    OAuthResult r;
    r.error = OAuthError{std::move(error), std::move(description), status};
    return r;
  }
};

struct IssuedToken {
  std::string access_token;
  std::string token_type = "Bearer";
  std::string issued_token_type;  // RFC 8693 §2.2.1
  int64_t expires_in = 0;
  std::string scope;
  std::string jti;
  std::string sid;  // exchange only
  std::string subject;
};

// A /oauth2/token request, its form fields as the client sent them.
struct TokenRequest {
  std::string grant_type;
  std::string client_id, client_assertion_type, client_assertion, client_secret;
  std::string audience, scope;
  std::string subject_token, subject_token_type, actor_token, actor_token_type;
  std::string objective;
  std::string requested_lifetime;  // seconds, as text
};

struct ExchangeRequest {
  std::string subject_token;
  std::string subject_token_type;
  std::string actor_token;
  std::string actor_token_type;
  std::string scope;                 // space-delimited; empty: everything allowed
  std::string audience;              // required
  std::string objective;             // the task or prompt; only its SHA-256 is kept
  int64_t requested_lifetime_s = 0;  // 0: the agent's maximum
};

// What an exchange had verified when it was refused, for the token.refuse event.
struct ExchangeFacts {
  std::string instance;  // the actor token's SPIFFE ID
  std::string session;   // the subject token's session (also when it was revoked)
};

// A root session for a person who signed in through Custody's own authorization endpoint
// (identity/authorization_server.h): the authorization code and refresh token grants.
struct SignedInSessionRequest {
  std::string initiator;         // the person (sub at the company IdP), a verified initiator
  std::string initiator_issuer;  // the IdP's issuer
  ScopeSet scopes;               // already narrowed to the agent's grants
  std::string audience;          // the RFC 8707 resource
  std::string client_id;         // the OAuth client (the token's client_id claim)
  std::string instance;          // the agent instance's SPIFFE ID; empty: a new instance
  int64_t lifetime_s = 0;        // 0: the agent's maximum token lifetime
  std::string requested_by;      // for the session.start event
};

// The verified facts behind a Custody access token.
struct VerifiedAccess {
  Session session;
  std::optional<Agent> agent;  // the session's agent, read with it (nullopt when gone)
  std::string jti;
  std::vector<std::string> audiences;
  std::string act_json;  // the act claim, as issued
  int64_t exp = 0;
};

// Receives identity events (agent.register, credential.issue, delegation, revocation, …) as JSON
// objects. In production it appends to the ledger and returns once the event is durable.
// The token endpoint's events go through TokenServiceOptions::async_sink instead when it is set.
using IdentityEventSink = std::function<Status(const std::string& event_json)>;

struct TxnTokenRequest;  // identity/txn_token.h
struct MintedTxnToken;

class TokenService {
 public:
  // Waits for the token requests and refusals still being recorded (async_sink must still be
  // running).
  ~TokenService();

  // `errors` must outlive the service.
  static Result<std::unique_ptr<TokenService>> Create(store::IdentityStore& store,
                                                      const Clock& clock, Random& random,
                                                      ErrorReporter& errors, IdentityEventSink sink,
                                                      TokenServiceOptions options);

  // --- Registry. `by` names the operator (admin token id) making the change.
  struct Registered {
    Agent agent;
    std::string client_secret;  // set only when one was generated; shown once
  };
  Result<Registered> RegisterAgent(Agent agent, bool generate_secret, const std::string& by);
  Result<Agent> UpdateAgent(Agent agent, const std::string& by);
  Result<Agent> GetAgent(const std::string& name) { return store_.GetAgent(name); }
  Result<std::vector<Agent>> ListAgents() { return store_.ListAgents(); }
  // Disables the agent and revokes every live session of it.
  Result<std::vector<std::string>> DisableAgent(const std::string& name, const std::string& by);

  // --- OAuth token endpoint.
  // POST /oauth2/token: authenticates the client and runs its grant. Validation and signing run
  // on the calling thread. An exchange's session is then stored through
  // IdentityStore::CreateSessionAsync (concurrent exchanges share a transaction), and only then
  // is its event recorded. `done` runs once, after the issuance's event is durable (on the
  // thread async_sink or the store calls back on, or before TokenAsync returns when neither
  // defers). A session the store refuses because a revocation won the race is answered
  // invalid_grant and recorded as a refusal. Every
  // refusal is recorded as a token.refuse event (the request, the client, the error; never a
  // token or secret); see TokenServiceOptions::async_sink. When the event cannot be recorded
  // the answer is 503 temporarily_unavailable and the token signed for it is revoked (its
  // session, or for a JWT-SVID its jti) before `done` runs, so it never verifies.
  // The primitives below record only what they issue, synchronously.
  using TokenCallback = std::function<void(OAuthResult<IssuedToken>)>;
  void TokenAsync(const TokenRequest& request, TokenCallback done);
  // TokenAsync, waiting for its answer (the CLI and tests).
  OAuthResult<IssuedToken> Token(const TokenRequest& request);
  // private_key_jwt (RFC 7523) or client_secret; returns the authenticated agent. An
  // assertion's jti is recorded (replay protection) before this returns; TokenAsync instead
  // records it while the grant is being prepared (see there).
  OAuthResult<Agent> AuthenticateClient(const std::string& client_id,
                                        const std::string& client_assertion_type,
                                        const std::string& client_assertion,
                                        const std::string& client_secret);
  // grant_type=client_credentials: a JWT-SVID for a new agent instance, living
  // `requested_lifetime_s` (0: svid_lifetime_s; past svid_lifetime_s: invalid_request).
  OAuthResult<IssuedToken> IssueSvid(const Agent& client, const std::string& audience,
                                     int64_t requested_lifetime_s = 0);
  // grant_type=urn:ietf:params:oauth:grant-type:token-exchange.
  // `facts` (if given) receives what was verified before a refusal.
  OAuthResult<IssuedToken> Exchange(const Agent& client, const ExchangeRequest& request,
                                    ExchangeFacts* facts = nullptr);
  // A new root session of `agent` for a verified person (defined in signed_in_session.cc):
  // the same RFC 9068 token an exchange issues (sub = the person, act = {sub: the instance}),
  // stored, its session.start event recorded (synchronously) before it is returned. The agent
  // must not be disabled (invalid_grant); the scopes must be non-empty (invalid_scope).
  OAuthResult<IssuedToken> IssueSignedInSession(const Agent& agent,
                                                const SignedInSessionRequest& request);

  // --- Verification (every check inside Custody goes through these).
  // A JWT-SVID of ours whose aud contains `audience`. Returns its SPIFFE ID (sub).
  Result<std::string> VerifySvid(const std::string& token, const std::string& audience);
  // A Custody access token: signature, typ at+jwt, iss, exp/nbf, aud (if non-empty), session
  // live (not revoked, not expired), jti not revoked. Unauthenticated otherwise. When the token
  // is genuine and only its session is revoked, `revoked` (if given) receives its facts.
  Result<VerifiedAccess> VerifyAccessToken(const std::string& token, const std::string& audience,
                                           VerifiedAccess* revoked = nullptr);
  // VerifyAccessToken with the session read by `read` instead of the store's GetSessionForToken:
  // read(sid, jti, expired_at) once the token's signature and claims verified, where a session
  // whose expires_at is at or before `expired_at` has expired. For the attribution service,
  // which counts the call in the same round trip (store/session_read_and_count.h).
  using SessionRead = std::function<Result<store::SessionForToken>(
      const std::string& sid, const std::string& jti, int64_t expired_at)>;
  Result<VerifiedAccess> VerifyAccessToken(const std::string& token, const std::string& audience,
                                           VerifiedAccess* revoked, const SessionRead& read);
  store::IdentityStore& store() { return store_; }
  // RFC 7662 response body.
  std::string Introspect(const std::string& token);

  // --- Sessions and revocation.
  Result<Session> GetSession(const std::string& sid) { return store_.GetSession(sid); }
  Result<std::vector<Session>> SessionTree(const std::string& sid) {
    return store_.SessionTree(sid);
  }
  Result<std::vector<std::string>> RevokeSession(const std::string& sid, const std::string& reason,
                                                 const std::string& by);
  Status RevokeCredential(const std::string& jti, const std::string& by);
  // Called with the session ids each revocation (RevokeSession, DisableAgent) just revoked,
  // after the store has them and before the call returns, so that whoever holds work of those
  // sessions (the MCP gateway's in-flight calls and streams) can cut it off at once. Listeners
  // run on the revoking thread and must not block or call back into revocation. Returns an id
  // for RemoveRevocationListener.
  using RevocationListener = std::function<void(const std::vector<std::string>& sids)>;
  int AddRevocationListener(RevocationListener listener);
  void RemoveRevocationListener(int id);

  // The sessions another node revoked (the deployment's change feed): runs this node's
  // revocation listeners, except `skip_listener` (the one that told the other nodes), as if the
  // revocation had happened here. The store already has it: nothing is written.
  void RevokedElsewhere(const std::vector<std::string>& sids, int skip_listener)
      EXCLUDES(listeners_mu_);

  // --- Keys.
  // Re-reads the signing keys from the store, creating none: another node's keys verify here
  // from now on and are published in the JWKS; a key another node retired stops signing here.
  Status RefreshKeys() EXCLUDES(keys_mu_);
  std::string JwksJson();
  // Starts signing with a new key; the old one stays published until its last token expires.
  // Records a key.rotate event naming `by`. Returns the new key's kid.
  Result<std::string> RotateSigningKey(const std::string& by = "");

  // --- Transaction Tokens (identity/txn_token.h; defined in txn_token.cc).
  // Signs a Txn-Token with the current key. InvalidArgument for a request missing a required
  // claim, an act_json that is not a JSON object, or a lifetime outside
  // 1..kTxnTokenMaxLifetimeS; Internal (reported as "identity.sign") when signing fails.
  // Nothing is recorded here: the caller records the jti where it records the action.
  Result<MintedTxnToken> MintTxnToken(const TxnTokenRequest& request);

 private:
  TokenService(store::IdentityStore& store, const Clock& clock, Random& random,
               ErrorReporter& errors, IdentityEventSink sink, TokenServiceOptions options);
  Status LoadOrCreateKeys() EXCLUDES(keys_mu_) { return LoadKeys(/*create=*/true); }
  // The published keys from the store (reusing the ones already parsed); with `create`, a new
  // current key when none is.
  Status LoadKeys(bool create) EXCLUDES(keys_mu_);
  int64_t Now() const;
  std::string NewId();
  Result<std::string> Sign(const std::string& typ, const std::string& claims_json,
                           int64_t expires_at) EXCLUDES(keys_mu_);
  // The published key with this kid, or null; `published_until` (if given) receives the end of
  // its publication (INT64_MAX for the current key).
  std::shared_ptr<const crypto::EcdsaP256PrivateKey> FindKey(std::string_view kid,
                                                             int64_t* published_until = nullptr)
      EXCLUDES(keys_mu_);
  // ES256 with one of our keys (current or still published).
  Result<crypto::VerifiedJws> VerifyOwnJws(const std::string& token,
                                           int64_t* published_until = nullptr);

  // What an access token's signature vouches for (checked once, then cacheable).
  struct AccessClaims {
    std::string sid, jti, act_json;
    std::vector<std::string> aud;
    int64_t exp = 0;
    std::optional<int64_t> nbf;
    int64_t key_published_until = 0;  // a cached verification ends with its key's publication
  };
  // Signature, typ, iss and the presence of exp/sid/jti: the parts that never change.
  Result<AccessClaims> VerifyAccessSignature(const std::string& token);
  // What a JWT-SVID's signature vouches for (checked once, then cacheable).
  struct SvidClaims {
    std::string sub, jti;
    std::vector<std::string> aud;
    std::optional<int64_t> exp, nbf;
    int64_t key_published_until = 0;
  };
  // Signature, header, iss, a SPIFFE ID of our trust domain as sub, a non-empty aud.
  Result<SvidClaims> VerifySvidSignature(const std::string& token);
  // The claims (JSON) of an RFC 9068 session access token; every path that issues one (token
  // exchange, the authorization code flow) signs these. `act_json`: the current actor with the
  // prior actors nested inside (RFC 8693 §4.1).
  std::string SessionTokenClaims(const Session& s, const std::string& audience,
                                 const std::string& client_id, const std::string& act_json) const;
  Status Record(const std::string& event_json);
  // A token signed and its event built, neither stored nor recorded yet; an exchange's session
  // is stored before its event is recorded.
  struct Issue {
    IssuedToken token;
    std::string event;
    int64_t exp = 0;
    std::optional<Session> session;  // exchange only
  };
  OAuthResult<Issue> PrepareSvid(const Agent& client, const std::string& audience,
                                 int64_t requested_lifetime_s = 0);
  OAuthResult<Issue> PrepareExchange(const Agent& client, const ExchangeRequest& request,
                                     ExchangeFacts* facts);
  // A verified client assertion's jti, still to be recorded (IdentityStore::UseAssertionJti).
  struct AssertionJti {
    std::string key;  // client_id "/" jti
    int64_t exp = 0;
  };
  // AuthenticateClient without recording the assertion's jti: that is left in `*jti` (set only
  // for private_key_jwt).
  OAuthResult<Agent> VerifyClient(const std::string& client_id,
                                  const std::string& client_assertion_type,
                                  const std::string& client_assertion,
                                  const std::string& client_secret,
                                  std::optional<AssertionJti>* jti);
  // The answer to a jti the store did not record: a replay, or a reported server_error.
  OAuthError JtiNotRecorded(const Status& recorded);
  // Deletes the jtis of assertions that can no longer verify, at most once a minute.
  void MaybePurgeAssertionJtis(int64_t now);
  // TokenAsync once the client is authenticated (its jti durable) and its grant prepared.
  void FinishToken(const TokenRequest& request, const Agent& agent, OAuthResult<Issue> issue,
                   const ExchangeFacts& facts, TokenCallback done) EXCLUDES(async_mu_);
  // Records the issuance's event (through async_sink when set) and answers `done` once it is
  // durable; on failure revokes what was issued and answers temporarily_unavailable.
  void RecordIssue(Issue issue, TokenCallback done) EXCLUDES(async_mu_);
  OAuthResult<IssuedToken> FinishIssue(Issue issue, const Status& recorded);
  // The answer to a session the store did not keep: invalid_grant when it refused it (a
  // revocation won the race), else a reported server_error.
  OAuthError SessionNotStored(const Status& stored);
  // Records a token.refuse event (through options_.async_sink when set); never fails the
  // refusal it records.
  void RecordRefusal(const TokenRequest& request, const Agent* client, const ExchangeFacts& facts,
                     const OAuthError& error) EXCLUDES(async_mu_);
  void NotifyRevoked(const std::vector<std::string>& sids) EXCLUDES(listeners_mu_);

  store::IdentityStore& store_;
  const Clock& clock_;
  Random& random_;
  ErrorReporter& errors_;
  UuidV7Generator ids_;
  IdentityEventSink sink_;
  TokenServiceOptions options_;

  struct SigningKey {
    std::string kid;
    std::shared_ptr<const crypto::EcdsaP256PrivateKey> key;
    SigningKeyRecord record;
  };
  Mutex keys_mu_;
  std::vector<SigningKey> keys_ GUARDED_BY(keys_mu_);  // the last one signs
  std::atomic<int64_t> keys_refreshed_ms_{0};          // shared_store: an unknown kid's reload
  std::atomic<int64_t> jtis_purged_s_{0};              // MaybePurgeAssertionJtis' last run

  // Verified-token caches (options_.verify_cache_entries each): access tokens (a delegation's
  // subject token, every gateway call) and JWT-SVIDs (every exchange's actor token). An entry
  // lives until min(exp + leeway, now + kVerifyCacheTtlS, its key's end of publication).
  static constexpr int64_t kVerifyCacheTtlS = 60;
  VerifiedCache<AccessClaims> access_cache_;
  VerifiedCache<SvidClaims> svid_cache_;
  Mutex listeners_mu_;
  int next_listener_ GUARDED_BY(listeners_mu_) = 1;
  std::map<int, RevocationListener> listeners_ GUARDED_BY(listeners_mu_);

  // Events handed to options_.async_sink and not yet done; the destructor waits for them.
  Mutex async_mu_;
  CondVar async_done_;
  size_t refusals_pending_ GUARDED_BY(async_mu_) = 0;
  size_t issues_pending_ GUARDED_BY(async_mu_) = 0;
};

}  // namespace custody::identity
