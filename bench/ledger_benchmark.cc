// Durable append throughput and latency of the ledger, with a tlog-proof receipt per event.
//
// Each of T threads keeps W appends in flight (AppendAsync) against one Ledger on a real SQLite
// file (WAL, synchronous=FULL: every batch is fsynced). Events are ~512-byte JSON objects.
// Reports events/s and the p50/p99 latency from AppendAsync to the receipt callback.
//
//   custody_ledger_bench [--events N] [--threads 1,4,16] [--window W] [--batch B] [--dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/ed25519.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "ledger/receipt.h"
#include "store/stores.h"

namespace {

using namespace custody;
using Clock = std::chrono::steady_clock;

std::string MakeEvent(uint64_t n) {
  std::string e =
      "{\"actor\":{\"agent\":\"bench-agent\",\"instance\":\"spiffe://custody.local/agent/"
      "bench/instance/1\",\"session\":\"s-" +
      std::to_string(n % 97) +
      "\"},\"decision\":{\"effect\":\"allow\",\"policy_set\":\"sha256:"
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},"
      "\"event_id\":\"0192c3a8-" +
      std::to_string(1000000 + n) +
      "\",\"kind\":\"action.decision\",\"target\":{\"server\":\"github\",\"tool\":"
      "\"create_issue\"},\"time\":\"2026-11-22T05:13:31.123Z\",\"pad\":\"";
  while (e.size() < 500) e += 'x';
  e += "\"}";
  return e;
}

struct RunResult {
  double events_per_sec;
  double p50_us, p99_us;
  uint64_t batches;
  double avg_commit_us;
};

RunResult RunOnce(const std::string& dir, int threads, uint64_t total, int window, size_t batch) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = store::OpenLedgerFile(dir + "/bench.db");
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  ledger::LedgerOptions options;
  options.origin = "bench.custody.local/ledger";
  options.max_batch = batch;
  auto l = ledger::Ledger::Open(std::move(*store), *crypto::Ed25519PrivateKey::Generate(), options);
  if (!l.ok()) std::exit(1);
  ledger::Ledger& ledger = **l;

  std::vector<std::string> events;
  events.reserve(1024);
  for (int i = 0; i < 1024; ++i) events.push_back(MakeEvent(i));

  uint64_t per_thread = total / threads;
  std::vector<std::vector<uint32_t>> latencies(threads);
  std::atomic<uint64_t> failures{0};
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
      auto& lat = latencies[t];
      lat.reserve(per_thread);
      for (uint64_t i = 0; i < per_thread; ++i) {
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return in_flight < window; });
          ++in_flight;
        }
        auto sent = Clock::now();
        Status st = ledger.AppendAsync(
            events[(t * per_thread + i) % events.size()], {},
            [&, sent](Result<ledger::AppendResult> r) {
              if (!r.ok() || r->receipt.empty()) failures++;
              auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent)
                            .count();
              std::lock_guard<std::mutex> lock(mu);
              lat.push_back(static_cast<uint32_t>(us));
              --in_flight;
              cv.notify_one();
            });
        if (!st.ok()) std::exit(1);
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (auto& w : workers) w.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto stats = ledger.Stats();
  ledger.Close();
  if (failures > 0) {
    std::fprintf(stderr, "%llu appends failed\n", static_cast<unsigned long long>(failures.load()));
    std::exit(1);
  }
  std::vector<uint32_t> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  RunResult r;
  r.events_per_sec = static_cast<double>(all.size()) / secs;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[all.size() * 99 / 100];
  r.batches = stats.batches;
  r.avg_commit_us =
      stats.batches ? static_cast<double>(stats.commit_micros_total) / stats.batches : 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 200000;
  std::vector<int> thread_counts = {1, 4, 16};
  int window = 256;
  size_t batch = 4096;
  std::string dir = std::filesystem::temp_directory_path() / "custody-ledger-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--events")
      events = std::stoull(v);
    else if (a == "--window")
      window = std::stoi(v);
    else if (a == "--batch")
      batch = std::stoul(v);
    else if (a == "--dir")
      dir = v;
    else if (a == "--threads") {
      thread_counts.clear();
      size_t p = 0;
      while (p < v.size()) {
        size_t q = v.find(',', p);
        thread_counts.push_back(std::stoi(v.substr(p, q - p)));
        if (q == std::string::npos) break;
        p = q + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("events=%llu window=%d max_batch=%zu event_bytes~%zu\n",
              static_cast<unsigned long long>(events), window, batch, MakeEvent(0).size());
  std::printf("%8s %12s %10s %10s %9s %14s\n", "threads", "events/s", "p50_us", "p99_us", "batches",
              "avg_commit_us");
  for (int t : thread_counts) {
    RunResult r = RunOnce(dir, t, events, window, batch);
    std::printf("%8d %12.0f %10.0f %10.0f %9llu %14.0f\n", t, r.events_per_sec, r.p50_us, r.p99_us,
                static_cast<unsigned long long>(r.batches), r.avg_commit_us);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
