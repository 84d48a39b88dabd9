// Helpers for end-to-end tests of `custody serve`: a temporary directory, the real server
// process on port 0, request builders (JSON, form) and admin tokens from the CLI. Shared by
// serve_test.cc and identity_e2e_test.cc. Needs CUSTODY_BINARY (the path of the binary).
#pragma once

#include <signal.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/client.h"
#include "subprocess.h"

namespace custody::testing {

// A fresh directory under the system temp dir, unique per process and `name`.
std::filesystem::path TempDir(const std::string& name);

// A running `custody serve`. Reads its stdout up to the "listening" line.
class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra,
               bool quickstart = true, bool merge_stderr = false);
  ~ServeProcess();
  bool started() const { return port_ != 0; }
  // SIGTERM and wait; returns the exit status as from waitpid.
  int Stop(int signal = SIGTERM);
  // Remaining output (after Stop(), with merge_stderr: the logs).
  std::vector<std::string> DrainOutput();
  http::BlockingHttpClient Client(http::ClientOptions o = {}) {
    return http::BlockingHttpClient("127.0.0.1", port_, o);
  }

  uint16_t port() const { return port_; }
  const std::string& token() const { return token_; }
  const std::string& vkey() const { return vkey_; }
  const std::string& url() const { return url_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::unique_ptr<Subprocess> proc_;
  std::vector<std::string> lines_;
  uint16_t port_ = 0;
  std::string token_, vkey_, url_;
  bool stopped_ = false;
};

http::ClientRequest Get(std::string target);
// A JSON POST, with a bearer token unless `token` is empty.
http::ClientRequest PostJson(std::string body, const std::string& token,
                             std::string target = "/v1/ledger/entries");
// POST /v1/agents with `admin_token`: an agent with a client secret, the given environment and
// grants, and placeholder owners and revocation contact.
http::ClientRequest RegisterAgent(const std::string& name, const std::string& environment,
                                  const std::vector<std::string>& grants,
                                  const std::string& admin_token);
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);
// An application/x-www-form-urlencoded POST (the OAuth endpoints).
http::ClientRequest PostForm(const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& fields,
                             const std::string& token = "");
// What a finished `custody` command printed: its exit code, stdout and stderr apart.
struct CliResult {
  int rc = -1;
  std::string out, err;
};
// Runs `custody ARGS…` with `input` on stdin (closed after it), `env` ("NAME=value") added to
// its environment; its stderr goes through a file in `scratch` (a directory of the test's).
CliResult RunCli(const std::vector<std::string>& args, const std::filesystem::path& scratch,
                 const std::string& input = "", const std::vector<std::string>& env = {});

// `custody admin token create --role ROLE` on `data`; returns the token (and its id).
std::string CreateToken(const std::filesystem::path& data, const std::string& role,
                        std::string* id);

}  // namespace custody::testing
