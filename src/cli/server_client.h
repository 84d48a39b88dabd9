// The CLI's side of the running server's admin HTTP API, shared by the identity commands
// (`custody agent|session|credential`): the --server/--token/--ca-file options, one request
// with the error handling every command wants, and JSON output for people and scripts.
//
// These commands never open the data directory: they go through the server, which checks the
// admin token, records every change in the ledger and applies revocation at once.
// Not thread-safe; one command runs per process.
#pragma once

#include <boost/json/fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace custody::cli {

inline constexpr std::string_view kDefaultServerUrl = "http://127.0.0.1:8750";

struct ServerFlags {
  std::string url;      // --server, else CUSTODY_SERVER, else kDefaultServerUrl
  std::string token;    // --token, else CUSTODY_TOKEN; never printed
  std::string ca_file;  // --ca-file: PEM trust anchors for an https:// server
};

// Adds --server, --token and --ca-file to `cmd`.
void AddServerOptions(CLI::App* cmd, ServerFlags& flags);

// Percent-encodes one path segment (RFC 3986 unreserved characters pass through).
std::string PathSegment(std::string_view s);

// Sends one request to the server and returns the parsed JSON body of a 2xx answer. Anything
// else is printed to stderr as "custody: <what>: …" (the server's error code and message, or
// which URL could not be reached) and ends the command with exit code 1 (CLI::RuntimeError).
// `body` (if not empty) is sent as application/json.
boost::json::value CallServer(const ServerFlags& flags, std::string_view method,
                              const std::string& target, const std::string& body,
                              std::string_view what);

// An application/x-www-form-urlencoded POST (the OAuth endpoints, e.g. /oauth2/token), sent
// without the admin token: `fields` are percent-encoded here. The answer and the errors are as
// for CallServer; an OAuth refusal is printed as "<what>: <error>: <error_description> (HTTP n)".
// Nothing of `fields` is ever printed (they hold tokens and client credentials).
boost::json::value PostServerForm(const ServerFlags& flags, const std::string& target,
                                  const std::vector<std::pair<std::string, std::string>>& fields,
                                  std::string_view what);

// A public document the server may not serve (e.g. /.well-known/oauth-authorization-server on
// an older server): its JSON, or nullopt for any answer but 2xx JSON. Sent without the admin
// token; an unreachable server ends the command as for CallServer.
std::optional<boost::json::value> GetOptionalDocument(const ServerFlags& flags,
                                                      const std::string& target,
                                                      std::string_view what);

// Prints `v` as indented JSON (two spaces) followed by a newline.
void PrintJson(const boost::json::value& v);

// Prints "custody: <message>" to stderr and ends the command with `exit_code`.
[[noreturn]] void FailWith(const std::string& message, int exit_code = 1);

}  // namespace custody::cli
