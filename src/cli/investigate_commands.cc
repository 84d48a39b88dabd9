// Investigations through the running server (reader or admin token):
//   custody trace EVENT_ID [--tree]
//   custody session-events SID [--tree]
//   custody blast-radius agent|session|user ID
//   custody review AGENT [--since 30d|2026-11-01|<unix ms>]
//   custody graph [--format json|dot]
//   custody evidence SESSION --out FILE
// JSON by default; --tree renders the answer as an indented tree for people (client-side, from
// the same JSON). `custody ledger verify-bundle` checks an evidence file offline.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/server_client.h"
#include "investigate/evidence.h"
#include "investigate/investigate.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

void PrintTreeOr(const json::value& answer, bool tree,
                 Result<std::string> (*render)(std::string_view)) {
  if (!tree) return PrintJson(answer);
  auto text = render(json::serialize(answer));
  if (!text.ok()) FailWith("cannot render the answer: " + text.status().message());
  std::cout << *text;
}

// A query-string value (RFC 3986 unreserved pass through).
std::string QueryValue(std::string_view s) { return PathSegment(s); }

}  // namespace

void RegisterInvestigateCommands(CLI::App& app) {
  auto server = std::make_shared<ServerFlags>();

  {
    auto id = std::make_shared<std::string>();
    auto tree = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "trace", "Who initiated an action, which identity executed it, and what allowed it");
    auto role = std::make_shared<std::string>();
    auto* event =
        c->add_option("EVENT_ID", *id, "Action id (or the event id of its outcome or containment)");
    // A just-in-time database credential's role (docs/CREDENTIALS.md): its lease names the
    // decision that issued it, whose trace leads to the initiator.
    auto* by_role = c->add_option("--role", *role, "A database credential's PostgreSQL role");
    event->excludes(by_role);
    c->add_flag("--tree", *tree, "Readable tree instead of JSON");
    AddServerOptions(c, *server);
    c->callback([server, id, tree, role] {
      json::value lease;
      if (!role->empty()) {
        lease = CallServer(*server, "GET", "/v1/credentials/" + PathSegment(*role), "",
                           "credential " + *role);
        const json::value* action =
            lease.is_object() ? lease.as_object().if_contains("action_id") : nullptr;
        if (action && action->is_string()) *id = std::string(action->get_string());
      }
      if (id->empty()) throw CLI::ValidationError("trace", "EVENT_ID or --role is required");
      json::value v = CallServer(*server, "GET", "/v1/trace/" + PathSegment(*id), "", "trace");
      if (!lease.is_null() && !*tree) {
        PrintJson(json::object{{"credential", lease}, {"trace", v}});
        return;
      }
      PrintTreeOr(v, *tree, &investigate::RenderTrace);
    });
  }
  {
    auto sid = std::make_shared<std::string>();
    auto tree = std::make_shared<bool>(false);
    CLI::App* c =
        app.add_subcommand("session-events", "A session tree with each session's actions in order");
    c->add_option("SID", *sid, "Session id")->required();
    c->add_flag("--tree", *tree, "Readable tree instead of JSON");
    AddServerOptions(c, *server);
    c->callback([server, sid, tree] {
      json::value v = CallServer(*server, "GET", "/v1/sessions/" + PathSegment(*sid) + "/events",
                                 "", "session events");
      PrintTreeOr(v, *tree, &investigate::RenderSessionEvents);
    });
  }
  {
    auto kind = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    CLI::App* c = app.add_subcommand(
        "blast-radius",
        "What an agent, session or user could reach (policies evaluated) and did reach");
    c->add_option("KIND", *kind, "agent, session or user")
        ->required()
        ->check(CLI::IsMember({"agent", "session", "user"}));
    c->add_option("ID", *id, "Agent name, session id or initiator id")->required();
    AddServerOptions(c, *server);
    c->callback([server, kind, id] {
      PrintJson(CallServer(*server, "GET",
                           "/v1/blast-radius?kind=" + QueryValue(*kind) + "&id=" + QueryValue(*id),
                           "", "blast-radius"));
    });
  }
  {
    auto agent = std::make_shared<std::string>();
    auto since = std::make_shared<std::string>();
    CLI::App* c = app.add_subcommand(
        "review", "Granted scopes against used ones; grants never used are removal candidates");
    c->add_option("AGENT", *agent, "Agent name")->required();
    c->add_option("--since", *since, "30d, 12h, 2026-11-01, 2026-11-01T08:00:00Z or Unix ms");
    AddServerOptions(c, *server);
    c->callback([server, agent, since] {
      std::string target = "/v1/review/" + PathSegment(*agent);
      if (!since->empty()) target += "?since=" + QueryValue(*since);
      PrintJson(CallServer(*server, "GET", target, "", "review"));
    });
  }
  {
    auto format = std::make_shared<std::string>("json");
    CLI::App* c = app.add_subcommand(
        "graph", "The identity graph: humans -> sessions -> agents -> tools and resources");
    c->add_option("--format", *format, "json or dot")->check(CLI::IsMember({"json", "dot"}));
    AddServerOptions(c, *server);
    c->callback([server, format] {
      json::value v = CallServer(*server, "GET", "/v1/graph?format=json", "", "graph");
      if (*format == "json") return PrintJson(v);
      auto dot = investigate::GraphToDot(json::serialize(v));
      if (!dot.ok()) FailWith("graph: " + dot.status().message());
      std::cout << *dot;
    });
  }
  {
    auto sid = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    CLI::App* c = app.add_subcommand(
        "evidence",
        "Write an evidence bundle: every event of a session tree with inclusion proofs against "
        "one signed checkpoint (check it with `custody ledger verify-bundle`)");
    c->add_option("SESSION", *sid, "Session id (its whole subtree is included)")->required();
    c->add_option("--out", *out, "Output file")->required();
    AddServerOptions(c, *server);
    c->callback([server, sid, out] {
      json::value v =
          CallServer(*server, "GET", "/v1/evidence/" + PathSegment(*sid), "", "evidence");
      std::string bundle = json::serialize(v);
      // Check it before writing, so a bad bundle is never handed on as evidence.
      auto report = investigate::VerifyEvidence(bundle);
      if (!report.ok()) FailWith("evidence: " + report.status().message());
      if (!report->ok)
        FailWith("evidence: the server's bundle does not verify: " + report->problems.front());
      std::ofstream f(*out, std::ios::binary | std::ios::trunc);
      f << bundle << "\n";
      f.close();
      if (!f) FailWith("evidence: cannot write " + *out);
      PrintJson(json::object{{"out", *out},
                             {"session", *sid},
                             {"events", report->events},
                             {"checkpoint_size", report->checkpoint_size}});
    });
  }
}

}  // namespace custody::cli
