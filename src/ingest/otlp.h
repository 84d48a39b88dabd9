// OTLP/HTTP trace export bodies (docs/OTLP.md): decoding an ExportTraceServiceRequest, in
// protobuf or OTLP JSON, possibly gzip-compressed, into plain spans; encoding the collector's
// answers (ExportTraceServiceResponse, with partial_success; google.rpc.Status for errors) in
// the request's encoding. protoc-generated code stays inside otlp.cc: this header is light.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace custody::ingest {

// One span as exported, with what ingest reads of it. Ids are lowercase hex ("" when absent);
// attribute values are their text (strings as is, numbers and booleans printed, others JSON).
struct OtlpSpan {
  std::string trace_id, span_id, parent_span_id;
  std::string name;
  uint64_t start_ns = 0, end_ns = 0;
  int status_code = 0;  // 0 unset, 1 ok, 2 error
  std::string status_message;
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> resource;  // the resource's attributes
  std::string trace_state;
};

enum class Encoding { kProtobuf, kJson };

struct DecodeLimits {
  size_t max_inflated_bytes = 8 * 1024 * 1024;  // a gzip body may inflate to this, no more
  size_t max_spans = 4096;                      // spans in one request
};

// Status has no "resource exhausted": too large a request is FailedPrecondition here, which
// the route answers 413.
Status TooLargeError(std::string message);

// The encoding of a Content-Type ("application/x-protobuf" or "application/json", parameters
// ignored); InvalidArgument (answered 415) for any other.
Result<Encoding> EncodingOf(std::string_view content_type);

// Inflates a gzip body. TooLargeError when it would exceed `max_bytes`; InvalidArgument for
// a body that is not gzip.
Result<std::string> Gunzip(std::string_view body, size_t max_bytes);

// Decodes an ExportTraceServiceRequest. InvalidArgument for a malformed body (protobuf that does
// not parse, JSON that is not OTLP JSON, ids in JSON that are not hex); TooLargeError for
// more than limits.max_spans spans. Ids of the wrong length are decoded as they are: whether a
// span is acceptable is the caller's decision.
Result<std::vector<OtlpSpan>> DecodeExportRequest(std::string_view body, Encoding encoding,
                                                  const DecodeLimits& limits);

// The success answer: ExportTraceServiceResponse, with partial_success when spans were
// rejected (`rejected` of them, `message` saying why).
std::string EncodeExportResponse(Encoding encoding, int64_t rejected, const std::string& message);
// The error answer of 4xx/5xx: a google.rpc.Status with `grpc_code` and `message`.
std::string EncodeStatus(Encoding encoding, int grpc_code, const std::string& message);

// For tests and the benchmark: the protobuf ExportTraceServiceRequest of `spans` (resource
// attributes from each span's `resource`; spans grouped per distinct resource).
std::string EncodeExportRequestForTest(const std::vector<OtlpSpan>& spans);

}  // namespace custody::ingest
