// The `custody` command. The only main() in the project.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Custody: a chain of custody for the actions of AI agents"};
  app.require_subcommand(1);
#ifdef CUSTODY_HAVE_LEDGER
  custody::cli::RegisterLedgerCommands(app);
#endif
#ifdef CUSTODY_HAVE_POLICY
  custody::cli::RegisterCedarCommands(app);
#endif
#ifdef CUSTODY_HAVE_API
  custody::cli::RegisterServeCommands(app);
  custody::cli::RegisterMigrateCommands(app);
  custody::cli::RegisterAdminCommands(app);
#endif
#ifdef CUSTODY_HAVE_IDENTITY_CLI
  custody::cli::RegisterAgentCommands(app);
  custody::cli::RegisterSessionCommands(app);
  custody::cli::RegisterCredentialCommands(app);
  custody::cli::RegisterDatabaseCredentialCommands(app);
#endif
#ifdef CUSTODY_HAVE_TOKEN_CLI
  custody::cli::RegisterTokenCommands(app);
#endif
#ifdef CUSTODY_HAVE_KEY_CLI
  custody::cli::RegisterKeyCommands(app);
#endif
#ifdef CUSTODY_HAVE_POLICY_CLI
  custody::cli::RegisterPolicyCommands(app);
  custody::cli::RegisterContainCommands(app);
  custody::cli::RegisterApprovalCommands(app);
#endif
#ifdef CUSTODY_HAVE_INVESTIGATE_CLI
  custody::cli::RegisterInvestigateCommands(app);
  custody::cli::RegisterUnmediatedCommands(app);
#endif
#ifdef CUSTODY_HAVE_TOOL_CLI
  custody::cli::RegisterToolCommands(app);
#endif
#ifdef CUSTODY_HAVE_INDEX_CLI
  custody::cli::RegisterIndexCommands(app);
#endif
#ifdef CUSTODY_HAVE_CONFIG_CLI
  custody::cli::RegisterConfigCommands(app);
#endif
#ifdef CUSTODY_HAVE_EXPORT_CLI
  custody::cli::RegisterExportCommands(app);
#endif
  CLI11_PARSE(app, argc, argv);
  return 0;
}
