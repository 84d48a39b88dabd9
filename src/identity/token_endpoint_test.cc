// The token endpoint's asynchronous path against a real ledger (SQLite, group commit) through
// the Recorder, as custody serve wires it: no answer leaves before its event is durable, many
// requests share one commit, and a ledger that cannot commit leaves the client a clean
// temporarily_unavailable and a token that does not verify.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "common/logger.h"
#include "crypto/ed25519.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "store/stores.h"
#include "store/testing/fault_vfs.h"

namespace custody::identity {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using store::testing::Fault;
using store::testing::FaultVfs;
constexpr const char* kIssuer = "https://custody.test";
constexpr std::string_view kExchange = "urn:ietf:params:oauth:grant-type:token-exchange";

// The real store, with a hook run as each session is handed to it: what another thread does
// between an exchange's checks and its session's write (a revocation winning the race).
class RacedStore final : public store::IdentityStore {
 public:
  explicit RacedStore(std::unique_ptr<store::IdentityStore> real) : real_(std::move(real)) {}
  std::function<void()> before_create;

  Status CreateAgent(const Agent& a) override { return real_->CreateAgent(a); }
  Status UpdateAgent(const Agent& a) override { return real_->UpdateAgent(a); }
  Result<Agent> GetAgent(const std::string& n) override { return real_->GetAgent(n); }
  Result<std::vector<Agent>> ListAgents() override { return real_->ListAgents(); }
  Status CreateSession(const Session& s) override {
    if (before_create) before_create();
    return real_->CreateSession(s);
  }
  void CreateSessionAsync(Session s, std::function<void(Status)> done) override {
    if (before_create) before_create();
    real_->CreateSessionAsync(std::move(s), std::move(done));
  }
  Result<Session> GetSession(const std::string& sid) override { return real_->GetSession(sid); }
  Result<std::vector<Session>> SessionTree(const std::string& sid) override {
    return real_->SessionTree(sid);
  }
  Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                     const std::string& reason,
                                                     int64_t now) override {
    return real_->RevokeSessionTree(sid, reason, now);
  }
  Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                       const std::string& reason,
                                                       int64_t now) override {
    return real_->RevokeAgentSessions(agent, reason, now);
  }
  Status RevokeJti(const std::string& jti, int64_t exp) override {
    return real_->RevokeJti(jti, exp);
  }
  Result<bool> IsJtiRevoked(const std::string& jti) override { return real_->IsJtiRevoked(jti); }
  Status UseAssertionJti(const std::string& jti, int64_t exp) override {
    return real_->UseAssertionJti(jti, exp);
  }
  // Set: each UseAssertionJtiAsync is handed to it, to be passed on to the store when the test
  // says (a jti whose write has not ended yet).
  std::function<void(std::function<void()>)> hold_jti;
  void UseAssertionJtiAsync(std::string jti, int64_t exp,
                            std::function<void(Status)> done) override {
    std::function<void()> go = [this, jti = std::move(jti), exp, done = std::move(done)] {
      real_->UseAssertionJtiAsync(jti, exp, done);
    };
    if (hold_jti) return hold_jti(std::move(go));
    go();
  }
  Status PurgeAssertionJtis(int64_t before) override { return real_->PurgeAssertionJtis(before); }
  Status PutSigningKey(const SigningKeyRecord& k) override { return real_->PutSigningKey(k); }
  Result<std::vector<SigningKeyRecord>> ListSigningKeys() override {
    return real_->ListSigningKeys();
  }

 private:
  std::unique_ptr<store::IdentityStore> real_;
};

class TokenEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultVfs::Install();  // before any file is opened; nothing fails until a test arms it
    dir_ = fs::temp_directory_path() /
           ("custody-tokenep-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store::StorageOptions files;
    files.identity_path = (dir_ / "identity.db").string();
    store_ = std::make_unique<RacedStore>(std::move(*store::OpenIdentityStore(files)));
  }
  void TearDown() override {
    FaultVfs::Clear();
    svc_.reset();  // waits for what is still being recorded
    recorder_.reset();
    ledger_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // The ledger, and the service recording the token endpoint's events through its group
  // commit. Registrations go nowhere (no synchronous sink): only the endpoint's events are in
  // the ledger.
  void Start(const ledger::LedgerOptions& lo) {
    ledger::LedgerOptions o = lo;
    o.origin = "custody.test/ledger";
    auto ls = store::OpenLedgerFile((dir_ / "ledger.db").string());
    ASSERT_TRUE(ls.ok()) << ls.status().ToString();
    auto led = ledger::Ledger::Open(std::move(*ls), *crypto::Ed25519PrivateKey::Generate(), o);
    ASSERT_TRUE(led.ok()) << led.status().ToString();
    ledger_ = std::move(*led);
    recorder_ = std::make_unique<events::Recorder>(*ledger_);
    TokenServiceOptions to;
    to.trust_domain = "custody.test";
    to.issuer = kIssuer;
    to.async_sink = [this](const std::string& e, std::function<void(Status)> done) {
      {
        MutexLock lock(handed_mu_);
        handed_.push_back(e);
      }
      recorder_->RecordTextAsync(
          e, [done = std::move(done)](Result<ledger::AppendResult> r) { done(r.status()); });
    };
    auto s = TokenService::Create(*store_, clock_, random_, errors_, nullptr, to);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(*s);
    Agent a;
    a.name = "planner";
    a.grants = {"github/*"};
    a.permissions = {"assert_initiator"};
    a.max_delegation_depth = 2;
    auto r = svc_->RegisterAgent(a, /*generate_secret=*/true, "admin-1");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    secret_ = r->client_secret;
  }

  TokenRequest SvidRequest() const {
    TokenRequest t;
    t.grant_type = "client_credentials";
    t.client_id = "planner";
    t.client_secret = secret_;
    t.audience = kIssuer;
    return t;
  }
  TokenRequest ExchangeRequestFor(const std::string& svid) const {
    TokenRequest t = SvidRequest();
    t.grant_type = std::string(kExchange);
    t.audience = "custody-gateway";
    t.subject_token = R"({"sub":"nightly-workflow"})";
    t.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
    t.actor_token = svid;
    t.actor_token_type = std::string(kTokenTypeJwt);
    return t;
  }

  // Registers "signer", a client authenticating with private_key_jwt.
  void RegisterSigner() {
    signer_key_ =
        std::make_unique<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    Agent a;
    a.name = "signer";
    a.grants = {"github/*"};
    a.client_jwk = crypto::EcPublicJwkJson(signer_key_->public_key(), "signer-key");
    auto r = svc_->RegisterAgent(a, /*generate_secret=*/false, "admin-1");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }
  // A JWT-SVID request authenticated by a client assertion of "signer" with this jti.
  TokenRequest AssertedSvidRequest(const std::string& jti) const {
    json::object c{{"iss", "signer"},   {"sub", "signer"}, {"aud", kIssuer},
                   {"exp", Now() + 60}, {"iat", Now()},    {"jti", jti}};
    TokenRequest t;
    t.grant_type = "client_credentials";
    t.client_id = "signer";
    t.client_assertion_type = std::string(kClientAssertionTypeJwtBearer);
    t.client_assertion = *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"signer-key"})",
                                               json::serialize(c), *signer_key_);
    t.audience = kIssuer;
    return t;
  }
  // The kinds of the committed ledger's events.
  std::vector<std::string> CommittedKinds() {
    std::vector<std::string> kinds;
    for (uint64_t i = 0; i < ledger_->Size(); ++i) {
      auto leaf = ledger_->GetEntry(i);
      if (!leaf.ok()) break;
      kinds.emplace_back(json::parse(leaf->data).as_object().at("kind").as_string());
    }
    return kinds;
  }

  // The committed ledger's event carrying this jti, or null.
  std::optional<json::object> CommittedEventWithJti(const std::string& jti) {
    uint64_t size = ledger_->Size();  // the latest signed checkpoint: durable
    for (uint64_t i = 0; i < size; ++i) {
      auto leaf = ledger_->GetEntry(i);
      if (!leaf.ok()) return std::nullopt;
      // A jti is a UUIDv7: found in the event's text, it is this token's.
      if (leaf->data.find('"' + jti + '"') != std::string::npos) {
        return json::parse(leaf->data).as_object();
      }
    }
    return std::nullopt;
  }

  fs::path dir_;
  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  std::unique_ptr<RacedStore> store_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<TokenService> svc_;
  std::string secret_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> signer_key_;
  Mutex handed_mu_;
  std::vector<std::string> handed_ GUARDED_BY(handed_mu_);  // every event given to async_sink
};

// kThreads threads each send kPerThread requests without waiting for the answers. The ledger
// commits only a full batch of all of them, so an answer that arrives at all arrived after the
// shared commit: every answer finds every request submitted and its own event in the ledger's
// signed checkpoint. The same for JWT-SVIDs (client_credentials), then for exchanges with them.
TEST_F(TokenEndpointTest, ConcurrentRequestsAreAnsweredOnlyOnceTheirEventsAreDurable) {
  constexpr int kThreads = 4, kPerThread = 4, kAll = kThreads * kPerThread;
  ledger::LedgerOptions lo;
  lo.max_batch = kAll;
  lo.max_delay = std::chrono::seconds(60);  // a batch is committed only when it is full
  Start(lo);

  struct Answer {
    OAuthResult<IssuedToken> result;
    int submitted_then = 0;
    std::optional<json::object> event;  // its event, read from the ledger when answered
  };
  auto run = [&](const std::function<TokenRequest(int)>& request) {
    std::atomic<int> submitted{0};
    std::vector<Answer> answers(kAll);
    std::atomic<int> answered{0};
    Mutex mu;
    CondVar all_answered;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          int n = t * kPerThread + i;
          TokenRequest req = request(n);
          submitted.fetch_add(1);
          svc_->TokenAsync(req, [&, n](OAuthResult<IssuedToken> r) {
            Answer& a = answers[n];
            a.submitted_then = submitted.load();
            if (r.ok()) a.event = CommittedEventWithJti(r.value->jti);
            a.result = std::move(r);
            MutexLock lock(mu);
            if (answered.fetch_add(1) + 1 == kAll) all_answered.NotifyAll();
          });
        }
      });
    }
    for (auto& th : threads) th.join();  // every call returned, answered or not
    MutexLock lock(mu);
    all_answered.Wait(mu, [&] { return answered.load() == kAll; });
    return answers;
  };

  uint64_t batches_before = ledger_->Stats().batches;
  std::vector<Answer> svids = run([&](int) { return SvidRequest(); });
  EXPECT_EQ(ledger_->Stats().batches, batches_before + 1);  // one commit for all of them
  for (const Answer& a : svids) {
    ASSERT_TRUE(a.result.ok()) << a.result.error.description;
    EXPECT_EQ(a.submitted_then, kAll);
    ASSERT_TRUE(a.event.has_value()) << "answered before its event was durable";
    EXPECT_EQ(a.event->at("kind"), "credential.issue");
    EXPECT_TRUE(svc_->VerifySvid(a.result.value->access_token, kIssuer).ok());
  }

  std::vector<Answer> exchanges = run([&](int n) {
    return ExchangeRequestFor(svids[static_cast<size_t>(n)].result.value->access_token);
  });
  EXPECT_EQ(ledger_->Stats().batches, batches_before + 2);
  for (const Answer& a : exchanges) {
    ASSERT_TRUE(a.result.ok()) << a.result.error.description;
    EXPECT_EQ(a.submitted_then, kAll);
    ASSERT_TRUE(a.event.has_value()) << "answered before its event was durable";
    EXPECT_EQ(a.event->at("kind"), "session.start");
    EXPECT_EQ(a.event->at("session").at("sid"), json::value(a.result.value->sid));
    EXPECT_TRUE(svc_->VerifyAccessToken(a.result.value->access_token, "custody-gateway").ok());
  }
  EXPECT_EQ(ledger_->Size(), 2u * kAll);
  EXPECT_TRUE(errors_.Counts().empty());
}

// A ledger that cannot commit (a full disk): the client hears temporarily_unavailable (503,
// naming no file), what was signed for it is revoked so it never verifies, and the failure is
// reported. Once the disk has room again, tokens are issued again.
TEST_F(TokenEndpointTest, ALedgerThatCannotCommitLeavesNoUsableToken) {
  Start({});
  auto svid = svc_->Token(SvidRequest());
  ASSERT_TRUE(svid.ok()) << svid.error.description;

  FaultVfs::Fail("ledger.db", Fault::kDiskFull);
  auto out = svc_->Token(ExchangeRequestFor(svid.value->access_token));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.error, "temporarily_unavailable");
  EXPECT_EQ(out.error.http_status, 503);
  EXPECT_EQ(out.error.description.find('/'), std::string::npos) << out.error.description;
  auto failed_svid = svc_->Token(SvidRequest());
  ASSERT_FALSE(failed_svid.ok());
  EXPECT_EQ(failed_svid.error.error, "temporarily_unavailable");
  FaultVfs::Clear();
  EXPECT_EQ(errors_.Count("identity.event_record"), 2u);
  EXPECT_EQ(errors_.Count("identity.issue_undo"), 0u);

  // The ledger holds only the first SVID's event. The refused exchange's session and the
  // refused JWT-SVID's jti are revoked in the store, which every verification reads.
  ASSERT_EQ(ledger_->Size(), 1u);
  std::vector<std::string> handed;
  {
    MutexLock lock(handed_mu_);
    handed = handed_;
  }
  ASSERT_EQ(handed.size(), 3u);
  json::object exchange_event = json::parse(handed[1]).as_object();
  ASSERT_EQ(exchange_event.at("kind"), "session.start");
  auto session =
      store_->GetSession(std::string(exchange_event.at("session").at("sid").as_string()));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_TRUE(session->revoked);
  EXPECT_EQ(session->revoke_reason, "issuance not recorded");
  json::object svid_event = json::parse(handed[2]).as_object();
  ASSERT_EQ(svid_event.at("kind"), "credential.issue");
  auto jti_revoked =
      store_->IsJtiRevoked(std::string(svid_event.at("credential").at("jti").as_string()));
  ASSERT_TRUE(jti_revoked.ok());
  EXPECT_TRUE(*jti_revoked);

  auto again = svc_->Token(ExchangeRequestFor(svid.value->access_token));
  ASSERT_TRUE(again.ok()) << again.error.description;
  EXPECT_TRUE(svc_->VerifyAccessToken(again.value->access_token, "custody-gateway").ok());
  ASSERT_TRUE(CommittedEventWithJti(again.value->jti).has_value());
}

// identity.db cannot commit (a full disk): the exchange is answered server_error, its event is
// not recorded (nothing was issued), the failure is reported; once the disk has room, exchanges
// work again.
TEST_F(TokenEndpointTest, AnIdentityStoreThatCannotCommitIssuesNothing) {
  Start({});
  auto svid = svc_->Token(SvidRequest());
  ASSERT_TRUE(svid.ok()) << svid.error.description;
  const uint64_t size = ledger_->Size();

  FaultVfs::Fail("identity.db", Fault::kDiskFull);
  auto out = svc_->Token(ExchangeRequestFor(svid.value->access_token));
  FaultVfs::Clear();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.error, "server_error");
  EXPECT_EQ(out.error.http_status, 500);
  EXPECT_EQ(out.error.description, "cannot store session") << "no file name reaches the client";
  EXPECT_EQ(errors_.Count("identity.session_store"), 1u);
  EXPECT_EQ(ledger_->Size(), size) << "no session.start for a session that was not stored";

  auto again = svc_->Token(ExchangeRequestFor(svid.value->access_token));
  ASSERT_TRUE(again.ok()) << again.error.description;
  EXPECT_TRUE(svc_->VerifyAccessToken(again.value->access_token, "custody-gateway").ok());
}

// A delegation whose parent is revoked between the exchange's checks and its session's write:
// the store refuses the session, the client hears invalid_grant naming the revoked session, no
// token of it verifies, and the ledger records the refusal (token.refuse), not a session.start.
TEST_F(TokenEndpointTest, ADelegationRacingItsParentsRevocationIsRefusedAndRecorded) {
  Start({});
  auto svid = svc_->Token(SvidRequest());
  ASSERT_TRUE(svid.ok()) << svid.error.description;
  auto parent = svc_->Token(ExchangeRequestFor(svid.value->access_token));
  ASSERT_TRUE(parent.ok()) << parent.error.description;

  TokenRequest child = ExchangeRequestFor(svid.value->access_token);
  child.subject_token = parent.value->access_token;
  child.subject_token_type = std::string(kTokenTypeAccessToken);
  child.audience = "custody-gateway";
  const std::string parent_sid = parent.value->sid;
  store_->before_create = [&] {
    store_->before_create = nullptr;
    ASSERT_TRUE(svc_->RevokeSession(parent_sid, "tripwire", "admin-1").ok());
  };
  auto out = svc_->Token(child);
  ASSERT_FALSE(out.ok()) << "a token was issued below a revoked session";
  EXPECT_EQ(out.error.error, "invalid_grant");
  EXPECT_NE(out.error.description.find(parent_sid), std::string::npos) << out.error.description;
  EXPECT_EQ(store_->SessionTree(parent_sid)->size(), 1u) << "the child's session was stored";
  EXPECT_TRUE(errors_.Counts().empty());

  std::vector<std::string> handed;
  {
    MutexLock lock(handed_mu_);
    handed = handed_;
  }
  ASSERT_FALSE(handed.empty());
  json::object refusal = json::parse(handed.back()).as_object();
  EXPECT_EQ(refusal.at("kind"), "token.refuse");
  EXPECT_NE(json::serialize(refusal).find(parent_sid), std::string::npos) << handed.back();
  for (const std::string& e : handed) {
    EXPECT_EQ(json::serialize(json::parse(e)).find("\"parent_sid\":\"" + parent_sid),
              std::string::npos)
        << "a session.start below the revoked session: " << e;
  }
}

}  // namespace
}  // namespace custody::identity

namespace custody::identity {
namespace {

// private_key_jwt: the assertion's jti is stored while the grant is prepared, and the answer
// waits for it. TokenAsync returns with the jti's write still pending and nothing answered; once
// the write ends, the JWT-SVID is issued and its event recorded; a replay is then refused (401)
// and recorded as a refusal, not an issuance.
TEST_F(TokenEndpointTest, AnAssertionIsAnsweredOnlyOnceItsJtiIsStoredWithoutHoldingTheCaller) {
  Start({});
  RegisterSigner();
  std::vector<std::function<void()>> held;  // this thread's only
  store_->hold_jti = [&](std::function<void()> go) { held.push_back(std::move(go)); };
  std::promise<OAuthResult<IssuedToken>> answer;
  auto answered = answer.get_future();
  TokenRequest req = AssertedSvidRequest("first");
  svc_->TokenAsync(req, [&](OAuthResult<IssuedToken> r) { answer.set_value(std::move(r)); });
  ASSERT_EQ(held.size(), 1u) << "the jti goes to the store without holding the caller";
  EXPECT_EQ(answered.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "answered before its jti was stored";
  EXPECT_EQ(ledger_->Size(), 0u) << "nothing recorded before the jti is stored";
  store_->hold_jti = nullptr;
  held.front()();
  OAuthResult<IssuedToken> r = answered.get();
  ASSERT_TRUE(r.ok()) << r.error.description;
  EXPECT_TRUE(svc_->VerifySvid(r.value->access_token, kIssuer).ok());
  ASSERT_TRUE(CommittedEventWithJti(r.value->jti).has_value());

  auto replay = svc_->Token(req);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error.error, "invalid_client");
  EXPECT_EQ(replay.error.http_status, 401);
  EXPECT_EQ(replay.error.description, "client assertion was already used");
  svc_.reset();  // waits for the refusal's event
  EXPECT_EQ(CommittedKinds(), (std::vector<std::string>{"credential.issue", "token.refuse"}));
  EXPECT_TRUE(errors_.Counts().empty());
}

// The same assertions sent from several threads at once: of each, exactly one is issued a
// JWT-SVID, the others are refused as replays, and the ledger holds one issuance per assertion.
TEST_F(TokenEndpointTest, ConcurrentUsesOfOneAssertionIssueExactlyOneToken) {
  Start({});
  RegisterSigner();
  constexpr int kAssertions = 10, kThreads = 4;
  std::vector<TokenRequest> requests;
  for (int i = 0; i < kAssertions; ++i) requests.push_back(AssertedSvidRequest(std::to_string(i)));
  std::vector<std::atomic<int>> issued(kAssertions), replays(kAssertions), other(kAssertions);
  std::atomic<int> answers{0};
  std::promise<void> all_answered;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAssertions; ++i) {
        svc_->TokenAsync(requests[i], [&, i](OAuthResult<IssuedToken> r) {
          if (r.ok()) {
            ++issued[i];
          } else if (r.error.description == "client assertion was already used") {
            ++replays[i];
          } else {
            ++other[i];
          }
          if (++answers == kAssertions * kThreads) all_answered.set_value();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  all_answered.get_future().wait();
  for (int i = 0; i < kAssertions; ++i) {
    EXPECT_EQ(issued[i].load(), 1) << "assertion " << i;
    EXPECT_EQ(replays[i].load(), kThreads - 1) << "assertion " << i;
    EXPECT_EQ(other[i].load(), 0) << "assertion " << i;
  }
  svc_.reset();
  std::vector<std::string> kinds = CommittedKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "credential.issue"), kAssertions);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "token.refuse"), kAssertions * (kThreads - 1));
}

// identity.db cannot store the jti (a full disk): the request is answered server_error (500,
// naming no file), nothing is issued or recorded, the failure is reported; once the disk has
// room, the same assertion (its jti was not kept) and the next work.
TEST_F(TokenEndpointTest, AJtiThatCannotBeStoredFailsTheRequestCleanly) {
  Start({});
  RegisterSigner();
  TokenRequest req = AssertedSvidRequest("full-disk");
  FaultVfs::Fail("identity.db", Fault::kDiskFull);
  auto out = svc_->Token(req);
  FaultVfs::Clear();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.error, "server_error");
  EXPECT_EQ(out.error.http_status, 500);
  EXPECT_EQ(out.error.description, "cannot record client assertion");
  EXPECT_EQ(errors_.Count("identity.assertion_jti"), 1u);
  EXPECT_EQ(ledger_->Size(), 0u) << "nothing issued, nothing recorded";

  auto again = svc_->Token(req);
  ASSERT_TRUE(again.ok()) << again.error.description;
  auto next = svc_->Token(AssertedSvidRequest("next"));
  ASSERT_TRUE(next.ok()) << next.error.description;
  EXPECT_EQ(svc_->Token(req).error.description, "client assertion was already used");
}

// The jtis of expired assertions are purged (at most once a minute, as assertions are verified),
// so the table holds only what can still be replayed.
TEST_F(TokenEndpointTest, TheJtisOfExpiredAssertionsArePurged) {
  Start({});
  RegisterSigner();
  ASSERT_TRUE(svc_->Token(AssertedSvidRequest("old")).ok());
  ASSERT_EQ(store_->UseAssertionJti("signer/old", Now() + 60).code(), StatusCode::kAlreadyExists);
  // Past its exp (60 s), the leeway (30 s) and the purge's margin (60 s).
  clock_.Advance(std::chrono::seconds(60 + 30 + 60 + 5));
  ASSERT_TRUE(svc_->Token(AssertedSvidRequest("new")).ok());
  EXPECT_TRUE(store_->UseAssertionJti("signer/old", 1).ok()) << "purged";
  EXPECT_EQ(store_->UseAssertionJti("signer/new", Now() + 60).code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace custody::identity
