#include "ingest/otlp.h"

#include <google/protobuf/util/json_util.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <cctype>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "rpc_status.pb.h"

namespace custody::ingest {
namespace {

namespace json = boost::json;
namespace otlp = opentelemetry::proto;
using otlp::collector::trace::v1::ExportTraceServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceResponse;

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string ValueText(const otlp::common::v1::AnyValue& v);

std::string ArrayText(const otlp::common::v1::ArrayValue& a) {
  json::array out;
  for (const auto& v : a.values()) out.emplace_back(ValueText(v));
  return json::serialize(out);
}

std::string ValueText(const otlp::common::v1::AnyValue& v) {
  switch (v.value_case()) {
    case otlp::common::v1::AnyValue::kStringValue:
      return v.string_value();
    case otlp::common::v1::AnyValue::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case otlp::common::v1::AnyValue::kIntValue:
      return std::to_string(v.int_value());
    case otlp::common::v1::AnyValue::kDoubleValue:
      return json::serialize(json::value(v.double_value()));
    case otlp::common::v1::AnyValue::kArrayValue:
      return ArrayText(v.array_value());
    case otlp::common::v1::AnyValue::kKvlistValue: {
      json::object o;
      for (const auto& kv : v.kvlist_value().values()) o[kv.key()] = ValueText(kv.value());
      return json::serialize(o);
    }
    case otlp::common::v1::AnyValue::kBytesValue:
      return Hex(v.bytes_value());
    default:
      return "";
  }
}

template <typename Attrs>
std::map<std::string, std::string> AttributeMap(const Attrs& attrs) {
  std::map<std::string, std::string> out;
  for (const auto& kv : attrs) out.emplace(kv.key(), ValueText(kv.value()));
  return out;
}

Result<std::vector<OtlpSpan>> SpansOf(const ExportTraceServiceRequest& req,
                                      const DecodeLimits& limits) {
  size_t count = 0;
  for (const auto& rs : req.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) count += static_cast<size_t>(ss.spans_size());
  }
  if (count > limits.max_spans) {
    return TooLargeError("too many spans in one request (" + std::to_string(count) + "; at most " +
                         std::to_string(limits.max_spans) + ")");
  }
  std::vector<OtlpSpan> out;
  out.reserve(count);
  for (const auto& rs : req.resource_spans()) {
    std::map<std::string, std::string> resource = AttributeMap(rs.resource().attributes());
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& s : ss.spans()) {
        OtlpSpan span;
        span.trace_id = Hex(s.trace_id());
        span.span_id = Hex(s.span_id());
        span.parent_span_id = Hex(s.parent_span_id());
        span.name = s.name();
        span.start_ns = s.start_time_unix_nano();
        span.end_ns = s.end_time_unix_nano();
        span.status_code = static_cast<int>(s.status().code());
        span.status_message = s.status().message();
        span.attributes = AttributeMap(s.attributes());
        span.resource = resource;
        span.trace_state = s.trace_state();
        out.push_back(std::move(span));
      }
    }
  }
  return out;
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return s.size() % 2 == 0;
}

// OTLP JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64 for
// bytes: the ids are rewritten to base64 before protobuf's parser reads the rest.
Status HexIdsToBase64(json::object& span) {
  for (const char* key :
       {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}) {
    auto it = span.find(key);
    if (it == span.end()) continue;
    if (!it->value().is_string()) {
      return InvalidArgumentError(std::string(key) + " must be a hex string");
    }
    std::string_view hex = it->value().get_string();
    if (!IsHex(hex)) return InvalidArgumentError(std::string(key) + " must be a hex string");
    std::string bytes;
    bytes.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    it->value() = Base64Encode(bytes);
  }
  return OkStatus();
}

json::array* ArrayMember(json::object& o, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = o.find(k);
    if (it != o.end() && it->value().is_array()) return &it->value().get_array();
  }
  return nullptr;
}

Status RewriteJsonIds(json::value& root) {
  if (!root.is_object()) return InvalidArgumentError("an OTLP JSON body is an object");
  json::array* resource_spans = ArrayMember(root.get_object(), {"resourceSpans", "resource_spans"});
  if (!resource_spans) return OkStatus();
  for (json::value& rs : *resource_spans) {
    if (!rs.is_object()) continue;  // protobuf's parser refuses it
    json::array* scopes = ArrayMember(rs.get_object(), {"scopeSpans", "scope_spans"});
    if (!scopes) continue;
    for (json::value& ss : *scopes) {
      if (!ss.is_object()) continue;
      json::array* spans = ArrayMember(ss.get_object(), {"spans"});
      if (!spans) continue;
      for (json::value& s : *spans) {
        if (!s.is_object()) continue;
        RETURN_IF_ERROR(HexIdsToBase64(s.get_object()));
        if (json::array* links = ArrayMember(s.get_object(), {"links"})) {
          for (json::value& l : *links) {
            if (l.is_object()) RETURN_IF_ERROR(HexIdsToBase64(l.get_object()));
          }
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace

Status TooLargeError(std::string message) {
  return Status(StatusCode::kFailedPrecondition, std::move(message));
}

Result<Encoding> EncodingOf(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  std::string lower(media);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "application/x-protobuf") return Encoding::kProtobuf;
  if (lower == "application/json") return Encoding::kJson;
  return InvalidArgumentError("Content-Type must be application/x-protobuf or application/json");
}

Result<std::string> Gunzip(std::string_view body, size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return InternalError("zlib: cannot initialize");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  z.avail_in = static_cast<uInt>(body.size());
  std::string out;
  char buf[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return InvalidArgumentError("the body is not valid gzip");
    }
    size_t produced = sizeof(buf) - z.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&z);
      return TooLargeError("the body inflates to more than " + std::to_string(max_bytes) +
                           " bytes");
    }
    out.append(buf, produced);
    if (rc == Z_OK && produced == 0 && z.avail_in == 0) {
      inflateEnd(&z);
      return InvalidArgumentError("the gzip body is truncated");
    }
  }
  inflateEnd(&z);
  return out;
}

Result<std::vector<OtlpSpan>> DecodeExportRequest(std::string_view body, Encoding encoding,
                                                  const DecodeLimits& limits) {
  ExportTraceServiceRequest req;
  if (encoding == Encoding::kProtobuf) {
    if (body.size() > static_cast<size_t>(INT32_MAX) ||
        !req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return InvalidArgumentError("the body is not a protobuf ExportTraceServiceRequest");
    }
    return SpansOf(req, limits);
  }
  boost::system::error_code ec;
  json::value root = ParseJson(body, ec);
  if (ec) return InvalidArgumentError("the body is not JSON");
  RETURN_IF_ERROR(RewriteJsonIds(root));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // OTLP: receivers ignore fields they do not know
  auto st = google::protobuf::util::JsonStringToMessage(json::serialize(root), &req, options);
  if (!st.ok())
    return InvalidArgumentError("the body is not an OTLP JSON ExportTraceServiceRequest");
  return SpansOf(req, limits);
}

namespace {

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

}  // namespace

std::string EncodeExportResponse(Encoding encoding, int64_t rejected, const std::string& message) {
  ExportTraceServiceResponse resp;
  if (rejected > 0 || !message.empty()) {
    resp.mutable_partial_success()->set_rejected_spans(rejected);
    resp.mutable_partial_success()->set_error_message(message);
  }
  return encoding == Encoding::kProtobuf ? resp.SerializeAsString() : ToJson(resp);
}

std::string EncodeStatus(Encoding encoding, int grpc_code, const std::string& message) {
  google::rpc::Status s;
  s.set_code(grpc_code);
  s.set_message(message);
  return encoding == Encoding::kProtobuf ? s.SerializeAsString() : ToJson(s);
}

namespace {

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

std::string EncodeExportRequestForTest(const std::vector<OtlpSpan>& spans) {
  ExportTraceServiceRequest req;
  std::map<std::map<std::string, std::string>, otlp::trace::v1::ScopeSpans*> scopes;
  for (const OtlpSpan& span : spans) {
    auto& scope = scopes[span.resource];
    if (!scope) {
      auto* rs = req.add_resource_spans();
      for (const auto& [k, v] : span.resource) {
        auto* kv = rs->mutable_resource()->add_attributes();
        kv->set_key(k);
        kv->mutable_value()->set_string_value(v);
      }
      scope = rs->add_scope_spans();
    }
    auto* s = scope->add_spans();
    s->set_trace_id(Unhex(span.trace_id));
    s->set_span_id(Unhex(span.span_id));
    s->set_parent_span_id(Unhex(span.parent_span_id));
    s->set_name(span.name);
    s->set_start_time_unix_nano(span.start_ns);
    s->set_end_time_unix_nano(span.end_ns);
    s->mutable_status()->set_code(
        static_cast<otlp::trace::v1::Status::StatusCode>(span.status_code));
    s->mutable_status()->set_message(span.status_message);
    for (const auto& [k, v] : span.attributes) {
      auto* kv = s->add_attributes();
      kv->set_key(k);
      kv->mutable_value()->set_string_value(v);
    }
  }
  return req.SerializeAsString();
}

}  // namespace custody::ingest
