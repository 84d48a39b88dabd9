// IngestService: OTLP trace ingest (docs/OTLP.md). The spans an agent exports that describe an
// agent or tool operation (gen_ai.operation.name invoke_agent, create_agent or execute_tool; or
// an mcp.method.name) become action.observed ledger events: what the telemetry claims, the
// registered agent that claim names, the Custody session the span is linked to and how, and
// the credential that sent it. Other spans are accepted and not recorded.
//
// Linking, in order: the span's parent is a Custody decision's span (same trace id: the agent
// used the traceparent Authorize returned); its parent is a span of the same request that was
// linked; the span was sent with a session token (that session), or, sent with an ingest token,
// it names a session in `custody.session.id` (a span or resource attribute; OpenTelemetry's
// BaggageSpanProcessor copies baggage there). Otherwise it stays attributed to its claims.
//
// Export does the linking and recording on the service's own thread (store look-ups must not
// hold a server thread) and answers once every event is durable (the ledger's group commit).
// Its events go in the ledger's bulk lane (ledger::Lane::kBulk), so an interactive event (a
// gateway decision) is never queued behind a burst of them; and at most max_events_in_ledger
// wait there: beyond that the worker waits, requests queue before it (at most kMaxQueued
// requests, max_queued_spans spans), and beyond those Export answers Unavailable at once (503
// with Retry-After: OTLP/HTTP's "server overloaded" answer, which exporters retry).
// Thread-safe. Every reference must outlive the service.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"
#include "ingest/otlp.h"

namespace custody::identity {
class TokenService;
}
namespace custody::attribution {
class AttributionService;
}
namespace custody::events {
class Recorder;
}

namespace custody::ingest {

struct IngestOptions {
  size_t max_body_bytes = 1024 * 1024;  // as received (compressed or not)
  DecodeLimits limits;
  double spans_per_second = 5000;  // per credential, sustained
  double burst_spans = 20000;      // per credential, at once
  // Spans dated further than this from the receiving clock are rejected.
  int64_t max_future_ms = 10 * 60 * 1000;
  int64_t max_age_ms = 30LL * 24 * 3600 * 1000;
  // Backpressure (not configuration keys; tests make them small): spans of the requests
  // waiting for the worker, beyond which Export answers Unavailable at once; and events
  // recorded and not yet durable, beyond which the worker waits for the ledger.
  size_t max_queued_spans = 32768;
  int64_t max_events_in_ledger = 4096;
};

// Who sent the spans.
struct IngestCredential {
  std::string type;  // "ingest-token" | "session"
  std::string id;    // the admin token's public id, or the sid
  // For a session token: the session's agent and root session.
  std::string agent, root_sid;
};

struct ExportOutcome {
  int64_t received = 0;
  int64_t recorded = 0;  // action.observed events made durable
  int64_t rejected = 0;  // spans refused (the answer's partial_success)
  std::string message;   // why, for the first rejected span
};
using ExportCallback = std::function<void(Result<ExportOutcome>)>;

// A tool call seen in telemetry that Custody did not decide: no decision linked, or the linked
// decision was for another tool.
struct UnmediatedCall {
  uint64_t ledger_index = 0;
  std::string event_id, time, operation, tool, tool_call_id, mcp_method;
  std::string trace_id, span_id;
  std::string claimed_agent, registered_agent, session, link, credential;
  std::string decision, decision_target;
  std::string reason;
};

class IngestService {
 public:
  IngestService(identity::TokenService& tokens, attribution::AttributionService& attribution,
                events::Recorder& recorder, const Clock& clock, Random& random,
                IngestOptions options);
  ~IngestService();  // answers queued exports with Unavailable

  const IngestOptions& options() const { return options_; }

  // Rate limiting per credential (a token bucket of spans). Takes `spans` from the bucket of
  // `key`, or returns the seconds to wait before it could (nothing taken).
  std::optional<int64_t> Admit(const std::string& key, double spans);

  // Validates, maps, links and records `spans`. `done` runs once, on another thread, after
  // every event is durable (Unavailable if one could not be recorded, or at once, with nothing
  // recorded, when too many requests or spans wait already: see Overloaded). A request whose
  // every span was rejected is InvalidArgument, and nothing is recorded.
  void Export(IngestCredential credential, std::vector<OtlpSpan> spans, ExportCallback done);
  Result<ExportOutcome> ExportSync(IngestCredential credential, std::vector<OtlpSpan> spans);

  // Observed tool calls at or after `since_ms` (Unix ms of the span's start) with no Custody
  // decision for them, oldest first. Reads the ledger from the first entry recorded late enough
  // to hold such a span, found by bisecting the entries' times: a span is refused when it starts
  // more than max_future_ms after it is received, so one starting at or after `since_ms` was
  // recorded after since_ms - max_future_ms; entries are in time order up to the skew of the
  // nodes' clocks, which kMaxClockSkewMs bounds. `scanned`, when given, gets the number of
  // entries read by the scan (the bisection reads about log2 of the ledger's size more).
  Result<std::vector<UnmediatedCall>> Unmediated(int64_t since_ms, uint64_t* scanned = nullptr);
  static constexpr int64_t kMaxClockSkewMs = 5 * 60 * 1000;

  // What an Unavailable answer of Export tells the sender to wait before retrying (seconds).
  static constexpr int64_t kRetryAfterSeconds = 1;

 private:
  struct Job {
    IngestCredential credential;
    std::vector<OtlpSpan> spans;
    ExportCallback done;
  };
  static constexpr size_t kMaxQueued = 256;  // export requests waiting for the worker
  // The events this service has in the ledger; shared with the ledger's callbacks, which may
  // run after the service is gone.
  struct Backlog {
    Mutex mu;
    CondVar cv;
    int64_t events GUARDED_BY(mu) = 0;
    bool stop GUARDED_BY(mu) = false;
  };
  static constexpr size_t kMaxBuckets = 100000;  // credentials tracked before idle ones go
  void Run();
  void Process(Job& job);
  // The first ledger index at which an observed span starting at or after `since_ms` can be.
  Result<uint64_t> FirstIndexSince(int64_t since_ms);

  identity::TokenService& tokens_;
  attribution::AttributionService& attribution_;
  events::Recorder& recorder_;
  const Clock& clock_;
  UuidV7Generator ids_;
  const IngestOptions options_;

  Mutex buckets_mu_;
  struct Bucket {
    double tokens = 0;
    int64_t last_ns = 0;
  };
  std::map<std::string, Bucket> buckets_ GUARDED_BY(buckets_mu_);

  Mutex mu_;
  CondVar cv_;
  std::deque<Job> queue_ GUARDED_BY(mu_);
  size_t queued_spans_ GUARDED_BY(mu_) = 0;
  std::shared_ptr<Backlog> backlog_ = std::make_shared<Backlog>();
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace custody::ingest
