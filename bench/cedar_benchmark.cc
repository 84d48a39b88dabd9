// Cedar authorization benchmark on an agent-authorization workload: agents in (nested) groups,
// tools in servers, actions in an action group, and attribute conditions on the request context
// and on entities. Runs with 10, 100 and 1,000 policies and reports per-request median and p99.
//
//   custody_cedar_benchmark [--benchmark_filter=...]
//   CEDAR_BENCH_DUMP=DIR custody_cedar_benchmark   # also writes DIR/{policies_N.cedar,
//                                                  # entities.json, requests.jsonl} for
//                                                  # bench/cedar/wasm_bench.mjs
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "policy/authorizer.h"
#include "policy/json_io.h"

namespace custody::policy {
namespace {

constexpr int kAgents = 1000;
constexpr int kGroups = 20;
constexpr int kServers = 50;
constexpr int kToolsPerServer = 10;
constexpr int kRequests = 2000;

struct Workload {
  std::string entities_json;
  std::vector<std::string> request_lines;
};

std::string Uid(const std::string& type, const std::string& id) {
  return "{\"type\":\"" + type + "\",\"id\":\"" + id + "\"}";
}

const Workload& GetWorkload() {
  static const Workload w = [] {
    Workload w;
    std::mt19937 rng(42);
    std::string e = "[";
    auto add = [&](const std::string& uid, const std::string& attrs, const std::string& parents) {
      if (e.size() > 1) e += ",\n";
      e += "{\"uid\":" + uid + ",\"attrs\":{" + attrs + "},\"parents\":[" + parents + "]}";
    };
    add(Uid("AgentGroup", "all"), "", "");
    for (int g = 0; g < kGroups; ++g)
      add(Uid("AgentGroup", "g" + std::to_string(g)), "", Uid("AgentGroup", "all"));
    for (int a = 0; a < kAgents; ++a) {
      std::string parents = Uid("AgentGroup", "g" + std::to_string(a % kGroups));
      if (a % 3 == 0) parents += "," + Uid("AgentGroup", "g" + std::to_string(rng() % kGroups));
      add(Uid("Agent", "a" + std::to_string(a)),
          "\"clearance\":" + std::to_string(rng() % 5) + ",\"owner\":\"team" +
              std::to_string(a % 7) + "\"",
          parents);
    }
    for (int s = 0; s < kServers; ++s) {
      add(Uid("Server", "s" + std::to_string(s)),
          "\"env\":\"" + std::string(s % 4 ? "prod" : "dev") + "\"", "");
      for (int t = 0; t < kToolsPerServer; ++t) {
        add(Uid("Tool", "s" + std::to_string(s) + "t" + std::to_string(t)),
            "\"sensitivity\":" + std::to_string(rng() % 5) +
                ",\"readOnly\":" + (t % 2 ? "true" : "false"),
            Uid("Server", "s" + std::to_string(s)));
      }
    }
    add(Uid("Action", "any"), "", "");
    for (const char* act : {"call", "list", "read"})
      add(Uid("Action", act), "", Uid("Action", "any"));
    w.entities_json = e + "]";

    const char* actions[] = {"call", "call", "call", "list", "read"};
    for (int i = 0; i < kRequests; ++i) {
      int s = rng() % kServers;
      std::string tool = "s" + std::to_string(s) + "t" + std::to_string(rng() % kToolsPerServer);
      std::string ctx = "{\"risk\":" + std::to_string(rng() % 100) +
                        ",\"session_calls\":" + std::to_string(rng() % 150) +
                        ",\"mfa\":" + (rng() % 4 ? "true" : "false") + ",\"env\":\"" +
                        (rng() % 5 ? "prod" : "dev") +
                        "\",\"source_ip\":{\"__extn\":{\"fn\":\"ip\",\"arg\":\"10.0." +
                        std::to_string(rng() % 4) + "." + std::to_string(rng() % 250) + "\"}}}";
      w.request_lines.push_back(
          "{\"principal\":" + Uid("Agent", "a" + std::to_string(rng() % kAgents)) +
          ",\"action\":" + Uid("Action", actions[rng() % 5]) +
          ",\"resource\":" + Uid("Tool", tool) + ",\"context\":" + ctx + "}");
    }
    return w;
  }();
  return w;
}

// N policies: mostly scoped permits (group -> server, agent -> tool), a few forbids, and a few
// unscoped guard rails that every request evaluates.
std::string PolicyText(int n) {
  std::mt19937 rng(1000 + n);
  std::string out =
      "@id(\"mfa-for-calls\")\nforbid(principal is Agent, action == Action::\"call\", resource)\n"
      "  unless { context.mfa };\n"
      "@id(\"high-risk\")\nforbid(principal, action, resource) when { context.risk > 95 };\n";
  for (int i = 2; i < n; ++i) {
    int kind = static_cast<int>(rng() % 10);
    std::string g = "AgentGroup::\"g" + std::to_string(rng() % kGroups) + "\"";
    std::string s = "Server::\"s" + std::to_string(rng() % kServers) + "\"";
    std::string a = "Agent::\"a" + std::to_string(rng() % kAgents) + "\"";
    std::string t = "Tool::\"s" + std::to_string(rng() % kServers) + "t" +
                    std::to_string(rng() % kToolsPerServer) + "\"";
    if (kind < 5) {
      out += "permit(principal in " + g + ", action == Action::\"call\", resource in " + s +
             ")\n  when { context.risk < " + std::to_string(40 + rng() % 50) +
             " && context.env == \"prod\" && resource.sensitivity <= principal.clearance };\n";
    } else if (kind < 7) {
      out += "permit(principal == " + a +
             ", action in [Action::\"call\", Action::\"list\"], resource == " + t +
             ")\n  when { context.session_calls < 100 && "
             "context.source_ip.isInRange(ip(\"10.0.0.0/16\")) };\n";
    } else if (kind < 9) {
      out += "permit(principal in " + g +
             ", action in [Action::\"list\", Action::\"read\"], resource is Tool in " + s +
             ")\n  when { resource.readOnly || principal.owner like \"team*\" };\n";
    } else {
      out += "forbid(principal in " + g + ", action, resource in " + s +
             ")\n  when { context.session_calls > " + std::to_string(100 + rng() % 40) + " };\n";
    }
  }
  return out;
}

// The 10-policy set plus (n - 10) policies for other tenants (groups and servers the requests
// never touch): the work per request should stay flat as n grows, thanks to the scope index.
std::string TenantPolicyText(int n) {
  std::string out = PolicyText(10);
  std::mt19937 rng(7000 + n);
  for (int i = 10; i < n; ++i) {
    std::string g = "AgentGroup::\"tenant" + std::to_string(i) + "\"";
    std::string s = "Server::\"tenant" + std::to_string(i) + "\"";
    if (i % 3 == 0) {
      out += "forbid(principal in " + g + ", action, resource in " + s +
             ") when { context.risk > 50 };\n";
    } else {
      out += "permit(principal in " + g + ", action == Action::\"call\", resource in " + s +
             ")\n  when { context.risk < " + std::to_string(40 + rng() % 50) +
             " && context.env == \"prod\" };\n";
    }
  }
  return out;
}

struct Fixture {
  PolicySet policies;
  Entities entities;
  std::vector<Request> requests;
};

Fixture Build(int n, bool tenants = false) {
  const Workload& w = GetWorkload();
  auto ps = PolicySet::FromText(tenants ? TenantPolicyText(n) : PolicyText(n));
  auto es = ParseEntitiesJson(w.entities_json, nullptr);
  if (!ps.ok() || !es.ok()) std::abort();
  Fixture f{std::move(ps).value(), std::move(es).value(), {}};
  for (const auto& line : w.request_lines) {
    auto r = ParseRequestJson(line, nullptr);
    if (!r.ok()) std::abort();
    f.requests.push_back(std::move(r).value());
  }
  return f;
}

void DumpIfAsked() {
  const char* dir = std::getenv("CEDAR_BENCH_DUMP");
  if (!dir) return;
  const Workload& w = GetWorkload();
  std::ofstream(std::string(dir) + "/entities.json") << w.entities_json;
  std::ofstream req(std::string(dir) + "/requests.jsonl");
  for (const auto& l : w.request_lines) req << l << "\n";
  for (int n : {10, 100, 1000}) {
    std::ofstream(std::string(dir) + "/policies_" + std::to_string(n) + ".cedar") << PolicyText(n);
    std::ofstream(std::string(dir) + "/tenants_" + std::to_string(n) + ".cedar")
        << TenantPolicyText(n);
  }
}

// Times every request individually to report the latency distribution.
void Latency(benchmark::State& state, bool tenants) {
  Fixture f = Build(static_cast<int>(state.range(0)), tenants);
  std::vector<double> samples;
  samples.reserve(1 << 20);
  size_t i = 0, allows = 0;
  for (auto _ : state) {
    const Request& r = f.requests[i++ % f.requests.size()];
    auto t0 = std::chrono::steady_clock::now();
    Response resp = f.policies.IsAuthorized(r, f.entities);
    auto t1 = std::chrono::steady_clock::now();
    allows += resp.decision == Decision::kAllow;
    benchmark::DoNotOptimize(resp);
    samples.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(samples.begin(), samples.end());
  if (!samples.empty()) {
    state.counters["p50_us"] = samples[samples.size() / 2];
    state.counters["p99_us"] = samples[samples.size() * 99 / 100];
    state.counters["allow_pct"] = 100.0 * allows / samples.size();
  }
}
void BM_AuthorizeLatency(benchmark::State& state) { Latency(state, false); }
BENCHMARK(BM_AuthorizeLatency)->Arg(10)->Arg(100)->Arg(1000);
// Same requests; the extra policies belong to other tenants.
void BM_AuthorizeLatencyOtherTenants(benchmark::State& state) { Latency(state, true); }
BENCHMARK(BM_AuthorizeLatencyOtherTenants)->Arg(10)->Arg(100)->Arg(1000);

// Throughput without per-request clock reads.
void BM_AuthorizeThroughput(benchmark::State& state) {
  Fixture f = Build(static_cast<int>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    Response resp = f.policies.IsAuthorized(f.requests[i++ % f.requests.size()], f.entities);
    benchmark::DoNotOptimize(resp);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthorizeThroughput)->Arg(10)->Arg(100)->Arg(1000);

void BM_ParsePolicies(benchmark::State& state) {
  std::string text = PolicyText(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(PolicySet::FromText(text));
  state.SetBytesProcessed(state.iterations() * text.size());
}
BENCHMARK(BM_ParsePolicies)->Arg(1000);

}  // namespace
}  // namespace custody::policy

int main(int argc, char** argv) {
  custody::policy::DumpIfAsked();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
