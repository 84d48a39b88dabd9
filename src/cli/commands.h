// Registration of the `custody` subcommands. Each group lives in its own file in src/cli/ and
// attaches its subcommands to the root CLI11 app. A command reports failure by throwing
// CLI::RuntimeError(exit_code) after printing a clear message to stderr.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace custody::cli {

void RegisterLedgerCommands(CLI::App& app);
void RegisterCedarCommands(CLI::App& app);
void RegisterServeCommands(CLI::App& app);
// migrate: the stores' schemas brought to this version (serve's configuration).
void RegisterMigrateCommands(CLI::App& app);
void RegisterAdminCommands(CLI::App& app);
// agent register|list|show|disable; session show|revoke; credential revoke (over HTTP).
void RegisterAgentCommands(CLI::App& app);
void RegisterSessionCommands(CLI::App& app);
void RegisterCredentialCommands(CLI::App& app);
// credential issue|renew: just-in-time database credentials (after RegisterCredentialCommands);
// `credential revoke` of a database role (custody_…) goes to RevokeDatabaseCredential.
void RegisterDatabaseCredentialCommands(CLI::App& app);
struct ServerFlags;
bool IsDatabaseRole(const std::string& id);
void RevokeDatabaseCredential(const ServerFlags& server, const std::string& role);
// token keygen|svid|exchange: an agent's JWT-SVID and session token (over /oauth2/token).
void RegisterTokenCommands(CLI::App& app);
// key rotate (over HTTP).
void RegisterKeyCommands(CLI::App& app);
// policy publish|show|list; contain (over HTTP).
void RegisterPolicyCommands(CLI::App& app);
void RegisterContainCommands(CLI::App& app);
// approval list|show|approve|deny (over HTTP).
void RegisterApprovalCommands(CLI::App& app);
// trace, session-events, blast-radius, review, graph, evidence (over HTTP).
void RegisterInvestigateCommands(CLI::App& app);
// unmediated: tool calls seen in telemetry without a decision (over HTTP).
void RegisterUnmediatedCommands(CLI::App& app);
// tool|resource|prompt list|approve: the MCP gateway's definition pins (over HTTP).
void RegisterToolCommands(CLI::App& app);
// index rebuild: the action index derived from the ledger again (offline).
void RegisterIndexCommands(CLI::App& app);
// config keys: every configuration key (docs/CONFIG.md is its Markdown output).
void RegisterConfigCommands(CLI::App& app);
// export --format ocsf: every ledger entry as an OCSF record (offline, read only).
void RegisterExportCommands(CLI::App& app);

}  // namespace custody::cli
