// `custody approval list|show|approve|deny`: approvals of a running server (docs/APPROVALS.md).
// Listing and showing take an admin, reader or approver token; approving and denying take an
// approver token, whose label is the person the approval is recorded under.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {

namespace json = boost::json;

void RegisterApprovalCommands(CLI::App& app) {
  CLI::App* approval =
      app.add_subcommand("approval", "Approvals of actions a policy holds for a person");
  approval->require_subcommand(1);

  struct ListArgs {
    ServerFlags server;
    std::string state = "pending";
    int limit = 100;
  };
  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = approval->add_subcommand("list", "List approvals (pending by default)");
  list->add_option("--state", list_args->state,
                   "pending (default), approved, denied, expired, cancelled, used, or all");
  list->add_option("--limit", list_args->limit, "At most this many, newest first (1-1000)");
  AddServerOptions(list, list_args->server);
  list->callback([list_args] {
    std::string target = "/v1/approvals?limit=" + std::to_string(list_args->limit);
    if (list_args->state != "all") target += "&state=" + PathSegment(list_args->state);
    PrintJson(CallServer(list_args->server, "GET", target, "", "approval list"));
  });

  struct OneArgs {
    ServerFlags server;
    std::string id;
    std::string reason;
  };
  auto show_args = std::make_shared<OneArgs>();
  CLI::App* show = approval->add_subcommand("show", "Show one approval");
  show->add_option("ID", show_args->id, "The approval id")->required();
  AddServerOptions(show, show_args->server);
  show->callback([show_args] {
    PrintJson(CallServer(show_args->server, "GET", "/v1/approvals/" + PathSegment(show_args->id),
                         "", "approval show"));
  });

  for (const char* verb : {"approve", "deny"}) {
    auto args = std::make_shared<OneArgs>();
    const std::string v = verb;
    CLI::App* cmd = approval->add_subcommand(
        verb, v == "approve" ? "Approve a pending approval (an approver token; recorded)"
                             : "Deny a pending approval (an approver token; recorded)");
    cmd->add_option("ID", args->id, "The approval id")->required();
    cmd->add_option("--reason", args->reason, "Why (recorded in the ledger)")->required();
    AddServerOptions(cmd, args->server);
    cmd->callback([args, v] {
      json::object body{{"reason", args->reason}};
      PrintJson(CallServer(args->server, "POST", "/v1/approvals/" + PathSegment(args->id) + ":" + v,
                           json::serialize(body), "approval " + v));
    });
  }
}

}  // namespace custody::cli
