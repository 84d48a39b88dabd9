// custody unmediated [--since 30d|12h|2026-11-01|<unix ms>] [--tree]: tool calls agents'
// telemetry reported (OTLP ingest, docs/OTLP.md) with no Custody decision for them: none linked,
// or the linked decision was for another tool. A reader or admin token (GET /v1/unmediated).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

std::string Str(const json::object& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
}

// One line per call, for people.
void PrintLines(const json::value& v) {
  const json::value* calls = v.is_object() ? v.as_object().if_contains("calls") : nullptr;
  if (!calls || !calls->is_array()) FailWith("unmediated: unexpected answer from the server");
  for (const json::value& c : calls->as_array()) {
    if (!c.is_object()) continue;
    const json::object& o = c.as_object();
    std::string agent = Str(o, "claimed_agent");
    if (!Str(o, "registered_agent").empty()) agent += " (registered)";
    std::cout << Str(o, "time") << "  " << Str(o, "tool") << "  agent " << agent << "  session "
              << (Str(o, "session").empty() ? "-" : Str(o, "session")) << "  trace "
              << Str(o, "trace_id") << "  " << Str(o, "reason") << "\n";
  }
}

}  // namespace

void RegisterUnmediatedCommands(CLI::App& app) {
  auto server = std::make_shared<ServerFlags>();
  auto since = std::make_shared<std::string>();
  auto tree = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand(
      "unmediated", "Tool calls seen in agents' telemetry that Custody never decided");
  c->add_option("--since", *since, "30d, 12h, 2026-11-01, 2026-11-01T08:00:00Z or Unix ms");
  c->add_flag("--tree", *tree, "One line per call instead of JSON");
  AddServerOptions(c, *server);
  c->callback([server, since, tree] {
    std::string target = "/v1/unmediated";
    if (!since->empty()) target += "?since=" + PathSegment(*since);
    json::value v = CallServer(*server, "GET", target, "", "unmediated");
    if (*tree) return PrintLines(v);
    PrintJson(v);
  });
}

}  // namespace custody::cli
