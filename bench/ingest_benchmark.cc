// OTLP ingest benchmark driver (docs/PERFORMANCE.md, "OTLP ingest"): spans per second through
// IngestService with every span durably recorded as an action.observed event. Each client
// thread sends protobuf ExportTraceServiceRequests of --batch execute_tool spans (some linked
// to a real decision's span, the rest unlinked), decoded as POST /v1/traces decodes them, and
// waits for the answer (sent once the batch is durable). Real SQLite files, fsync per group
// commit, in a temporary directory. Not a test.
//
//   ./build/release/bench/custody_ingest_bench --batch 512 --clients 4 --seconds 10
//
// With --write-body FILE it only writes one such request body (--batch unlinked execute_tool
// spans, started now) to FILE and exits: bench/ingest_http_bench.mjs posts it to a real
// `custody serve` over loopback.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "attribution/testing/world.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "ingest/ingest_service.h"
#include "ingest/otlp.h"
#include "ledger/ledger.h"

namespace custody {
namespace {

using Clk = std::chrono::steady_clock;

void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::string Hex(uint64_t v, int digits) {
  char buf[40];
  snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

// One ExportTraceServiceRequest of `batch` direct tool calls, each in a trace of its own.
int WriteBody(size_t batch, const std::string& path) {
  const uint64_t now_ns =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  std::vector<ingest::OtlpSpan> spans;
  for (size_t i = 1; i <= batch; ++i) {
    ingest::OtlpSpan s;
    s.trace_id = Hex(now_ns, 16) + Hex(i, 16);
    s.span_id = Hex(i, 16);
    s.name = "execute_tool read_file";
    s.start_ns = now_ns - 1000000;
    s.end_ns = now_ns;
    s.attributes = {{"gen_ai.operation.name", "execute_tool"},
                    {"gen_ai.tool.name", "read_file"},
                    {"gen_ai.tool.call.id", "call-" + std::to_string(i)},
                    {"gen_ai.agent.name", "planner"}};
    s.resource = {{"service.name", "bench-agent"}};
    spans.push_back(std::move(s));
  }
  const std::string body = ingest::EncodeExportRequestForTest(spans);
  std::ofstream out(path, std::ios::binary);
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  if (!out.good()) {
    fprintf(stderr, "could not write %s\n", path.c_str());
    return 1;
  }
  printf("%zu spans, %zu bytes\n", batch, body.size());
  return 0;
}

int Run(int argc, char** argv) {
  size_t batch = 512;
  int clients = 4;
  double seconds = 10;
  std::string write_body;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--batch") batch = std::stoul(argv[i + 1]);
    if (k == "--clients") clients = std::stoi(argv[i + 1]);
    if (k == "--seconds") seconds = std::stod(argv[i + 1]);
    if (k == "--write-body") write_body = argv[i + 1];
  }
  if (!write_body.empty()) return WriteBody(batch, write_body);
  auto dir = std::filesystem::temp_directory_path() /
             ("custody-ingest-bench-" + std::to_string(::getpid()));
  auto w = attribution::testkit::World::Create(dir);
  Must(w.status(), "world");
  auto& world = **w;
  Must(world.Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd),
       "register");
  Must(world.svc
           ->PublishPolicies("permit(principal, action, resource in Server::\"files\");", "",
                             "bench")
           .status(),
       "publish");
  auto session = world.Root("planner");
  Must(session.status(), "session");
  auto decided = world.svc->AuthorizeSync(
      attribution::testkit::World::Call(session->token, "files", "read_file"));
  Must(decided.status(), "authorize");
  const std::string trace_id = decided->traceparent.substr(3, 32);
  const std::string decision_span = decided->traceparent.substr(36, 16);

  events::Recorder recorder(*world.ledger);
  ingest::IngestOptions o;
  o.spans_per_second = 1e9;
  o.burst_spans = 1e9;
  o.limits.max_spans = batch;
  ingest::IngestService svc(*world.tokens, *world.svc, recorder, world.clock, world.random, o);

  std::atomic<uint64_t> spans{0}, requests{0}, next_id{1};
  std::atomic<bool> stop{false};
  auto client = [&] {
    while (!stop) {
      std::vector<ingest::OtlpSpan> in;
      const uint64_t now_ns =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
      for (size_t i = 0; i < batch; ++i) {
        ingest::OtlpSpan s;
        uint64_t id = next_id++;
        // One span in eight ran under the decision; the others are direct calls.
        s.trace_id = i % 8 == 0 ? trace_id : Hex(id, 32);
        s.span_id = Hex(id, 16);
        s.parent_span_id = i % 8 == 0 ? decision_span : "";
        s.name = "execute_tool read_file";
        s.start_ns = now_ns - 1000000;
        s.end_ns = now_ns;
        s.attributes = {{"gen_ai.operation.name", "execute_tool"},
                        {"gen_ai.tool.name", "read_file"},
                        {"gen_ai.tool.call.id", "call-" + std::to_string(id)},
                        {"gen_ai.agent.name", "planner"}};
        s.resource = {{"service.name", "bench-agent"}};
        in.push_back(std::move(s));
      }
      // The wire body, decoded as the route decodes it (encoding is the client's cost).
      std::string body = ingest::EncodeExportRequestForTest(in);
      auto decoded = ingest::DecodeExportRequest(body, ingest::Encoding::kProtobuf, o.limits);
      Must(decoded.status(), "decode");
      if (svc.Admit("bench", static_cast<double>(decoded->size())))
        Must(InternalError("429"), "admit");
      auto out = svc.ExportSync({"ingest-token", "bench", "", ""}, std::move(*decoded));
      Must(out.status(), "export");
      if (out->recorded != static_cast<int64_t>(batch))
        Must(InternalError("not all recorded"), "export");
      spans += batch;
      ++requests;
    }
  };
  std::vector<std::thread> threads;
  auto t0 = Clk::now();
  for (int i = 0; i < clients; ++i) threads.emplace_back(client);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clk::now() - t0).count();
  printf(
      "batch %zu, clients %d: %llu spans in %.2f s = %.0f spans/s durable (%llu requests, "
      "%.1f ms per request)\n",
      batch, clients, static_cast<unsigned long long>(spans.load()), secs, spans / secs,
      static_cast<unsigned long long>(requests.load()),
      requests ? secs * 1000 * clients / requests : 0.0);
  return 0;
}

}  // namespace
}  // namespace custody

int main(int argc, char** argv) { return custody::Run(argc, argv); }
