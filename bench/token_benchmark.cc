// Identity throughput, in process: tokens issued per second (client_credentials JWT-SVIDs and
// RFC 8693 exchanges) and access-token verifications per second with and without the
// verified-token cache. TokenService runs against a real SQLite identity store (WAL,
// synchronous=FULL, opened through store/stores.h) in a temporary directory and the system clock.
//
// The event sink is the benchmark argument "ledger": 0 is a no-op sink (TokenService alone),
// 1 is a real Ledger on SQLite in the same directory, appended synchronously as `custody serve`
// does (every event durable, fsynced, before the token is handed out).
//
//   cmake --preset release -B build/jose-rel
//   cmake --build build/jose-rel --target custody_token_benchmark
//   ./build/jose-rel/bench/custody_token_benchmark
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/encoding.h"
#include "common/error_reporter.h"
#include "common/logger.h"
#include "common/random.h"
#include "crypto/ed25519.h"
#include "crypto/jose.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "store/stores.h"

namespace custody::identity {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
constexpr const char* kIssuer = "https://custody.bench";

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) {
    fprintf(stderr, "%s: %s\n", what, r.status().ToString().c_str());
    std::abort();
  }
  return std::move(*r);
}

// One TokenService on fresh SQLite files, with one registered agent ("bench") whose client key
// we hold.
class Fixture {
 public:
  Fixture(bool with_ledger, size_t cache_entries) {
    static int n = 0;
    dir_ = fs::temp_directory_path() /
           ("custody-token-bench-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = Must(store::OpenIdentityStore(store::StorageOptions::InDirectory(dir_.string())),
                  "identity store");
    IdentityEventSink sink;
    if (with_ledger) {
      ledger::LedgerOptions lo;
      lo.origin = "custody.bench/ledger";
      ledger_ = Must(ledger::Ledger::Open(
                         Must(store::OpenLedgerFile((dir_ / "ledger.db").string()), "ledger store"),
                         Must(crypto::Ed25519PrivateKey::Generate(), "key"), lo),
                     "ledger");
      ledger::Ledger* led = ledger_.get();
      sink = [led](const std::string& e) { return led->Append(e).status(); };
    }
    TokenServiceOptions o;
    o.trust_domain = "custody.bench";
    o.issuer = kIssuer;
    o.verify_cache_entries = cache_entries;
    svc_ = Must(TokenService::Create(*store_, clock_, random_, errors_, sink, o), "token service");
    client_key_ = std::make_unique<crypto::EcdsaP256PrivateKey>(
        Must(crypto::EcdsaP256PrivateKey::Generate(), "client key"));
    Agent a;
    a.name = "bench";
    a.grants = {"tools/*"};
    a.permissions = {"assert_initiator"};
    a.max_delegation_depth = 3;
    a.client_jwk = crypto::EcPublicJwkJson(client_key_->public_key(), "bench-key");
    agent_ = Must(svc_->RegisterAgent(a, false, "bench"), "register").agent;
  }
  ~Fixture() {
    svc_.reset();
    ledger_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // A client assertion as the agent would sign it (RFC 7523), each with a fresh jti.
  std::string Assertion() {
    int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
    json::object c{
        {"iss", "bench"},   {"sub", "bench"}, {"aud", std::string(kIssuer) + "/oauth2/token"},
        {"exp", now + 120}, {"iat", now},     {"jti", "a-" + std::to_string(++assertions_)}};
    return Must(crypto::SignJwsEs256(R"({"alg":"ES256","kid":"bench-key"})", json::serialize(c),
                                     *client_key_),
                "assertion");
  }
  std::string Svid() {
    auto t = svc_->IssueSvid(agent_, kIssuer);
    if (!t.ok()) std::abort();
    return t.value->access_token;
  }
  ExchangeRequest RootRequest(const std::string& svid) const {
    ExchangeRequest r;
    r.subject_token = R"({"sub":"nightly-workflow","iss":"ci"})";
    r.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
    r.actor_token = svid;
    r.actor_token_type = std::string(kTokenTypeJwt);
    r.audience = "gateway";
    r.scope = "tools/read";
    r.objective = "benchmark";
    return r;
  }

  TokenService& svc() { return *svc_; }
  const Agent& agent() const { return agent_; }

 private:
  fs::path dir_;
  SystemClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  std::unique_ptr<store::IdentityStore> store_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<TokenService> svc_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> client_key_;
  Agent agent_;
  int assertions_ = 0;
};

// client_credentials without client authentication: sign a JWT-SVID and record the event.
void BM_IssueSvid(benchmark::State& state) {
  Fixture f(state.range(0) != 0, 4096);
  for (auto _ : state) {
    auto t = f.svc().IssueSvid(f.agent(), kIssuer);
    if (!t.ok()) state.SkipWithError(t.error.description.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueSvid)->ArgName("ledger")->Arg(0)->Arg(1)->UseRealTime();

// The whole token endpoint for client_credentials: verify the client's private_key_jwt
// assertion (ES256), record its jti (replay protection, a SQLite insert), then issue. The
// assertions are signed in batches outside the timed region (that is the client's work).
void BM_ClientCredentials(benchmark::State& state) {
  Fixture f(state.range(0) != 0, 4096);
  std::vector<std::string> batch;
  size_t next = 0;
  for (auto _ : state) {
    if (next == batch.size()) {
      state.PauseTiming();
      batch.clear();
      for (int i = 0; i < 512; ++i) batch.push_back(f.Assertion());
      next = 0;
      state.ResumeTiming();
    }
    auto client = f.svc().AuthenticateClient("bench", std::string(kClientAssertionTypeJwtBearer),
                                             batch[next++], "");
    if (!client.ok()) state.SkipWithError(client.error.description.c_str());
    auto t = f.svc().IssueSvid(*client.value, kIssuer);
    if (!t.ok()) state.SkipWithError(t.error.description.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClientCredentials)->ArgName("ledger")->Arg(0)->Arg(1)->UseRealTime();

// RFC 8693 exchange starting a root session (initiator assertion): verify the actor JWT-SVID,
// sign the at+jwt, insert the session, record the event.
void BM_ExchangeRoot(benchmark::State& state) {
  Fixture f(state.range(0) != 0, 4096);
  ExchangeRequest r = f.RootRequest(f.Svid());
  for (auto _ : state) {
    auto t = f.svc().Exchange(f.agent(), r);
    if (!t.ok()) state.SkipWithError(t.error.description.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExchangeRoot)->ArgName("ledger")->Arg(0)->Arg(1)->UseRealTime();

// Exchange of a parent access token for a child session: the parent is verified too.
void BM_ExchangeChild(benchmark::State& state) {
  Fixture f(state.range(0) != 0, static_cast<size_t>(state.range(1)));
  std::string svid = f.Svid();
  auto root = f.svc().Exchange(f.agent(), f.RootRequest(svid));
  if (!root.ok()) std::abort();
  ExchangeRequest r = f.RootRequest(svid);
  r.subject_token = root.value->access_token;
  r.subject_token_type = std::string(kTokenTypeAccessToken);
  for (auto _ : state) {
    auto t = f.svc().Exchange(f.agent(), r);
    if (!t.ok()) state.SkipWithError(t.error.description.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExchangeChild)
    ->ArgNames({"ledger", "cache"})
    ->Args({0, 0})
    ->Args({0, 4096})
    ->UseRealTime();

// VerifyAccessToken over a pool of distinct live tokens, round-robin: signature, claims,
// session lookup and jti revocation check. "cache" is verify_cache_entries (0: off). With the
// cache, every verification after the first round is a hit; session and revocation state are
// still read from SQLite on each one.
void BM_VerifyAccessToken(benchmark::State& state) {
  Fixture f(false, static_cast<size_t>(state.range(0)));
  const size_t pool = static_cast<size_t>(state.range(1));
  std::string svid = f.Svid();
  std::vector<std::string> tokens;
  for (size_t i = 0; i < pool; ++i) {
    auto t = f.svc().Exchange(f.agent(), f.RootRequest(svid));
    if (!t.ok()) std::abort();
    tokens.push_back(t.value->access_token);
  }
  size_t i = 0;
  for (auto _ : state) {
    auto v = f.svc().VerifyAccessToken(tokens[i], "gateway");
    if (!v.ok()) state.SkipWithError(v.status().ToString().c_str());
    benchmark::DoNotOptimize(v);
    if (++i == pool) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyAccessToken)
    ->ArgNames({"cache", "tokens"})
    ->Args({0, 1000})
    ->Args({4096, 1000})
    ->Args({0, 1})
    ->Args({4096, 1})
    ->UseRealTime();

// Introspection (RFC 7662) is VerifyAccessToken plus building the JSON answer.
void BM_Introspect(benchmark::State& state) {
  Fixture f(false, static_cast<size_t>(state.range(0)));
  auto t = f.svc().Exchange(f.agent(), f.RootRequest(f.Svid()));
  if (!t.ok()) std::abort();
  for (auto _ : state) benchmark::DoNotOptimize(f.svc().Introspect(t.value->access_token));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Introspect)->ArgName("cache")->Arg(0)->Arg(4096)->UseRealTime();

// Reference points on the same run (the machine's load shows in them): one ES256 signature and
// one verification of a token-sized input, nothing else.
void BM_Es256Sign(benchmark::State& state) {
  auto key = Must(crypto::EcdsaP256PrivateKey::Generate(), "key");
  std::string input(400, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(key.Sign(AsBytes(input)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Es256Sign)->UseRealTime();

void BM_Es256Verify(benchmark::State& state) {
  auto key = Must(crypto::EcdsaP256PrivateKey::Generate(), "key");
  std::string input(400, 'x');
  auto sig = Must(key.Sign(AsBytes(input)), "sign");
  for (auto _ : state) benchmark::DoNotOptimize(key.public_key().Verify(AsBytes(input), sig));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Es256Verify)->UseRealTime();

}  // namespace
}  // namespace custody::identity

BENCHMARK_MAIN();
