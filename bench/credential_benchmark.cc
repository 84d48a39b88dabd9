// Just-in-time credentials (#23): issue and revoke latency (p50, p99) and throughput, in process
// (CredentialService over a World: the ledger fsyncs each batch, memory stores) against a private
// throwaway PostgreSQL cluster (store/testing/pg_cluster.h). An issue is a Cedar decision made
// durable, a lease, CREATE ROLE + grant in one transaction, and the durable issue event; a revoke
// is NOLOGIN, pg_terminate_backend, REASSIGN/DROP OWNED, DROP ROLE and the durable revoke event.
//
//   custody_credential_bench [--n 300] [--threads 4]
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "attribution/testing/world.h"
#include "credentials/credential_service.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "store/stores.h"
#include "store/testing/pg_cluster.h"

using namespace custody;
using Clock_ = std::chrono::steady_clock;

namespace {

double Ms(Clock_::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 300, threads = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  auto cluster = store::testing::PgCluster::StartPrivate();
  if (!cluster.ok()) return Fail("cluster", cluster.status());
  auto url = (*cluster)->NewDatabase();
  if (!url.ok()) return Fail("database", url.status());
  {
    PGconn* c = PQconnectdb(url->c_str());
    PQclear(PQexec(c, "CREATE TABLE orders (id int PRIMARY KEY)"));
    PQfinish(c);
  }
  auto w = attribution::testkit::World::Create(
      std::filesystem::temp_directory_path() / ("custody-cred-bench-" + std::to_string(::getpid())),
      {}, store::Backend::kMemory);
  if (!w.ok()) return Fail("world", w.status());
  attribution::testkit::World& world = **w;
  if (Status st =
          world.Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd);
      !st.ok())
    return Fail("register", st);
  auto pub = world.svc->PublishPolicies(
      "permit(principal, action == Action::\"issue_credential\", resource);", "", "bench");
  if (!pub.ok()) return Fail("publish", pub.status());
  auto session = world.Root("planner");
  if (!session.ok()) return Fail("session", session.status());

  auto store = store::OpenCredentialStore(store::StorageOptions::InMemory());
  events::Recorder recorder(*world.ledger);
  credentials::Database db;
  db.name = "orders";
  db.connect = *credentials::ParseAdminUrl(*url, "url");
  db.access["read"] = {"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}", 0};
  db.roles = std::make_shared<credentials::PgRoleManager>(*url, "", "orders");
  credentials::CredentialOptions o;
  o.databases.push_back(std::move(db));
  auto svc =
      credentials::CredentialService::Create(*world.tokens, *world.svc, **store, recorder,
                                             world.clock, world.random, world.errors, std::move(o));
  if (!svc.ok()) return Fail("service", svc.status());
  credentials::CredentialService& s = **svc;
  const credentials::IssueRequest req{session->token, "orders", "read", 600};

  // Sequential: the latency of one issue, then of one revoke.
  std::vector<std::string> roles;
  std::vector<double> issue_ms, revoke_ms;
  auto t0 = Clock_::now();
  for (int i = 0; i < n; ++i) {
    auto a = Clock_::now();
    auto c = s.Issue(req);
    if (!c.ok()) return Fail("issue", c.status());
    issue_ms.push_back(Ms(Clock_::now() - a));
    roles.push_back(c->lease.role);
  }
  double issue_s = Ms(Clock_::now() - t0) / 1000;
  t0 = Clock_::now();
  for (const std::string& role : roles) {
    auto a = Clock_::now();
    auto r = s.Revoke(role, "bench", "admin:bench");
    if (!r.ok() || r->state != store::LeaseState::kRevoked) {
      return Fail("revoke", r.ok() ? InternalError("not revoked") : r.status());
    }
    revoke_ms.push_back(Ms(Clock_::now() - a));
  }
  double revoke_s = Ms(Clock_::now() - t0) / 1000;
  std::printf("issue  sequential: n=%d p50=%.2f ms p99=%.2f ms  %.0f/s\n", n, Pct(issue_ms, 0.5),
              Pct(issue_ms, 0.99), n / issue_s);
  std::printf("revoke sequential: n=%d p50=%.2f ms p99=%.2f ms  %.0f/s\n", n, Pct(revoke_ms, 0.5),
              Pct(revoke_ms, 0.99), n / revoke_s);

  // Concurrent: `threads` callers issue at once, then revoke what they issued at once (one
  // administrative connection per database serialises the role statements; decisions and events
  // batch). Each call's latency is kept for p50/p99.
  std::vector<std::thread> pool;
  std::vector<std::vector<std::string>> made(threads);
  std::vector<std::vector<double>> ci(threads), cr(threads);
  int per = n / threads;
  t0 = Clock_::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        auto a = Clock_::now();
        auto c = s.Issue(req);
        if (c.ok()) {
          ci[t].push_back(Ms(Clock_::now() - a));
          made[t].push_back(c->lease.role);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  double conc_s = Ms(Clock_::now() - t0) / 1000;
  pool.clear();
  std::vector<size_t> revoked(threads, 0);
  t0 = Clock_::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (const std::string& role : made[t]) {
        auto a = Clock_::now();
        auto r = s.Revoke(role, "bench", "admin:bench");
        if (r.ok() && r->state == store::LeaseState::kRevoked) {
          cr[t].push_back(Ms(Clock_::now() - a));
          revoked[t]++;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  double conc_r = Ms(Clock_::now() - t0) / 1000;
  std::vector<double> all_i, all_r;
  size_t total = 0, total_r = 0;
  for (int t = 0; t < threads; ++t) {
    all_i.insert(all_i.end(), ci[t].begin(), ci[t].end());
    all_r.insert(all_r.end(), cr[t].begin(), cr[t].end());
    total += made[t].size();
    total_r += revoked[t];
  }
  std::printf("issue  %d threads: n=%zu p50=%.2f ms p99=%.2f ms  %.0f/s\n", threads, total,
              Pct(all_i, 0.5), Pct(all_i, 0.99), static_cast<double>(total) / conc_s);
  std::printf("revoke %d threads: n=%zu p50=%.2f ms p99=%.2f ms  %.0f/s\n", threads, total_r,
              Pct(all_r, 0.5), Pct(all_r, 0.99), static_cast<double>(total_r) / conc_r);
  if (total != static_cast<size_t>(per) * threads || total_r != total) {
    std::fprintf(stderr, "concurrent: %zu of %d issued, %zu revoked\n", total, per * threads,
                 total_r);
    return 1;
  }
  return 0;
}
