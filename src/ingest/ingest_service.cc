#include "ingest/ingest_service.h"

#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <future>
#include <limits>
#include <memory>
#include <set>
#include <unordered_map>

#include "attribution/attribution_service.h"
#include "common/json_parse.h"
#include "common/rfc3339.h"
#include "common/utf8.h"
#include "events/observed_events.h"
#include "events/recorder.h"
#include "identity/token_service.h"

namespace custody::ingest {
namespace {

namespace json = boost::json;

constexpr std::string_view kOverloaded = "too many spans waiting to be recorded; retry later";

// Recorded strings are bounded: telemetry is the sender's to fill, the ledger is forever.
constexpr size_t kMaxName = 256;
constexpr size_t kMaxMessage = 1024;

std::string Bounded(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t end = max;
  // Back to the start of a UTF-8 sequence (protobuf and the JSON parser gave valid UTF-8).
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end)) + "…";
}

std::string Attr(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

bool IsHexId(const std::string& id, size_t size) {
  if (id.size() != size) return false;
  bool nonzero = false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    nonzero |= c != '0';
  }
  return nonzero;  // all-zero ids are invalid (W3C Trace Context, OTLP)
}

// The operation an observed action records, or "" for a span that is not an agent's or tool's.
std::string OperationOf(const OtlpSpan& s) {
  std::string op = Attr(s.attributes, "gen_ai.operation.name");
  if (op == "invoke_agent" || op == "create_agent" || op == "execute_tool") return op;
  if (std::string m = Attr(s.attributes, "mcp.method.name"); !m.empty()) {
    return "mcp:" + Bounded(m, kMaxName);
  }
  return "";
}

// Why a span is refused, or "" for a sound one.
std::string Invalid(const OtlpSpan& s, int64_t now_ms, const IngestOptions& o) {
  if (!IsHexId(s.trace_id, 32)) return "a span's trace_id is not 16 non-zero bytes";
  if (!IsHexId(s.span_id, 16)) return "a span's span_id is not 8 non-zero bytes";
  if (!s.parent_span_id.empty() && !IsHexId(s.parent_span_id, 16)) {
    return "a span's parent_span_id is not 8 non-zero bytes";
  }
  const int64_t start_ms = static_cast<int64_t>(s.start_ns / 1000000);
  if (s.start_ns == 0 || start_ms < now_ms - o.max_age_ms || start_ms > now_ms + o.max_future_ms) {
    return "a span's start time is absent or too far from now";
  }
  if (s.end_ns != 0 && s.end_ns < s.start_ns) return "a span ends before it starts";
  if (s.end_ns != 0 && static_cast<int64_t>(s.end_ns / 1000000) > now_ms + o.max_future_ms) {
    return "a span's end time is too far in the future";
  }
  return "";
}

std::string StatusCode(int code) { return code == 1 ? "ok" : code == 2 ? "error" : "unset"; }

// "files/read" -> "read": the tool of a decision's target key ("<server>/<tool>").
std::string ToolOfTarget(const std::string& target) {
  size_t slash = target.find('/');
  return slash == std::string::npos ? std::string() : target.substr(slash + 1);
}

}  // namespace

IngestService::IngestService(identity::TokenService& tokens,
                             attribution::AttributionService& attribution,
                             events::Recorder& recorder, const Clock& clock, Random& random,
                             IngestOptions options)
    : tokens_(tokens),
      attribution_(attribution),
      recorder_(recorder),
      clock_(clock),
      ids_(clock, random),
      options_(std::move(options)) {
  worker_ = std::thread([this] { Run(); });
}

IngestService::~IngestService() {
  std::deque<Job> left;
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  {
    MutexLock lock(backlog_->mu);
    backlog_->stop = true;
  }
  backlog_->cv.NotifyAll();
  worker_.join();
  {
    MutexLock lock(mu_);
    left.swap(queue_);
  }
  for (Job& j : left) j.done(UnavailableError("the server is shutting down"));
}

std::optional<int64_t> IngestService::Admit(const std::string& key, double spans) {
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch()).count();
  MutexLock lock(buckets_mu_);
  if (buckets_.size() >= kMaxBuckets && !buckets_.count(key)) {
    // Buckets refilled to the brim are the same as no bucket: forget those (sessions end).
    const double full_after_ns = options_.burst_spans / options_.spans_per_second * 1e9;
    std::erase_if(buckets_, [&](const auto& kv) {
      return static_cast<double>(now_ns - kv.second.last_ns) >= full_after_ns;
    });
  }
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = options_.burst_spans;
  } else if (now_ns > b.last_ns) {
    b.tokens = std::min(options_.burst_spans,
                        b.tokens + (now_ns - b.last_ns) / 1e9 * options_.spans_per_second);
  }
  b.last_ns = std::max(b.last_ns, now_ns);
  if (b.tokens >= spans) {
    b.tokens -= spans;
    return std::nullopt;
  }
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil((spans - b.tokens) / options_.spans_per_second)));
}

void IngestService::Export(IngestCredential credential, std::vector<OtlpSpan> spans,
                           ExportCallback done) {
  {
    MutexLock lock(mu_);
    // Requests wait here while earlier ones are linked: bounded, so many credentials at once
    // cannot queue without end (each is within its own rate); the exporter retries a 503.
    // A request larger than the span bound alone is still taken when nothing waits.
    if (!stop_ && queue_.size() < kMaxQueued &&
        (queue_.empty() || queued_spans_ + spans.size() <= options_.max_queued_spans)) {
      queued_spans_ += spans.size();
      queue_.push_back(Job{std::move(credential), std::move(spans), std::move(done)});
      cv_.NotifyOne();
      return;
    }
    if (!stop_) {
      lock.Unlock();
      return done(UnavailableError(std::string(kOverloaded)));
    }
  }
  done(UnavailableError("the server is shutting down"));
}

Result<ExportOutcome> IngestService::ExportSync(IngestCredential credential,
                                                std::vector<OtlpSpan> spans) {
  std::promise<Result<ExportOutcome>> p;
  auto f = p.get_future();
  Export(std::move(credential), std::move(spans),
         [&p](Result<ExportOutcome> r) { p.set_value(std::move(r)); });
  return f.get();
}

void IngestService::Run() {
  MutexLock lock(mu_);
  while (true) {
    cv_.Wait(mu_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
    if (stop_) return;
    lock.Unlock();
    // The ledger commits bulk events at its own pace: wait for it rather than queue there
    // without bound; requests wait in queue_ meanwhile, and beyond its bound get 503.
    {
      Backlog& b = *backlog_;
      MutexLock wait(b.mu);
      b.cv.Wait(b.mu, [&]() REQUIRES(b.mu) {
        return b.stop || b.events < options_.max_events_in_ledger;
      });
      if (b.stop) return;
    }
    lock.Lock();
    if (stop_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    queued_spans_ -= job.spans.size();
    lock.Unlock();
    Process(job);
    lock.Lock();
  }
}

void IngestService::Process(Job& job) {
  const int64_t now_ms = UnixMillis(clock_.Now());
  const std::string time = FormatRfc3339Millis(clock_.Now());
  ExportOutcome out;
  out.received = static_cast<int64_t>(job.spans.size());

  // Which spans are recorded, and which are refused.
  std::vector<const OtlpSpan*> observed;
  for (const OtlpSpan& s : job.spans) {
    if (std::string why = Invalid(s, now_ms, options_); !why.empty()) {
      if (out.rejected++ == 0) out.message = why;
      continue;
    }
    if (!OperationOf(s).empty()) observed.push_back(&s);
  }
  if (out.rejected > 0 && out.rejected == out.received) {
    return job.done(InvalidArgumentError("every span was rejected: " + out.message));
  }
  if (observed.empty()) return job.done(out);

  // Decisions of a moment ago may still wait for the attribution index: one flush per request,
  // so a span parented on a decision made just before it links.
  attribution_.FlushIndex();

  const IngestCredential& cred = job.credential;
  const bool session_token = cred.type == "session";
  // Per request: what each span was linked to, so its children in the request follow it.
  struct Linked {
    std::string session, agent, root;
  };
  std::unordered_map<std::string, Linked> linked_spans;
  std::unordered_map<std::string, std::optional<identity::Session>> sessions;
  std::unordered_map<std::string, std::string> registered;  // claimed name -> agent or ""
  auto session = [&](const std::string& sid) -> const std::optional<identity::Session>& {
    auto it = sessions.find(sid);
    if (it == sessions.end()) {
      auto s = tokens_.GetSession(sid);
      it =
          sessions
              .emplace(sid, s.ok() ? std::optional<identity::Session>(std::move(*s)) : std::nullopt)
              .first;
    }
    return it->second;
  };
  auto resolve = [&](const std::string& claim) -> std::string {
    if (claim.empty()) return "";
    auto it = registered.find(claim);
    if (it == registered.end()) {
      auto a = tokens_.GetAgent(claim);
      it = registered.emplace(claim, a.ok() ? claim : std::string()).first;
    }
    return it->second;
  };

  // Parents are exported before or with their children in practice, but not always in order:
  // spans are visited parents first where the request holds both.
  std::vector<json::object> events;
  events.reserve(observed.size());
  std::set<std::string> in_request;
  for (const OtlpSpan* s : observed) in_request.insert(s->span_id);
  std::vector<const OtlpSpan*> order;
  {
    std::set<std::string> placed;
    std::unordered_map<std::string, const OtlpSpan*> by_id;
    for (const OtlpSpan* s : observed) by_id.emplace(s->span_id, s);
    std::function<void(const OtlpSpan*, int)> place = [&](const OtlpSpan* s, int depth) {
      if (placed.count(s->span_id)) return;
      placed.insert(s->span_id);  // first, so a cycle ends here
      if (auto p = by_id.find(s->parent_span_id); p != by_id.end() && depth < 64) {
        place(p->second, depth + 1);
      }
      order.push_back(s);
    };
    for (const OtlpSpan* s : observed) place(s, 0);
  }

  for (const OtlpSpan* sp : order) {
    const OtlpSpan& s = *sp;
    events::ActionObserved e;
    e.event_id = ids_.NextString();
    e.time = time;
    e.operation = OperationOf(s);
    e.trace_id = s.trace_id;
    e.span_id = s.span_id;
    e.parent_span_id = s.parent_span_id;
    e.span_name = Bounded(s.name, kMaxName);
    e.start_ns = std::to_string(s.start_ns);
    e.end_ns = s.end_ns ? std::to_string(s.end_ns) : "";
    e.service = Bounded(Attr(s.resource, "service.name"), kMaxName);
    e.tool = Bounded(Attr(s.attributes, "gen_ai.tool.name"), kMaxName);
    e.tool_call_id = Bounded(Attr(s.attributes, "gen_ai.tool.call.id"), kMaxName);
    e.mcp_method = Bounded(Attr(s.attributes, "mcp.method.name"), kMaxName);
    e.claimed_agent_id = Bounded(Attr(s.attributes, "gen_ai.agent.id"), kMaxName);
    e.claimed_agent_name = Bounded(Attr(s.attributes, "gen_ai.agent.name"), kMaxName);
    e.registered_agent = resolve(e.claimed_agent_name);
    if (e.registered_agent.empty()) e.registered_agent = resolve(e.claimed_agent_id);
    e.credential_type = cred.type;
    e.credential_id = cred.id;
    e.status_code = StatusCode(s.status_code);
    e.status_message = Bounded(s.status_message, kMaxMessage);
    e.error_type = Bounded(Attr(s.attributes, "error.type"), kMaxName);

    // A session token speaks for its own tree only: links outside it are not taken.
    auto acceptable = [&](const std::string& root) {
      return !session_token || root == cred.root_sid;
    };
    Linked link;
    if (!s.parent_span_id.empty()) {
      if (auto row = attribution_.store().ActionBySpan(s.trace_id, s.parent_span_id);
          row.ok() && *row && acceptable((*row)->root_sid)) {
        e.link = "decision-span";
        e.decision = (*row)->action_id;
        e.decision_target = (*row)->target;
        link = {(*row)->sid, (*row)->agent, (*row)->root_sid};
      } else if (auto p = linked_spans.find(s.parent_span_id);
                 p != linked_spans.end() && in_request.count(s.parent_span_id)) {
        e.link = "parent-span";
        link = p->second;
      }
    }
    if (link.session.empty() && session_token) {
      e.link = "session-token";
      link = {cred.id, cred.agent, cred.root_sid};
    }
    if (link.session.empty()) {
      std::string sid = Attr(s.attributes, "custody.session.id");
      if (sid.empty()) sid = Attr(s.resource, "custody.session.id");
      if (!sid.empty()) {
        if (const auto& known = session(sid)) {
          e.link = "session-attribute";
          link = {known->sid, known->agent, known->root_sid};
        }
      }
    }
    if (link.session.empty()) {
      e.link = "none";
    } else {
      e.session = link.session;
      e.session_agent = link.agent;
      linked_spans[s.span_id] = link;
    }
    e.link_verified = session_token && e.session == cred.id;
    events.push_back(events::Build(e));
  }

  // Every event queued for the ledger's group commit; the answer goes once the last is durable.
  struct Pending {
    std::atomic<size_t> left;
    std::atomic<bool> failed{false};
    ExportOutcome out;
    ExportCallback done;
    std::shared_ptr<Backlog> backlog;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = events.size();
  out.recorded = static_cast<int64_t>(events.size());
  pending->out = out;
  pending->done = std::move(job.done);
  pending->backlog = backlog_;
  {
    MutexLock lock(backlog_->mu);
    backlog_->events += static_cast<int64_t>(events.size());
  }
  auto finish_one = [pending](bool ok) {
    if (!ok) pending->failed = true;
    if (pending->left.fetch_sub(1) != 1) return;
    {
      Backlog& b = *pending->backlog;
      MutexLock lock(b.mu);
      b.events -= pending->out.recorded;
    }
    pending->backlog->cv.NotifyAll();
    if (pending->failed) {
      pending->done(UnavailableError("the ledger could not record every span; retry"));
    } else {
      pending->done(pending->out);
    }
  };
  for (const json::object& ev : events) {
    Status queued = recorder_.RecordAsync(
        ev, [finish_one](Result<ledger::AppendResult> r) { finish_one(r.ok()); },
        ledger::Lane::kBulk);
    if (!queued.ok()) finish_one(false);
  }
}

Result<uint64_t> IngestService::FirstIndexSince(int64_t since_ms) {
  if (since_ms <= 0) return 0;
  // Spans were accepted up to max_future_ms ahead of the receiving clock; never less than the
  // default, in case an earlier configuration allowed that much.
  const int64_t ahead = std::max(options_.max_future_ms, IngestOptions().max_future_ms);
  if (since_ms < std::numeric_limits<int64_t>::min() + ahead + kMaxClockSkewMs) return 0;
  const int64_t cutoff = since_ms - ahead - kMaxClockSkewMs;
  store::LedgerStore& ledger = recorder_.ledger().store();
  ASSIGN_OR_RETURN(uint64_t lo, ledger.LeafCount());
  uint64_t hi = lo;
  lo = 0;
  // The first entry recorded at or after `cutoff`. An entry without a readable time counts as
  // late: the scan then starts earlier, never later.
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger.GetLeaf(mid));
    std::optional<int64_t> t = ParseRfc3339Millis(leaf.columns.time);
    if (t && *t < cutoff) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Result<std::vector<UnmediatedCall>> IngestService::Unmediated(int64_t since_ms, uint64_t* scanned) {
  std::vector<UnmediatedCall> out;
  ASSIGN_OR_RETURN(const uint64_t from, FirstIndexSince(since_ms));
  uint64_t read = 0;
  const int64_t since_ns_ms = since_ms;
  auto field = [](const json::object& o, const char* k) -> std::string {
    auto it = o.find(k);
    return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
  };
  auto obj = [](const json::object& o, const char* k) -> const json::object& {
    static const json::object kEmpty;
    auto it = o.find(k);
    return it != o.end() && it->value().is_object() ? it->value().get_object() : kEmpty;
  };
  RETURN_IF_ERROR(recorder_.ledger().store().ScanLeaves(from, [&](const store::StoredLeaf& leaf) {
    ++read;
    if (leaf.columns.kind != "action.observed") return true;
    boost::system::error_code ec;
    json::value v = ParseJson(leaf.data, ec);
    if (ec || !v.is_object()) return true;
    const json::object& o = v.get_object();
    const json::object& span = obj(o, "span");
    const json::object& tool = obj(o, "tool");
    const json::object& link = obj(o, "link");
    const json::object& claimed = obj(o, "claimed_agent");
    UnmediatedCall c;
    c.tool = field(tool, "name");
    c.mcp_method = field(tool, "mcp_method");
    c.operation = field(o, "operation");
    // A tool call: execute_tool, or an MCP tools/call.
    if (c.operation != "execute_tool" && c.mcp_method != "tools/call") return true;
    const std::string start = field(span, "start_ns");
    int64_t start_ms = 0;
    try {
      start_ms = static_cast<int64_t>(std::stoull(start) / 1000000);
    } catch (...) {
    }
    if (start_ms < since_ns_ms) return true;
    c.decision = field(link, "decision");
    c.decision_target = field(link, "decision_target");
    if (c.decision.empty()) {
      c.reason = "no Custody decision is linked to it";
    } else if (!c.tool.empty() && ToolOfTarget(c.decision_target) != c.tool) {
      c.reason = "its linked decision was for " + c.decision_target;
    } else {
      return true;  // mediated
    }
    c.ledger_index = leaf.index;
    c.event_id = field(o, "event_id");
    c.time = field(o, "time");
    c.tool_call_id = field(tool, "call_id");
    c.trace_id = field(span, "trace_id");
    c.span_id = field(span, "span_id");
    c.claimed_agent =
        field(claimed, "name").empty() ? field(claimed, "id") : field(claimed, "name");
    c.registered_agent = field(claimed, "registered");
    c.session = field(link, "session");
    c.link = field(link, "how");
    const json::object& cred = obj(o, "credential");
    c.credential = field(cred, "type") + ":" + field(cred, "id");
    out.push_back(std::move(c));
    return true;
  }));
  if (scanned) *scanned = read;
  return out;
}

}  // namespace custody::ingest
