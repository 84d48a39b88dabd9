// `custody cedar authorize` and `custody cedar check`: the Cedar engine from the command line.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/line_reader.h"
#include "cli/line_writer.h"
#include "policy/authorizer.h"
#include "policy/json_io.h"
#include "policy/parser.h"
#include "policy/schema.h"

namespace custody::cli {
namespace {

using policy::Entities;
using policy::PolicySet;
using policy::Schema;

constexpr int kExitInvalid = 2;

[[noreturn]] void Fail(const std::string& message, int code = kExitInvalid) {
  std::cerr << "custody cedar: " << message << "\n";
  throw CLI::RuntimeError(code);
}

std::string ReadFileOrFail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Schema> LoadSchema(const std::string& path) {
  if (path.empty()) return nullptr;
  Result<Schema> schema = policy::ParseSchema(ReadFileOrFail(path));
  if (!schema.ok()) Fail(path + ": " + schema.status().message());
  return std::make_unique<Schema>(std::move(schema).value());
}

struct AuthorizeOptions {
  std::string policies, entities, schema, request;
};

void RunAuthorize(const AuthorizeOptions& opt) {
  std::unique_ptr<Schema> schema = LoadSchema(opt.schema);
  Result<PolicySet> ps = PolicySet::FromText(ReadFileOrFail(opt.policies));
  if (!ps.ok()) Fail(opt.policies + ": " + ps.status().message());
  Result<Entities> es = policy::ParseEntitiesJson(ReadFileOrFail(opt.entities), schema.get());
  if (!es.ok()) Fail(opt.entities + ": " + es.status().message());

  // Decides one request; `out` gets the decision, or an error line that keeps the output lines
  // aligned with the input lines (the details go to stderr).
  auto decide = [&](std::string_view line, std::string* out) -> bool {
    Result<policy::Request> req = policy::ParseRequestJson(line, schema.get());
    if (!req.ok()) {
      std::cerr << "custody cedar: invalid request: " << req.status().message() << "\n";
      *out = "{\"error\":\"invalid request\"}";
      return false;
    }
    *out = policy::ResponseToJson(ps->IsAuthorized(*req, *es));
    return true;
  };

  std::string answer;
  if (!opt.request.empty()) {
    bool ok = decide(ReadFileOrFail(opt.request), &answer);
    std::cout << answer << "\n";
    if (!ok) throw CLI::RuntimeError(kExitInvalid);
    return;
  }
  // Answers are written in large pieces, and whenever the next read might wait: a caller that
  // sends one request and waits for its answer gets it at once.
  LineWriter out(STDOUT_FILENO, ::isatty(STDOUT_FILENO) == 1);
  Status write_status;
  auto flush = [&] {
    if (Status st = out.Flush(); !st.ok() && write_status.ok()) write_status = st;
  };
  LineReader in(STDIN_FILENO);
  in.SetBeforeRead(flush);
  bool all_ok = true;
  std::string_view line;
  while (true) {
    Result<bool> more = in.Next(&line);
    if (!more.ok()) {
      flush();
      Fail(more.status().message());
    }
    if (!*more) break;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    all_ok = decide(line, &answer) && all_ok;
    if (Status st = out.Write(answer); !st.ok() && write_status.ok()) write_status = st;
  }
  flush();
  if (!write_status.ok()) Fail(write_status.message(), 1);
  if (!all_ok) throw CLI::RuntimeError(kExitInvalid);
}

struct CheckOptions {
  std::string policies, schema;
};

void RunCheck(const CheckOptions& opt) {
  std::string text = ReadFileOrFail(opt.policies);
  policy::ParseOutput out = policy::ParsePolicies(text);
  bool ok = out.errors.empty();
  for (const auto& e : out.errors) std::cerr << opt.policies << ":" << e.ToString() << "\n";
  if (!opt.schema.empty()) {
    Result<Schema> schema = policy::ParseSchema(ReadFileOrFail(opt.schema));
    if (!schema.ok()) {
      std::cerr << opt.schema << ": " << schema.status().message() << "\n";
      ok = false;
    }
  }
  if (!ok) throw CLI::RuntimeError(1);
  Result<PolicySet> ps = PolicySet::Create(std::move(out.policies));
  if (!ps.ok()) Fail(opt.policies + ": " + ps.status().message(), 1);
  std::cout << "ok: " << ps->policies().size() << " policies, sha256 " << ps->hash_hex() << "\n";
}

}  // namespace

void RegisterCedarCommands(CLI::App& app) {
  CLI::App* cedar = app.add_subcommand("cedar", "Evaluate and check Cedar policies");
  cedar->require_subcommand(1);

  auto authorize_opt = std::make_shared<AuthorizeOptions>();
  CLI::App* authorize = cedar->add_subcommand(
      "authorize", "Decide requests (one JSON request per stdin line unless --request is given)");
  authorize->add_option("--policies", authorize_opt->policies, "Cedar policy file")->required();
  authorize->add_option("--entities", authorize_opt->entities, "Entities JSON file")->required();
  authorize->add_option("--schema", authorize_opt->schema, "Schema (.cedarschema or JSON)");
  authorize->add_option("--request", authorize_opt->request, "One request as a JSON file");
  authorize->callback([authorize_opt] { RunAuthorize(*authorize_opt); });

  auto check_opt = std::make_shared<CheckOptions>();
  CLI::App* check = cedar->add_subcommand("check", "Report every parse error in a policy file");
  check->add_option("--policies", check_opt->policies, "Cedar policy file")->required();
  check->add_option("--schema", check_opt->schema, "Schema (.cedarschema or JSON)");
  check->callback([check_opt] { RunCheck(*check_opt); });
}

}  // namespace custody::cli
