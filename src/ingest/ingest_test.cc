// OTLP ingest: decoding (protobuf, OTLP JSON with hex ids, gzip, limits), the collector's
// answers, rate limiting, and the mapping and linking of spans to action.observed events.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <set>

#include "attribution/testing/world.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "ingest/ingest_service.h"
#include "ingest/otlp.h"
#include "ledger/ledger.h"

namespace custody::ingest {
namespace {

namespace json = boost::json;
using attribution::testkit::World;

constexpr const char* kTrace = "0af7651916cd43dd8448eb211c80319c";

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

OtlpSpan ToolSpan(const std::string& span_id, const std::string& tool,
                  const std::string& parent = "") {
  OtlpSpan s;
  s.trace_id = kTrace;
  s.span_id = span_id;
  s.parent_span_id = parent;
  s.name = "execute_tool " + tool;
  s.start_ns = NowNs() - 2'000'000;
  s.end_ns = NowNs();
  s.attributes = {{"gen_ai.operation.name", "execute_tool"},
                  {"gen_ai.tool.name", tool},
                  {"gen_ai.tool.call.id", "call-" + span_id},
                  {"gen_ai.agent.name", "planner"}};
  s.resource = {{"service.name", "agent-under-test"}};
  return s;
}

std::string Gzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(
      deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(Otlp, ProtobufRoundTripKeepsIdsAttributesAndResource) {
  OtlpSpan s = ToolSpan("b7ad6b7169203331", "read", "00f067aa0ba902b7");
  s.status_code = 2;
  s.status_message = "boom";
  auto spans = DecodeExportRequest(
      EncodeExportRequestForTest({s, ToolSpan("1111111111111111", "x")}), Encoding::kProtobuf, {});
  ASSERT_TRUE(spans.ok()) << spans.status().ToString();
  ASSERT_EQ(spans->size(), 2u);
  const OtlpSpan& d = (*spans)[0];
  EXPECT_EQ(d.trace_id, kTrace);
  EXPECT_EQ(d.span_id, "b7ad6b7169203331");
  EXPECT_EQ(d.parent_span_id, "00f067aa0ba902b7");
  EXPECT_EQ(d.start_ns, s.start_ns);
  EXPECT_EQ(d.status_code, 2);
  EXPECT_EQ(d.status_message, "boom");
  EXPECT_EQ(d.attributes.at("gen_ai.tool.name"), "read");
  EXPECT_EQ(d.resource.at("service.name"), "agent-under-test");
}

TEST(Otlp, JsonIdsAreHexEnumsIntsAndUnknownFieldsIgnored) {
  const std::string body = R"({"resourceSpans":[{"resource":{"attributes":[
      {"key":"service.name","value":{"stringValue":"svc"}}]},
    "scopeSpans":[{"scope":{"name":"s"},"spans":[{
      "traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",
      "parentSpanId":"00f067aa0ba902b7","name":"n","kind":3,
      "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000000000001,
      "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},
                    {"key":"n","value":{"intValue":"42"}},{"key":"b","value":{"boolValue":true}}],
      "status":{"code":2},"aNewField":{"x":1}}]}]}]})";
  auto spans = DecodeExportRequest(body, Encoding::kJson, {});
  ASSERT_TRUE(spans.ok()) << spans.status().ToString();
  ASSERT_EQ(spans->size(), 1u);
  const OtlpSpan& s = (*spans)[0];
  EXPECT_EQ(s.trace_id, kTrace);
  EXPECT_EQ(s.span_id, "b7ad6b7169203331");
  EXPECT_EQ(s.parent_span_id, "00f067aa0ba902b7");
  EXPECT_EQ(s.start_ns, 1700000000000000000u);
  EXPECT_EQ(s.end_ns, 1700000000000000001u);
  EXPECT_EQ(s.status_code, 2);
  EXPECT_EQ(s.attributes.at("n"), "42");
  EXPECT_EQ(s.attributes.at("b"), "true");
  EXPECT_EQ(s.resource.at("service.name"), "svc");
}

TEST(Otlp, MalformedBodiesAreInvalidArgument) {
  for (
      const char* bad :
      {"not json", "[1]", R"({"resourceSpans":7})",
       R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]})",
       R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":12}]}]}]})",
       // base64, as protobuf's own JSON mapping would write it: not OTLP JSON
       R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"CvdlGRbNQ92ESOshHIAxnA=="}]}]}]})"}) {
    auto r = DecodeExportRequest(bad, Encoding::kJson, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  for (std::string bad : {std::string("\xff\xff\xff\xff"), std::string("\x0a\x05\x01", 3)}) {
    auto r = DecodeExportRequest(bad, Encoding::kProtobuf, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(EncodingOf("text/plain").ok());
  EXPECT_EQ(*EncodingOf("application/json; charset=utf-8"), Encoding::kJson);
  EXPECT_EQ(*EncodingOf("application/x-protobuf"), Encoding::kProtobuf);
}

TEST(Otlp, GzipIsInflatedWithinItsBound) {
  std::string body = EncodeExportRequestForTest({ToolSpan("b7ad6b7169203331", "read")});
  auto in = Gunzip(Gzip(body), 1 << 20);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(*in, body);
  // A small body that inflates past the bound (a zip bomb) is refused as too large.
  std::string bomb = Gzip(std::string(4 << 20, 'a'));
  EXPECT_LT(bomb.size(), 10000u);
  auto r = Gunzip(bomb, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Gunzip("plain text", 1 << 20).status().code(), StatusCode::kInvalidArgument);
  std::string truncated = Gzip(body);
  truncated.resize(truncated.size() / 2);
  EXPECT_EQ(Gunzip(truncated, 1 << 20).status().code(), StatusCode::kInvalidArgument);
}

TEST(Otlp, TooManySpansIsTooLarge) {
  std::vector<OtlpSpan> spans;
  for (int i = 0; i < 11; ++i)
    spans.push_back(ToolSpan("b7ad6b716920333" + std::to_string(i % 10), "t"));
  DecodeLimits limits;
  limits.max_spans = 10;
  auto r = DecodeExportRequest(EncodeExportRequestForTest(spans), Encoding::kProtobuf, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(Otlp, AnswersAreTheCollectorsMessages) {
  EXPECT_EQ(EncodeExportResponse(Encoding::kJson, 0, ""), "{}");
  EXPECT_EQ(json::parse(EncodeExportResponse(Encoding::kJson, 2, "why")),
            json::parse(R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"why"}})"));
  EXPECT_EQ(EncodeExportResponse(Encoding::kProtobuf, 0, ""), "");
  EXPECT_EQ(json::parse(EncodeStatus(Encoding::kJson, 3, "bad")),
            json::parse(R"({"code":3,"message":"bad"})"));
  EXPECT_EQ(EncodeStatus(Encoding::kProtobuf, 3, "bad"), std::string("\x08\x03\x12\x03"
                                                                     "bad"));
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = World::Create(std::filesystem::temp_directory_path() /
                           ("custody-ingest-" + std::to_string(::getpid()) + "-" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(w_->svc
                    ->PublishPolicies("permit(principal, action, resource in Server::\"github\");",
                                      "", "admin")
                    .ok());
    recorder_ = std::make_unique<events::Recorder>(*w_->ledger);
    IngestOptions o;
    o.spans_per_second = 10;
    o.burst_spans = 100;
    svc_ = std::make_unique<IngestService>(*w_->tokens, *w_->svc, *recorder_, w_->clock, w_->random,
                                           o);
  }
  void TearDown() override { svc_.reset(); }

  // The action.observed events at and after ledger index `from`.
  std::vector<json::object> Observed(uint64_t from) {
    std::vector<json::object> out;
    EXPECT_TRUE(w_->ledger->store()
                    .ScanLeaves(from,
                                [&](const store::StoredLeaf& l) {
                                  if (l.columns.kind == "action.observed")
                                    out.push_back(json::parse(l.data).as_object());
                                  return true;
                                })
                    .ok());
    return out;
  }
  static std::string Link(const json::object& e, const char* k) {
    return std::string(e.at("link").at(k).as_string());
  }

  IngestCredential IngestToken() { return {"ingest-token", "0123456789abcdef", "", ""}; }

  std::unique_ptr<World> w_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<IngestService> svc_;
};

TEST_F(IngestTest, ToolSpansLinkToTheDecisionTheyRanUnderOrAreUnmediated) {
  auto session = w_->Root("planner");
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  attribution::AuthorizeRequest a = World::Call(session->token, "github", "create_issue");
  a.traceparent = std::string("00-") + kTrace + "-00f067aa0ba902b7-01";
  auto decided = w_->svc->AuthorizeSync(a);
  ASSERT_TRUE(decided.ok()) << decided.status().ToString();
  ASSERT_TRUE(decided->allowed);
  const std::string decision_span = decided->traceparent.substr(36, 16);

  const uint64_t before = w_->ledger->Size();
  OtlpSpan agent = ToolSpan("aaaaaaaaaaaaaaa1", "");
  agent.attributes = {{"gen_ai.operation.name", "invoke_agent"},
                      {"gen_ai.agent.name", "planner"},
                      {"custody.session.id", session->sid}};
  std::vector<OtlpSpan> spans = {
      ToolSpan("bbbbbbbbbbbbbbb1", "create_issue", decision_span),  // through Custody
      ToolSpan("bbbbbbbbbbbbbbb2", "delete_repo", decision_span),   // another tool than decided
      ToolSpan("bbbbbbbbbbbbbbb3", "shell", "aaaaaaaaaaaaaaa1"),    // direct, under the agent
      ToolSpan("bbbbbbbbbbbbbbb4", "curl"),                         // direct, unlinked
      agent};
  OtlpSpan chat = ToolSpan("ccccccccccccccc1", "");
  chat.attributes = {{"gen_ai.operation.name", "chat"}};  // not an agent or tool operation
  spans.push_back(chat);
  auto out = svc_->ExportSync(IngestToken(), spans);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->received, 6);
  EXPECT_EQ(out->recorded, 5);
  EXPECT_EQ(out->rejected, 0);

  auto events = Observed(before);
  ASSERT_EQ(events.size(), 5u);
  std::map<std::string, json::object> by_span;
  for (auto& e : events) by_span[std::string(e.at("span").at("span_id").as_string())] = e;
  const json::object& linked = by_span.at("bbbbbbbbbbbbbbb1");
  EXPECT_TRUE(linked.at("observed").as_bool());
  EXPECT_EQ(Link(linked, "how"), "decision-span");
  EXPECT_EQ(Link(linked, "decision"), decided->action_id);
  EXPECT_EQ(Link(linked, "decision_target"), "github/create_issue");
  EXPECT_EQ(Link(linked, "session"), session->sid);
  EXPECT_EQ(Link(linked, "verification"), "asserted");
  EXPECT_EQ(Link(linked, "asserted_by"), "ingest-token:0123456789abcdef");
  EXPECT_EQ(linked.at("claimed_agent").at("registered").as_string(), "planner");
  EXPECT_EQ(linked.at("actor").at("session").as_string(), session->sid);
  EXPECT_EQ(Link(by_span.at("aaaaaaaaaaaaaaa1"), "how"), "session-attribute");
  EXPECT_EQ(Link(by_span.at("bbbbbbbbbbbbbbb3"), "how"), "parent-span");
  EXPECT_EQ(Link(by_span.at("bbbbbbbbbbbbbbb3"), "session"), session->sid);
  EXPECT_EQ(Link(by_span.at("bbbbbbbbbbbbbbb4"), "how"), "none");
  EXPECT_EQ(by_span.at("bbbbbbbbbbbbbbb4").at("actor").at("session").as_string(), "");

  auto unmediated = svc_->Unmediated(0);
  ASSERT_TRUE(unmediated.ok()) << unmediated.status().ToString();
  std::set<std::string> tools;
  for (const auto& c : *unmediated) tools.insert(c.tool);
  EXPECT_EQ(tools, (std::set<std::string>{"delete_repo", "shell", "curl"}));
  // Since a moment after: none.
  auto later = svc_->Unmediated(static_cast<int64_t>(NowNs() / 1000000) + 60000);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->empty());
}

// --since bounds what `unmediated` reads: the ledger from the first entry recorded late enough
// to hold a span of that time, not every entry; and it finds what the whole scan finds.
TEST_F(IngestTest, UnmediatedSinceReadsTheLedgerOnlyFromThatTimeOn) {
  FakeClock clock(w_->clock.Now() + std::chrono::hours(72));
  IngestOptions o;
  o.spans_per_second = 1e6;
  o.burst_spans = 1e6;
  IngestService at(*w_->tokens, *w_->svc, *recorder_, clock, w_->random, o);
  auto spans = [&](int first, int n, const std::string& tool) {
    const uint64_t now_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock.Now().time_since_epoch())
            .count());
    std::vector<OtlpSpan> out;
    for (int i = first; i < first + n; ++i) {
      char id[17];
      snprintf(id, sizeof id, "%016x", 0x1000 + i);
      OtlpSpan s = ToolSpan(id, tool);
      s.start_ns = now_ns - 2'000'000;
      s.end_ns = now_ns;
      out.push_back(std::move(s));
    }
    return out;
  };
  const int64_t day3_ms = UnixMillis(clock.Now());
  auto early = at.ExportSync(IngestToken(), spans(0, 300, "curl"));
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  ASSERT_EQ(early->recorded, 300);
  clock.Advance(std::chrono::hours(48));
  const int64_t day5_ms = UnixMillis(clock.Now());
  auto late = at.ExportSync(IngestToken(), spans(300, 2, "shell"));
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  const uint64_t size = w_->ledger->Size();

  uint64_t scanned = 0;
  auto all = at.Unmediated(0, &scanned);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 302u);
  EXPECT_EQ(scanned, size);
  auto both = at.Unmediated(day3_ms - 60000, &scanned);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->size(), 302u);
  EXPECT_LT(scanned, size);  // not the entries of the World's set-up, three days before

  auto recent = at.Unmediated(day5_ms - 24 * 3600 * 1000, &scanned);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].tool, "shell");
  EXPECT_EQ((*recent)[1].tool, "shell");
  EXPECT_EQ(scanned, 2u);  // the two entries of day 5, none of the 300 of day 3
  auto none = at.Unmediated(day5_ms + 60000, &scanned);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_LE(scanned, 2u);
}

TEST_F(IngestTest, ASessionTokenVerifiesItsOwnSpansAndCannotClaimAnotherTree) {
  auto mine = w_->Root("planner");
  auto other = w_->Root("planner");
  ASSERT_TRUE(mine.ok() && other.ok());
  auto va = w_->tokens->VerifyAccessToken(mine->token, "");
  ASSERT_TRUE(va.ok()) << va.status().ToString();
  IngestCredential cred{"session", va->session.sid, va->session.agent, va->session.root_sid};

  // A decision of the other tree: its span cannot pull my span into that tree.
  attribution::AuthorizeRequest a = World::Call(other->token, "github", "create_issue");
  auto decided = w_->svc->AuthorizeSync(a);
  ASSERT_TRUE(decided.ok());
  OtlpSpan s = ToolSpan("bbbbbbbbbbbbbbb1", "create_issue", decided->traceparent.substr(36, 16));
  s.trace_id = decided->traceparent.substr(3, 32);
  OtlpSpan claim = ToolSpan("bbbbbbbbbbbbbbb2", "x");
  claim.attributes["custody.session.id"] = other->sid;
  const uint64_t before = w_->ledger->Size();
  auto out = svc_->ExportSync(cred, {s, claim});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto events = Observed(before);
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(Link(e, "how"), "session-token");
    EXPECT_EQ(Link(e, "session"), mine->sid);
    EXPECT_EQ(Link(e, "verification"), "verified");
    EXPECT_FALSE(e.at("link").as_object().contains("asserted_by"));
  }
}

TEST_F(IngestTest, AbsurdSpansAreRejectedAndARequestOfOnlyThoseRecordsNothing) {
  OtlpSpan zero_trace = ToolSpan("bbbbbbbbbbbbbbb1", "t");
  zero_trace.trace_id = std::string(32, '0');
  OtlpSpan short_span = ToolSpan("bbbb", "t");
  OtlpSpan future = ToolSpan("bbbbbbbbbbbbbbb2", "t");
  future.start_ns = NowNs() + 3600ull * 1000000000ull;
  future.end_ns = future.start_ns + 1;
  OtlpSpan ancient = ToolSpan("bbbbbbbbbbbbbbb3", "t");
  ancient.start_ns = 1;
  ancient.end_ns = 2;
  OtlpSpan backwards = ToolSpan("bbbbbbbbbbbbbbb4", "t");
  backwards.end_ns = backwards.start_ns - 1;
  const uint64_t before = w_->ledger->Size();
  auto r = svc_->ExportSync(IngestToken(), {zero_trace, short_span, future, ancient, backwards});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Observed(before).empty());

  // With a sound one: partial success.
  auto partial = svc_->ExportSync(IngestToken(), {zero_trace, ToolSpan("bbbbbbbbbbbbbbb5", "t")});
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_EQ(partial->rejected, 1);
  EXPECT_EQ(partial->recorded, 1);
  EXPECT_NE(partial->message.find("trace_id"), std::string::npos);
  EXPECT_EQ(Observed(before).size(), 1u);
}

TEST_F(IngestTest, RecordedStringsAreBounded) {
  OtlpSpan s = ToolSpan("bbbbbbbbbbbbbbb1", std::string(10000, 'x'));
  s.status_message = std::string(5000, 'y');
  const uint64_t before = w_->ledger->Size();
  ASSERT_TRUE(svc_->ExportSync(IngestToken(), {s}).ok());
  auto events = Observed(before);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_LT(events[0].at("tool").at("name").as_string().size(), 300u);
  EXPECT_LT(events[0].at("status").at("message").as_string().size(), 1100u);
}

TEST_F(IngestTest, AFloodFromOneCredentialIsHeldBackOthersAreNot) {
  EXPECT_FALSE(svc_->Admit("a", 60).has_value());
  EXPECT_FALSE(svc_->Admit("a", 40).has_value());
  auto wait = svc_->Admit("a", 20);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 2);  // 20 spans at 10/s
  EXPECT_FALSE(svc_->Admit("b", 100).has_value());
}

// Backpressure: beyond its bound of queued spans, Export answers Unavailable at once (the route
// makes it 503 with Retry-After) and records nothing of that request; every request it took is
// recorded whole, though the worker also waits for the ledger (a small bound of events in it).
TEST(IngestBackpressure, AFullQueueIsRefusedAndWhatItTookIsRecordedWhole) {
  auto w = World::Create(std::filesystem::temp_directory_path() /
                         ("custody-ingest-backpressure-" + std::to_string(::getpid())));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  events::Recorder recorder(*(*w)->ledger);
  IngestOptions o;
  o.max_queued_spans = 512;
  o.max_events_in_ledger = 256;
  auto svc = std::make_unique<IngestService>(*(*w)->tokens, *(*w)->svc, recorder, (*w)->clock,
                                             (*w)->random, o);
  const uint64_t from = (*w)->ledger->Size();

  constexpr int kRequests = 24;
  constexpr int kSpans = 128;
  std::vector<std::vector<OtlpSpan>> bodies(kRequests);
  for (int r = 0; r < kRequests; ++r) {
    for (int i = 0; i < kSpans; ++i) {
      char id[17];
      std::snprintf(id, sizeof id, "%016x", r * kSpans + i + 1);
      bodies[r].push_back(ToolSpan(id, "read"));
    }
  }
  // All at once, as exporters that do not wait for each other: far more than the bound.
  std::vector<std::promise<Result<ExportOutcome>>> answers(kRequests);
  std::vector<std::future<Result<ExportOutcome>>> futures;
  for (auto& a : answers) futures.push_back(a.get_future());
  for (int r = 0; r < kRequests; ++r) {
    svc->Export(IngestCredential{"ingest-token", "0123456789abcdef", "", ""}, bodies[r],
                [&answers, r](Result<ExportOutcome> out) { answers[r].set_value(std::move(out)); });
  }
  std::vector<bool> took(kRequests);
  int refused = 0;
  for (int r = 0; r < kRequests; ++r) {
    Result<ExportOutcome> out = futures[r].get();
    took[r] = out.ok();
    if (out.ok()) {
      EXPECT_EQ(out->recorded, kSpans);
    } else {
      EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().ToString();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_LT(refused, kRequests);

  std::set<std::string> recorded;
  ASSERT_TRUE((*w)->ledger->store()
                  .ScanLeaves(from,
                              [&](const store::StoredLeaf& l) {
                                if (l.columns.kind == "action.observed") {
                                  recorded.insert(std::string(
                                      json::parse(l.data).at("span").at("span_id").as_string()));
                                }
                                return true;
                              })
                  .ok());
  for (int r = 0; r < kRequests; ++r) {
    int in_ledger = 0;
    for (const OtlpSpan& s : bodies[r]) in_ledger += recorded.count(s.span_id);
    EXPECT_EQ(in_ledger, took[r] ? kSpans : 0) << "request " << r;
  }
  EXPECT_EQ(recorded.size(), static_cast<size_t>(kRequests - refused) * kSpans);
  svc.reset();
}

}  // namespace
}  // namespace custody::ingest
