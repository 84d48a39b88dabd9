#include "api/routes.h"

#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "api/auth.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "common/mutex.h"
#include "events/columns.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/tiles.h"
#include "ledger/verifier.h"

namespace custody::api {
namespace {

using http::Request;
using http::Responder;
using http::Response;

constexpr size_t kMaxEventBytes = 65535;  // an entry bundle stores a uint16 length per entry

Response Error(const Status& s, const Request& r) { return http::ErrorResponse(s, r.request_id); }

// A strict decimal uint64: digits only, no sign, no leading zeros.
Result<uint64_t> ParseUint(std::string_view name, std::optional<std::string> text) {
  if (!text) return InvalidArgumentError("missing query parameter " + std::string(name));
  const std::string& t = *text;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size() || (t.size() > 1 && t[0] == '0')) {
    return InvalidArgumentError(std::string(name) + " must be a non-negative decimal integer");
  }
  return v;
}

std::string HashesJson(const std::vector<ledger::Hash>& hashes) {
  std::string out = "[";
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (i) out += ',';
    out += '"' + Base64Encode(hashes[i]) + '"';
  }
  return out + "]";
}

std::string AppendResultJson(const ledger::AppendResult& r) {
  std::string out = "{\"index\":" + std::to_string(r.index) + ",\"leaf_hash\":\"" +
                    HexEncode(r.leaf_hash) + "\",\"receipt\":";
  AppendJcsString(r.receipt, out);
  return out + "}";
}

http::Route Get(std::string pattern, http::Handler h, const RouteOptions& o) {
  http::Route r;
  r.method = "GET";
  r.pattern = std::move(pattern);
  r.handler = std::move(h);
  r.auth = o.read_auth;
  return r;
}

// Collects the results of one request's appends; answers when the last one is durable.
struct AppendBatch {
  bool array = false;
  std::vector<std::optional<Result<ledger::AppendResult>>> results;  // guarded by mu
  std::mutex mu;
  std::atomic<size_t> remaining{0};
  std::string request_id;
  Responder respond;

  void Done(size_t i, Result<ledger::AppendResult> r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      results[i].emplace(std::move(r));
    }
    if (remaining.fetch_sub(1) == 1) Finish();
  }

  void Finish() {
    std::lock_guard<std::mutex> lock(mu);
    std::optional<Status> first_error;
    std::string entries = "[";
    for (size_t i = 0; i < results.size(); ++i) {
      if (i) entries += ',';
      const auto& r = *results[i];
      if (r.ok()) {
        entries += AppendResultJson(*r);
      } else {
        if (!first_error) first_error = r.status();
        entries += "{\"error\":{\"code\":\"" + std::string(StatusCodeName(r.status().code())) +
                   "\",\"message\":";
        AppendJcsString(r.status().message(), entries);
        entries += "}}";
      }
    }
    entries += "]";
    if (first_error) {
      // Some events may be durable and others not: say which, in the one error shape.
      Response resp = http::ErrorResponse(*first_error, request_id);
      resp.body.pop_back();  // reopen the top-level object to add the per-event results
      resp.body += ",\"entries\":" + entries + "}";
      respond(std::move(resp));
      return;
    }
    if (!array) {
      respond(Response::Json(201, AppendResultJson(*results[0].value())));
    } else {
      respond(Response::Json(201, "{\"entries\":" + entries + "}"));
    }
  }
};

void HandleAppend(ledger::Ledger& ledger, size_t max_events, Request& req, Responder respond) {
  Result<std::string> canonical = CanonicalizeJson(req.body);
  if (!canonical.ok()) {
    return respond(Error(canonical.status().WithContext("malformed JSON"), req));
  }
  std::vector<std::string_view> events;
  bool array = !canonical->empty() && (*canonical)[0] == '[';
  if (array) {
    events = SplitCanonicalArray(*canonical);
    if (events.empty()) return respond(Error(InvalidArgumentError("empty array of events"), req));
    if (events.size() > max_events) {
      return respond(Error(
          InvalidArgumentError("at most " + std::to_string(max_events) + " events per request"),
          req));
    }
  } else {
    events.push_back(*canonical);
  }
  // Validate everything before queueing anything, so a bad element appends nothing.
  for (size_t i = 0; i < events.size(); ++i) {
    std::string where = array ? "event " + std::to_string(i) + ": " : "";
    if (events[i].empty() || events[i][0] != '{') {
      return respond(Error(InvalidArgumentError(where + "an event must be a JSON object"), req));
    }
    if (events[i].size() > kMaxEventBytes) {
      return respond(Error(
          InvalidArgumentError(where + "an event's canonical form must be at most 65535 bytes"),
          req));
    }
    // Custody's own kinds come only from Custody: an appended "action.decision" would otherwise
    // be traced, indexed (by a rebuild) and counted as a real decision.
    if (std::string kind = events::ColumnsOfText(events[i]).kind; events::IsCustodyKind(kind)) {
      return respond(Error(InvalidArgumentError(where + "kind \"" + kind +
                                                "\" is recorded by Custody itself; append events "
                                                "of your own kinds"),
                           req));
    }
  }
  auto batch = std::make_shared<AppendBatch>();
  batch->array = array;
  batch->results.resize(events.size());
  batch->remaining = events.size();
  batch->request_id = req.request_id;
  batch->respond = std::move(respond);
  for (size_t i = 0; i < events.size(); ++i) {
    ledger.AppendCanonicalAsync(
        std::string(events[i]), events::ColumnsOfText(events[i]),
        [batch, i](Result<ledger::AppendResult> r) { batch->Done(i, std::move(r)); });
  }
}

void HandleTile(ledger::Ledger& ledger, Request& req, Responder respond) {
  std::string path = "tile/" + req.params["path"];
  Result<ledger::TileCoords> c = ledger::ParseTilePath(path);
  if (!c.ok()) return respond(Error(NotFoundError("no such tile: " + c.status().message()), req));
  uint64_t size = ledger.Size();
  uint16_t avail = ledger::TileWidthAt(c->level, c->index, size);
  // A full tile is served only once it is full; a partial one only up to what the tree has.
  if (avail == 0 || c->width > avail || (c->width == ledger::kTileWidth && avail != c->width)) {
    return respond(
        Error(NotFoundError("tile beyond the tree (size " + std::to_string(size) + ")"), req));
  }
  Response resp;
  resp.headers.Set("content-type", "application/octet-stream");
  // Full tiles never change; partial ones are replaced as the tree grows.
  resp.headers.Set("cache-control", c->width == ledger::kTileWidth
                                        ? "public, max-age=31536000, immutable"
                                        : "no-cache");
  if (c->entries) {
    std::vector<std::string> entries;
    entries.reserve(c->width);
    uint64_t first = c->index * ledger::kTileWidth;
    Status st = ledger.store().ScanLeaves(first, [&](const store::StoredLeaf& leaf) {
      entries.push_back(leaf.data);
      return entries.size() < c->width;
    });
    if (!st.ok()) return respond(Error(st, req));
    if (entries.size() < c->width) {
      return respond(Error(InternalError("ledger store returned fewer leaves than its size"), req));
    }
    Result<std::string> bundle = ledger::EncodeEntryBundle(entries);
    if (!bundle.ok()) return respond(Error(bundle.status(), req));
    resp.body = std::move(*bundle);
  } else {
    Result<store::StoredTile> tile = ledger.store().GetTile(c->level, c->index);
    if (!tile.ok()) return respond(Error(tile.status(), req));
    if (tile->hashes.size() < c->width) {
      return respond(Error(InternalError("stored tile narrower than the tree"), req));
    }
    resp.body = ledger::EncodeTile(std::span(tile->hashes.data(), c->width));
  }
  respond(std::move(resp));
}

// A server-side verification of the ledger up to the checkpoint that was latest when it started
// (`POST /v1/ledger/verify`, the console's progress bar): every leaf's stored bytes rehashed and
// checked canonical, the tree rebuilt from them and its root compared with that checkpoint's,
// whose signature is checked under the ledger's verifier key. It advances while it is polled
// (each `GET /v1/ledger/verify/{id}` does at most kVerifyBudget of work), so it needs no thread
// of its own, holds no lock between polls, and a job nobody polls just waits to be evicted.
constexpr auto kVerifyBudget = std::chrono::milliseconds(100);
constexpr size_t kMaxVerifyJobs = 16;

// Each poll holds `mu` while it advances the job (two polls of one job take turns).
struct VerifyJob {
  Mutex mu;
  uint64_t size = 0;           // the checkpoint's; set under mu, before the job is shared
  ledger::Hash signed_root{};  // likewise
  std::string checkpoint;      // its note; likewise
  ledger::CompactRange range GUARDED_BY(mu);
  std::string state GUARDED_BY(mu) = "running";  // running | verified | failed
  std::string problem GUARDED_BY(mu);
};

struct VerifyJobs {
  Mutex mu;
  uint64_t next GUARDED_BY(mu) = 1;
  std::map<uint64_t, std::shared_ptr<VerifyJob>> jobs GUARDED_BY(mu);  // oldest evicted first
};

std::string VerifyJobJson(uint64_t id, const VerifyJob& j) REQUIRES(j.mu) {
  std::string out = "{\"id\":\"" + std::to_string(id) + "\",\"state\":\"" + j.state +
                    "\",\"verified\":" + std::to_string(j.range.size()) +
                    ",\"size\":" + std::to_string(j.size) + ",\"root\":\"" +
                    HexEncode(j.signed_root) + "\",\"checkpoint\":";
  AppendJcsString(j.checkpoint, out);
  if (!j.problem.empty()) {
    out += ",\"problem\":";
    AppendJcsString(j.problem, out);
  }
  return out + "}";
}

void AdvanceVerifyJob(ledger::Ledger& ledger, VerifyJob& j) REQUIRES(j.mu) {
  if (j.state != "running") return;
  const auto deadline = std::chrono::steady_clock::now() + kVerifyBudget;
  const uint64_t size = j.size;
  // The scan's callback works on a local range: it cannot be shown to hold j.mu.
  ledger::CompactRange range = std::move(j.range);
  Status problem;
  bool paused = false;
  Status scan;
  if (range.size() < size) {
    scan = ledger.store().ScanLeaves(range.size(), [&](const store::StoredLeaf& leaf) {
      Result<ledger::Hash> h = ledger::CheckStoredLeaf(leaf, range.size());
      if (!h.ok()) {
        problem = h.status();
        return false;
      }
      range.Append(*h);
      if (range.size() >= size) return false;
      // The clock is read every 256 leaves only.
      paused = range.size() % 256 == 0 && std::chrono::steady_clock::now() >= deadline;
      return !paused;
    });
  }
  if (!scan.ok()) problem = DataLossError("cannot read the ledger: " + scan.message());
  if (problem.ok() && !paused && range.size() < size) {
    problem = DataLossError("leaf " + std::to_string(range.size()) + " is missing");
  }
  if (problem.ok() && range.size() >= size && range.Root() != j.signed_root) {
    problem = DataLossError("the root rebuilt from the " + std::to_string(size) +
                            " leaves does not match the checkpoint's signed root");
  }
  j.range = std::move(range);
  if (!problem.ok()) {
    j.state = "failed";
    j.problem = problem.message();
  } else if (j.range.size() >= size) {
    j.state = "verified";
  }
}

}  // namespace

std::vector<std::string_view> SplitCanonicalArray(std::string_view s) {
  std::vector<std::string_view> out;
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return out;
  int depth = 0;
  bool in_string = false;
  size_t start = 1;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  if (s.size() > 2) out.push_back(s.substr(start, s.size() - 1 - start));
  return out;
}

Status AddLedgerRoutes(http::Router& router, ledger::Ledger& ledger, const RouteOptions& o) {
  http::Route append;
  append.method = "POST";
  append.pattern = "/v1/ledger/entries";
  append.content_type = "application/json";
  append.auth = http::AuthRequirement::AnyOf({std::string(kRoleAdmin)});
  size_t max_events = o.max_events_per_request;
  append.handler = [&ledger, max_events](Request& req, Responder respond) {
    HandleAppend(ledger, max_events, req, std::move(respond));
  };
  RETURN_IF_ERROR(router.Add(std::move(append)));

  auto checkpoint = [&ledger](Request& req, Responder respond) {
    Result<store::StoredCheckpoint> cp = ledger.LatestCheckpoint();
    if (!cp.ok()) {
      return respond(Error(NotFoundError("the ledger is empty: no checkpoint yet"), req));
    }
    Response r = Response::Text(200, cp->note);
    r.headers.Set("cache-control", "no-cache");
    respond(std::move(r));
  };
  RETURN_IF_ERROR(router.Add(Get("/v1/ledger/checkpoint", checkpoint, o)));
  RETURN_IF_ERROR(router.Add(Get("/tlog/checkpoint", checkpoint, o)));

  RETURN_IF_ERROR(router.Add(Get(
      "/v1/ledger/key",
      [&ledger](Request&, Responder respond) {
        respond(Response::Text(200, ledger.VerifierKey() + "\n"));
      },
      o)));

  RETURN_IF_ERROR(router.Add(Get(
      "/v1/ledger/entries/{index}",
      [&ledger](Request& req, Responder respond) {
        Result<uint64_t> index = ParseUint("index", req.params["index"]);
        if (!index.ok()) return respond(Error(index.status(), req));
        if (*index >= ledger.Size()) {
          return respond(Error(NotFoundError("no entry " + std::to_string(*index)), req));
        }
        Result<store::StoredLeaf> leaf = ledger.GetEntry(*index);
        if (!leaf.ok()) return respond(Error(leaf.status(), req));
        Result<std::string> receipt = ledger.ReceiptFor(*index);
        if (!receipt.ok()) return respond(Error(receipt.status(), req));
        // The stored bytes are canonical JSON, so they are embedded verbatim.
        std::string body = "{\"index\":" + std::to_string(*index) + ",\"leaf_hash\":\"" +
                           HexEncode(leaf->leaf_hash) + "\",\"event\":" + leaf->data +
                           ",\"receipt\":";
        AppendJcsString(*receipt, body);
        respond(Response::Json(200, body + "}"));
      },
      o)));

  RETURN_IF_ERROR(router.Add(Get(
      "/v1/ledger/proof/inclusion",
      [&ledger](Request& req, Responder respond) {
        Result<uint64_t> index = ParseUint("index", req.QueryParam("index"));
        if (!index.ok()) return respond(Error(index.status(), req));
        uint64_t size = ledger.Size();
        if (req.QueryParam("size")) {
          Result<uint64_t> s = ParseUint("size", req.QueryParam("size"));
          if (!s.ok()) return respond(Error(s.status(), req));
          size = *s;
        }
        Result<std::vector<ledger::Hash>> proof = ledger.InclusionProof(*index, size);
        if (!proof.ok()) return respond(Error(proof.status(), req));
        Result<store::StoredLeaf> leaf = ledger.GetEntry(*index);
        if (!leaf.ok()) return respond(Error(leaf.status(), req));
        respond(Response::Json(200, "{\"index\":" + std::to_string(*index) +
                                        ",\"size\":" + std::to_string(size) + ",\"leaf_hash\":\"" +
                                        HexEncode(leaf->leaf_hash) +
                                        "\",\"hashes\":" + HashesJson(*proof) + "}"));
      },
      o)));

  RETURN_IF_ERROR(router.Add(Get(
      "/v1/ledger/proof/consistency",
      [&ledger](Request& req, Responder respond) {
        Result<uint64_t> from = ParseUint("from", req.QueryParam("from"));
        if (!from.ok()) return respond(Error(from.status(), req));
        uint64_t to = ledger.Size();
        if (req.QueryParam("to")) {
          Result<uint64_t> t = ParseUint("to", req.QueryParam("to"));
          if (!t.ok()) return respond(Error(t.status(), req));
          to = *t;
        }
        Result<std::vector<ledger::Hash>> proof = ledger.ConsistencyProof(*from, to);
        if (!proof.ok()) return respond(Error(proof.status(), req));
        respond(Response::Json(200, "{\"from\":" + std::to_string(*from) +
                                        ",\"to\":" + std::to_string(to) +
                                        ",\"hashes\":" + HashesJson(*proof) + "}"));
      },
      o)));

  auto jobs = std::make_shared<VerifyJobs>();
  http::Route verify;
  verify.method = "POST";
  verify.pattern = "/v1/ledger/verify";
  verify.auth = o.read_auth;  // it reads and changes nothing
  verify.handler = [&ledger, jobs](Request& req, Responder respond) {
    Result<store::StoredCheckpoint> cp = ledger.LatestCheckpoint();
    if (!cp.ok()) {
      return respond(Error(NotFoundError("the ledger is empty: no checkpoint yet"), req));
    }
    auto job = std::make_shared<VerifyJob>();
    MutexLock job_lock(job->mu);
    job->size = cp->size;
    job->checkpoint = cp->note;
    auto verifier = ledger::NoteVerifier::FromVerifierKey(ledger.VerifierKey());
    Result<ledger::Checkpoint> opened =
        verifier.ok() ? ledger::OpenCheckpoint(*verifier, cp->note, ledger.origin())
                      : Result<ledger::Checkpoint>(verifier.status());
    if (!opened.ok()) {
      job->state = "failed";
      job->problem = "the checkpoint at size " + std::to_string(cp->size) +
                     " does not verify: " + opened.status().message();
    } else if (opened->size != cp->size || opened->root != cp->root) {
      job->state = "failed";
      job->problem = "the signed checkpoint does not match the stored size and root";
    } else {
      job->signed_root = opened->root;
    }
    uint64_t id;
    {
      MutexLock lock(jobs->mu);
      id = jobs->next++;
      if (jobs->jobs.size() >= kMaxVerifyJobs) jobs->jobs.erase(jobs->jobs.begin());
      jobs->jobs[id] = job;
    }
    respond(Response::Json(202, VerifyJobJson(id, *job)));
  };
  RETURN_IF_ERROR(router.Add(std::move(verify)));
  RETURN_IF_ERROR(router.Add(Get(
      "/v1/ledger/verify/{id}",
      [&ledger, jobs](Request& req, Responder respond) {
        Result<uint64_t> id = ParseUint("id", req.params["id"]);
        if (!id.ok()) return respond(Error(id.status(), req));
        std::shared_ptr<VerifyJob> job;
        {
          MutexLock lock(jobs->mu);
          auto it = jobs->jobs.find(*id);
          if (it != jobs->jobs.end()) job = it->second;
        }
        if (!job) {
          return respond(Error(NotFoundError("no verification " + std::to_string(*id) +
                                             " (only the 16 newest are kept)"),
                               req));
        }
        MutexLock lock(job->mu);
        AdvanceVerifyJob(ledger, *job);
        Response r = Response::Json(200, VerifyJobJson(*id, *job));
        r.headers.Set("cache-control", "no-store");
        respond(std::move(r));
      },
      o)));

  RETURN_IF_ERROR(router.Add(Get(
      "/tlog/tile/{path...}",
      [&ledger](Request& req, Responder respond) { HandleTile(ledger, req, std::move(respond)); },
      o)));
  return OkStatus();
}

Status AddOpsRoutes(http::Router& router, Metrics& metrics, std::function<Status()> ready,
                    const RouteOptions& o) {
  RouteOptions open;  // probes are never authenticated: orchestrators call them
  RETURN_IF_ERROR(router.Add(Get(
      "/healthz",
      [](Request&, Responder respond) { respond(Response::Json(200, "{\"status\":\"ok\"}")); },
      open)));
  RETURN_IF_ERROR(router.Add(Get(
      "/readyz",
      [ready, degraded = o.degraded](Request& req, Responder respond) {
        Status st = ready();
        if (!st.ok()) {
          return respond(http::ErrorResponse(UnavailableError(st.message()), req.request_id));
        }
        std::vector<std::string> why = degraded ? degraded() : std::vector<std::string>();
        if (!why.empty()) {
          std::string body = "{\"status\":\"degraded\",\"degraded\":[";
          for (size_t i = 0; i < why.size(); ++i) {
            if (i) body += ',';
            AppendJcsString(why[i], body);
          }
          return respond(Response::Json(200, body + "]}"));
        }
        respond(Response::Json(200, "{\"status\":\"ready\"}"));
      },
      open)));
  RETURN_IF_ERROR(router.Add(Get(
      "/metrics",
      [&metrics](Request&, Responder respond) {
        respond(Response::Text(200, metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
      },
      o)));
  return OkStatus();
}

}  // namespace custody::api
