// libFuzzer target: arbitrary bytes as one JSON-RPC message, as the gateway receives it from an
// MCP client or an upstream server (jsonrpc.h). Properties checked beyond "never a crash":
//   - a parsed message is well formed: a request has an id and a method, a notification has a
//     method and no id, a response has an id and exactly one of result and error;
//   - serializing the parsed message and parsing it again gives the same kind, method and id;
//   - the error reply the gateway would send for a message it refuses, when it could read the
//     id, is itself a valid JSON-RPC response that answers that id.
// Built by the fuzz preset (scripts/fuzz.sh); seeds in fuzz/corpus/jsonrpc/.
#include <boost/json/serialize.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "mcp/jsonrpc.h"

namespace {

using namespace custody::mcp;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "%s\n  input: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

bool ValidId(const json::value& id) { return id.is_string() || id.is_int64() || id.is_uint64(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Message msg;
  RpcError error;
  json::value id;
  if (!ParseMessage(text, &msg, &error, &id)) {
    Check(error.code == kParseError || error.code == kInvalidRequest, "unexpected error code",
          text);
    Check(id.is_null() || ValidId(id), "an error answers an id that is not one", text);
    const std::string reply = ErrorText(id, error.code, error.message);
    if (id.is_null()) return 0;  // JSON-RPC's null-id error, which MCP's own schema does not allow
    Message answer;
    RpcError reply_error;
    json::value reply_id;
    Check(ParseMessage(reply, &answer, &reply_error, &reply_id), "the error reply does not parse",
          reply);
    Check(answer.kind == MessageKind::kResponse, "the error reply is not a response", reply);
    Check(answer.id == id, "the error reply answers another id", reply);
    return 0;
  }

  switch (msg.kind) {
    case MessageKind::kRequest:
      Check(ValidId(msg.id) && !msg.method.empty(), "malformed request accepted", text);
      break;
    case MessageKind::kNotification:
      Check(msg.id.is_null() && !msg.obj.contains("id") && !msg.method.empty(),
            "malformed notification accepted", text);
      break;
    case MessageKind::kResponse:
      Check(ValidId(msg.id) && msg.method.empty() &&
                msg.obj.contains("result") != msg.obj.contains("error"),
            "malformed response accepted", text);
      break;
  }
  Check(id == msg.id, "the id read for errors differs from the message's", text);
  (void)msg.params();  // an object, whatever the message holds

  const std::string again = json::serialize(msg.obj);
  Message second;
  json::value second_id;
  Check(ParseMessage(again, &second, &error, &second_id), "a serialized message does not re-parse",
        again);
  Check(second.kind == msg.kind && second.method == msg.method && second.id == msg.id,
        "a serialized message re-parses differently", again);
  return 0;
}
