// Attribution benchmark driver: authorize+record per call (in process and over loopback HTTP),
// containment latency, and `trace` latency on a large ledger. Everything runs on real SQLite
// files (ledger synchronous=FULL: each decision is durable before its answer) in a temporary
// directory. Not a test: figures go to docs/PERFORMANCE.md.
//
//   ./build/release/bench/custody_attribution_bench --mode inprocess --threads 1,4,16
//   ./build/release/bench/custody_attribution_bench --mode http --threads 1,4,16
//   ./build/release/bench/custody_attribution_bench --mode contain --rounds 200
//   ./build/release/bench/custody_attribution_bench --mode trace --fill 10000000
// Any mode: --postgres-url postgresql://… runs on that (empty) PostgreSQL database.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/config.h"
#include "api/service.h"
#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/stream_logger.h"
#include "http/client.h"
#include "identity/token_service.h"
#include "investigate/investigate.h"
#include "ledger/ledger.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clk = std::chrono::steady_clock;

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) {
    fprintf(stderr, "%s: %s\n", what, r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}
void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

constexpr const char* kPolicies = R"(
@id("github") permit(principal, action == Action::"call_tool", resource in Server::"github");
@id("docs") permit(principal, action == Action::"call_tool", resource in Server::"docs")
  when { context.session.initiator.verified || context.counters.calls < 1000000 };
@id("rate") forbid(principal, action, resource) when { context.counters.calls_last_minute > 100000000 };
@id("prod") @contain("session")
forbid(principal, action, resource in Server::"prod-db")
  when { context.session.environment == "dev" };
)";

struct Percentiles {
  double p50 = 0, p99 = 0;
};
Percentiles Pct(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}
double Us(Clk::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Ledger, identity and attribution in one temporary directory (the tests' World), with the
// benchmark's policies and two agents.
// --postgres-url URL: every store in that (empty) PostgreSQL database instead of SQLite files.
std::string g_postgres_url;

struct World {
  World() {
    w = Must(attribution::testkit::World::Create(
                 fs::temp_directory_path() / ("custody-attr-bench-" + std::to_string(::getpid())),
                 {}, g_postgres_url.empty() ? store::Backend::kSqlite : store::Backend::kPostgres,
                 g_postgres_url),
             "world");
    Must(w->svc->PublishPolicies(kPolicies, "", "bench").status(), "publish");
    Must(w->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd),
         "register");
    Must(w->Register("worker", {"*"}, {}, identity::Environment::kDev), "register");
    svc = w->svc.get();
  }
  std::string Token(const std::string& agent, const std::string& parent = "") {
    return Must(parent.empty() ? w->Root(agent) : w->Child(parent, agent), "session").token;
  }
  static attribution::AuthorizeRequest Call(const std::string& token, const std::string& server,
                                            const std::string& tool) {
    return attribution::testkit::World::Call(
        token, server, tool, R"({"repo":"custody","title":"benchmark issue","labels":["perf"]})");
  }
  std::unique_ptr<attribution::testkit::World> w;
  attribution::AttributionService* svc = nullptr;
};

// Each thread has its own session and keeps `window` authorizations in flight.
void InProcess(const std::vector<int>& thread_counts, int calls_per_thread, int window) {
  World w;
  printf("# in process: authorize + durable decision record, window %d per thread\n", window);
  printf("threads  calls      calls/s    p50_us    p99_us\n");
  for (int threads : thread_counts) {
    std::vector<std::string> tokens;
    for (int t = 0; t < threads; ++t) tokens.push_back(w.Token("planner"));
    std::vector<std::vector<double>> lat(threads);
    auto start = Clk::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        std::mutex mu;
        std::condition_variable cv;
        int in_flight = 0;
        for (int i = 0; i < calls_per_thread; ++i) {
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return in_flight < window; });
            ++in_flight;
          }
          auto t0 = Clk::now();
          w.svc->Authorize(w.Call(tokens[t], "github", "create_issue"),
                           [&, t0](Result<attribution::AuthorizeResult> r) {
                             if (!r.ok() || !r->allowed) std::abort();
                             std::lock_guard<std::mutex> lock(mu);
                             lat[t].push_back(Us(Clk::now() - t0));
                             --in_flight;
                             cv.notify_one();
                           });
        }
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return in_flight == 0; });
      });
    }
    for (auto& th : ts) th.join();
    double secs = std::chrono::duration<double>(Clk::now() - start).count();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    Percentiles p = Pct(all);
    printf("%7d %6zu %12.0f %9.0f %9.0f\n", threads, all.size(), all.size() / secs, p.p50, p.p99);
  }
}

// The real `custody serve` stack in process (api::Service on 127.0.0.1:0), driven by keep-alive
// HTTP clients, one request in flight per client.
void Http(const std::vector<int>& thread_counts, int calls_per_thread) {
  fs::path dir = fs::temp_directory_path() / ("custody-attr-http-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  SystemClock clock;
  SystemRandom random;
  StreamLogger log(LogLevel::kError, true, clock);
  api::Config config;
  config.data_dir = dir.string();
  config.listen = "127.0.0.1:0";
  auto service = Must(api::Service::Open(config, {true}, clock, random, log), "service");
  Must(service->Start(), "start");
  std::string admin = service->bootstrap_token()->token;
  http::BlockingHttpClient c("127.0.0.1", service->port(), {});
  auto post = [&](const std::string& target, const std::string& body, const std::string& bearer,
                  const char* ct = "application/json") {
    http::ClientRequest r;
    r.method = "POST";
    r.target = target;
    r.body = body;
    r.headers.Set("content-type", ct);
    if (!bearer.empty()) r.headers.Set("authorization", "Bearer " + bearer);
    auto resp = c.Send(r);
    if (!resp.ok() || resp->status >= 300) {
      fprintf(stderr, "%s: %s\n", target.c_str(), resp.ok() ? resp->body.c_str() : "no answer");
      std::exit(1);
    }
    return json::parse(resp->body).as_object();
  };
  json::object pol{{"policies", kPolicies}};
  post("/v1/policies", json::serialize(pol), admin);
  auto reg = post("/v1/agents",
                  R"({"name":"planner","environment":"dev","grants":["*"],)"
                  R"("permissions":["assert_initiator"],"client_secret":true})",
                  admin);
  std::string secret(reg["client_secret"].as_string());
  auto form = [](std::vector<std::pair<std::string, std::string>> f) {
    std::string out;
    for (auto& [k, v] : f) {
      if (!out.empty()) out += '&';
      out += k + '=';
      for (unsigned char ch : v) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
          out += static_cast<char>(ch);
        } else {
          char buf[4];
          snprintf(buf, sizeof buf, "%%%02X", ch);
          out += buf;
        }
      }
    }
    return out;
  };
  auto session = [&] {
    auto svid = post("/oauth2/token",
                     form({{"grant_type", "client_credentials"},
                           {"client_id", "planner"},
                           {"client_secret", secret},
                           {"audience", service->issuer()}}),
                     "", "application/x-www-form-urlencoded");
    auto tok = post(
        "/oauth2/token",
        form({{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
              {"client_id", "planner"},
              {"client_secret", secret},
              {"subject_token", R"({"sub":"alice@example.com","iss":"hr"})"},
              {"subject_token_type", "urn:custody:params:oauth:token-type:initiator-assertion"},
              {"actor_token", std::string(svid["access_token"].as_string())},
              {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
              {"audience", "custody"}}),
        "", "application/x-www-form-urlencoded");
    return std::string(tok["access_token"].as_string());
  };
  printf(
      "# loopback HTTP: POST /v1/actions:authorize, keep-alive, 1 in flight per client,\n"
      "# server worker threads = %d\n",
      service->threads());
  printf("clients  calls      calls/s    p50_us    p99_us\n");
  const std::string body =
      R"({"action":"call_tool","target":{"server":"github","tool":"create_issue"},)"
      R"("arguments":{"repo":"custody","title":"benchmark issue","labels":["perf"]}})";
  for (int threads : thread_counts) {
    std::vector<std::string> tokens;
    for (int t = 0; t < threads; ++t) tokens.push_back(session());
    std::vector<std::vector<double>> lat(threads);
    auto start = Clk::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        http::BlockingHttpClient client("127.0.0.1", service->port(), {});
        http::ClientRequest r;
        r.method = "POST";
        r.target = "/v1/actions:authorize";
        r.body = body;
        r.headers.Set("content-type", "application/json");
        r.headers.Set("authorization", "Bearer " + tokens[t]);
        for (int i = 0; i < calls_per_thread; ++i) {
          auto t0 = Clk::now();
          auto resp = client.Send(r);
          if (!resp.ok() || resp->status != 200) std::abort();
          lat[t].push_back(Us(Clk::now() - t0));
        }
      });
    }
    for (auto& th : ts) th.join();
    double secs = std::chrono::duration<double>(Clk::now() - start).count();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    Percentiles p = Pct(all);
    printf("%7d %6zu %12.0f %9.0f %9.0f\n", threads, all.size(), all.size() / secs, p.p50, p.p99);
  }
  service->Shutdown();
  service.reset();
  fs::remove_all(dir);
}

// Time from sending the call that trips a @contain policy to receiving the refusal of the
// session's (and its child's) next call.
void Contain(int rounds) {
  World w;
  std::vector<double> trip_us, to_refusal_us, child_refusal_us;
  for (int i = 0; i < rounds; ++i) {
    std::string root = w.Token("planner");
    std::string worker = w.Token("worker", root);
    std::string child = w.Token("worker", worker);
    auto t0 = Clk::now();
    auto trip = w.svc->AuthorizeSync(w.Call(worker, "prod-db", "drop_table"));
    auto t1 = Clk::now();
    if (!trip.ok() || trip->contained.empty()) std::abort();
    auto next = w.svc->AuthorizeSync(w.Call(worker, "github", "list_issues"));
    auto t2 = Clk::now();
    auto next_child = w.svc->AuthorizeSync(w.Call(child, "github", "list_issues"));
    auto t3 = Clk::now();
    if (!next.ok() || !next->session_revoked || !next_child.ok() || !next_child->session_revoked)
      std::abort();
    trip_us.push_back(Us(t1 - t0));
    to_refusal_us.push_back(Us(t2 - t0));
    child_refusal_us.push_back(Us(t3 - t0));
  }
  auto a = Pct(trip_us), b = Pct(to_refusal_us), c = Pct(child_refusal_us);
  printf("# containment, %d rounds (in process; each step durable in the ledger)\n", rounds);
  printf("tripping call answered (session tree already revoked): p50 %.0f us  p99 %.0f us\n", a.p50,
         a.p99);
  printf("trip sent -> next call of the session refused:          p50 %.0f us  p99 %.0f us\n",
         b.p50, b.p99);
  printf("trip sent -> next call of its child refused:            p50 %.0f us  p99 %.0f us\n",
         c.p50, c.p99);
}

// Fills the ledger (and the action index) with `fill` events, then traces real actions.
void Trace(uint64_t fill, int reps) {
  World w;
  std::string root = w.Token("planner");
  std::string worker = w.Token("worker", root);
  auto start = Clk::now();
  {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t in_flight = 0;
    std::vector<attribution::ActionRow> rows;
    for (uint64_t i = 0; i < fill; ++i) {
      std::string id = "filler-" + std::to_string(i);
      std::string sid = "s-" + std::to_string(i % 100000);
      std::string ev = R"({"kind":"action.decision","event_id":")" + id +
                       R"(","actor":{"agent":"agent-)" + std::to_string(i % 1000) +
                       R"(","session":")" + sid + R"("},"decision":"allow"})";
      store::EventColumns cols;
      cols.event_id = id;
      cols.kind = "action.decision";
      cols.session = sid;
      cols.agent = "agent-" + std::to_string(i % 1000);
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return in_flight < 8192; });
        ++in_flight;
      }
      Must(w.w->ledger->AppendAsync(ev, cols,
                                    [&](Result<ledger::AppendResult> r) {
                                      if (!r.ok()) std::abort();
                                      std::lock_guard<std::mutex> lock(mu);
                                      --in_flight;
                                      cv.notify_one();
                                    }),
           "append");
      attribution::ActionRow row;
      row.action_id = id;
      row.decision_index = static_cast<int64_t>(i);
      row.sid = sid;
      row.root_sid = sid;
      row.agent = cols.agent;
      row.initiator = "user-" + std::to_string(i % 5000);
      row.action = "call_tool";
      row.target = "srv/tool-" + std::to_string(i % 300);
      row.decision = "allow";
      row.trace_id = std::to_string(i);
      row.span_id = "0";
      row.txn = sid;
      row.time_ms = static_cast<int64_t>(i);
      rows.push_back(std::move(row));
      if (rows.size() == 50000) {
        Must(w.w->store->WriteActions(rows, {}), "index");
        rows.clear();
      }
      if (i % 1000000 == 999999) {
        fprintf(stderr, "filled %llu events (%.0f s)\n", static_cast<unsigned long long>(i + 1),
                std::chrono::duration<double>(Clk::now() - start).count());
      }
    }
    Must(w.w->store->WriteActions(rows, {}), "index");
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  double fill_s = std::chrono::duration<double>(Clk::now() - start).count();
  std::vector<std::string> actions;
  for (int i = 0; i < 20; ++i) {
    auto r = w.svc->AuthorizeSync(w.Call(worker, "github", "tool-" + std::to_string(i)));
    actions.push_back(r->action_id);
  }
  w.svc->FlushIndex();
  investigate::Investigator inv(*w.w->tokens, *w.w->ledger, *w.w->svc, w.w->clock);
  std::vector<double> lat;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clk::now();
    auto t = inv.Trace(actions[static_cast<size_t>(i) % actions.size()]);
    lat.push_back(Us(Clk::now() - t0));
    if (!t.ok()) {
      fprintf(stderr, "trace: %s\n", t.status().ToString().c_str());
      std::exit(1);
    }
  }
  auto p = Pct(lat);
  printf("# trace on a ledger of %llu events (+%zu real actions); filled in %.0f s\n",
         static_cast<unsigned long long>(w.w->ledger->Size()), actions.size(), fill_s);
  printf("trace: %d calls  p50 %.0f us  p99 %.0f us\n", reps, p.p50, p.p99);
  auto sz = [&](const char* f) {
    std::error_code ec;
    return static_cast<double>(fs::file_size(w.w->dir / f, ec)) / (1 << 20);
  };
  printf("ledger.db %.0f MiB, attribution.db %.0f MiB\n", sz("ledger.db"), sz("attribution.db"));
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t c = s.find(',', pos);
    if (c == std::string::npos) c = s.size();
    out.push_back(std::stoi(s.substr(pos, c - pos)));
    pos = c + 1;
  }
  return out;
}

}  // namespace
}  // namespace custody

int main(int argc, char** argv) {
  std::string mode = "inprocess", threads = "1,4,16";
  int calls = 2000, window = 64, rounds = 200, reps = 1000;
  uint64_t fill = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--mode")
      mode = v;
    else if (k == "--threads")
      threads = v;
    else if (k == "--calls")
      calls = std::stoi(v);
    else if (k == "--window")
      window = std::stoi(v);
    else if (k == "--rounds")
      rounds = std::stoi(v);
    else if (k == "--fill")
      fill = std::stoull(v);
    else if (k == "--reps")
      reps = std::stoi(v);
    else if (k == "--postgres-url")
      custody::g_postgres_url = v;
    else {
      fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (mode == "inprocess")
    custody::InProcess(custody::ParseList(threads), calls, window);
  else if (mode == "http")
    custody::Http(custody::ParseList(threads), calls);
  else if (mode == "contain")
    custody::Contain(rounds);
  else if (mode == "trace")
    custody::Trace(fill, reps);
  else {
    fprintf(stderr, "--mode inprocess|http|contain|trace\n");
    return 2;
  }
  return 0;
}
