// `custody session show SID [--tree [--json]]`, `custody session revoke SID --reason …` and
// `custody credential revoke JTI`, through the running server's admin API (/v1/sessions,
// /v1/credentials). `show` prints the session as JSON; `--tree` prints it with its whole
// subtree of sub-agent sessions as an indented tree for people (`--json`: the server's
// {"session","tree"} answer). Revocation cascades to every descendant and is effective at once.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <ctime>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/server_client.h"
#include "investigate/investigate.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

struct SessionFlags {
  ServerFlags server;
  std::string id;  // sid or jti
  std::string reason;
  bool tree = false;
  bool json = false;
  bool events = false;
};

std::string Text(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return "";
  if (it->value().is_string()) return std::string(it->value().as_string());
  if (it->value().is_null()) return "";
  return json::serialize(it->value());
}

std::string UtcTime(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_int64()) return "?";
  std::time_t t = static_cast<std::time_t>(it->value().as_int64());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One line per session: sid, agent, depth, status, scopes, expiry.
std::string SessionLine(const json::object& s) {
  std::string scopes;
  if (auto it = s.find("scopes"); it != s.end() && it->value().is_array()) {
    for (const auto& x : it->value().as_array()) {
      if (x.is_string()) scopes += (scopes.empty() ? "" : " ") + std::string(x.as_string());
    }
  }
  std::string status = Text(s, "status");
  if (status == "revoked" && !Text(s, "revoke_reason").empty()) {
    status += " (" + Text(s, "revoke_reason") + ")";
  }
  return Text(s, "sid") + "  agent " + Text(s, "agent") + "  depth " + Text(s, "depth") + "  " +
         status + "  scopes [" + scopes + "]  expires " + UtcTime(s, "expires_at");
}

void PrintTree(const json::value& answer) {
  const json::object* root = nullptr;
  std::map<std::string, std::vector<const json::object*>> children;  // by parent sid
  if (answer.is_object()) {
    const json::object& a = answer.as_object();
    if (auto it = a.find("session"); it != a.end() && it->value().is_object()) {
      root = &it->value().as_object();
    }
    if (auto it = a.find("tree"); it != a.end() && it->value().is_array()) {
      for (const auto& s : it->value().as_array()) {
        if (s.is_object()) children[Text(s.as_object(), "parent_sid")].push_back(&s.as_object());
      }
    }
  }
  if (root == nullptr) FailWith("session show: the server's answer has no session");
  std::string out;
  std::string initiator = "initiator ";
  if (auto it = root->find("initiator"); it != root->end() && it->value().is_object()) {
    const json::object& i = it->value().as_object();
    initiator += Text(i, "id");
    if (!Text(i, "issuer").empty()) initiator += " (issuer " + Text(i, "issuer") + ")";
    initiator += ", " + Text(i, "verification");
    if (!Text(i, "asserted_by").empty()) initiator += " by " + Text(i, "asserted_by");
  }
  out +=
      "txn " + Text(*root, "txn") + ", root " + Text(*root, "root_sid") + ", " + initiator + "\n";
  out += SessionLine(*root) + "\n";
  // Depth-first; `prefix` carries the vertical bars of the ancestors still open.
  auto walk = [&](auto&& self, const std::string& sid, const std::string& prefix) -> void {
    auto it = children.find(sid);
    if (it == children.end()) return;
    const auto& kids = it->second;
    for (size_t i = 0; i < kids.size(); ++i) {
      bool last = i + 1 == kids.size();
      out += prefix + (last ? "└── " : "├── ") + SessionLine(*kids[i]) + "\n";
      self(self, Text(*kids[i], "sid"), prefix + (last ? "    " : "│   "));
    }
  };
  walk(walk, Text(*root, "sid"), "");
  std::cout << out << std::flush;
}

}  // namespace

void RegisterSessionCommands(CLI::App& app) {
  auto f = std::make_shared<SessionFlags>();
  auto* session = app.add_subcommand("session", "Delegated sessions (through the running server)");
  session->require_subcommand(1);

  auto* show = session->add_subcommand("show", "Show a session (--tree: with its sub-sessions)");
  AddServerOptions(show, f->server);
  show->add_option("sid", f->id, "Session id")->required();
  show->add_flag("--tree", f->tree, "Show the whole subtree as an indented tree");
  show->add_flag("--json", f->json, "With --tree/--events: print the server's JSON instead");
  show->add_flag("--events", f->events,
                 "The session tree with each session's recorded actions, in order");
  show->callback([f] {
    if (f->events) {
      json::value ev =
          CallServer(f->server, "GET", "/v1/sessions/" + PathSegment(f->id) + "/events", "",
                     "session show " + f->id + " --events");
      if (f->json) return PrintJson(ev);
      auto text = investigate::RenderSessionEvents(json::serialize(ev));
      if (!text.ok()) FailWith("session show: " + text.status().message());
      std::fputs(text->c_str(), stdout);
      return;
    }
    json::value r = CallServer(f->server, "GET", "/v1/sessions/" + PathSegment(f->id), "",
                               "session show " + f->id);
    if (!f->tree) {
      const json::object* o = r.if_object();
      PrintJson(o != nullptr && o->contains("session") ? o->at("session") : r);
    } else if (f->json) {
      PrintJson(r);
    } else {
      PrintTree(r);
    }
  });

  auto* revoke = session->add_subcommand("revoke", "Revoke a session and all its descendants");
  AddServerOptions(revoke, f->server);
  revoke->add_option("sid", f->id, "Session id")->required();
  revoke->add_option("--reason", f->reason, "Why (recorded in the session and the ledger)")
      ->required();
  revoke->callback([f] {
    json::object body{{"reason", f->reason}};
    PrintJson(CallServer(f->server, "POST", "/v1/sessions/" + PathSegment(f->id) + "/revoke",
                         json::serialize(body), "session revoke " + f->id));
  });
}

void RegisterCredentialCommands(CLI::App& app) {
  auto f = std::make_shared<SessionFlags>();
  auto* credential = app.add_subcommand("credential", "Issued credentials (tokens), by jti");
  credential->require_subcommand(1);
  auto* revoke = credential->add_subcommand("revoke", "Revoke one token by its jti");
  AddServerOptions(revoke, f->server);
  revoke->add_option("jti", f->id, "The token's jti, or a database credential's role")->required();
  revoke->callback([f] {
    if (IsDatabaseRole(f->id)) return RevokeDatabaseCredential(f->server, f->id);
    json::value r =
        CallServer(f->server, "POST", "/v1/credentials/" + PathSegment(f->id) + "/revoke", "",
                   "credential revoke " + f->id);
    if (r.is_object()) r.as_object()["jti"] = f->id;
    PrintJson(r);
  });
}

}  // namespace custody::cli
