#include "serve_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <fstream>
#include <sstream>

namespace custody::testing {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::ClientRequest;

fs::path TempDir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("custody_serve_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

ServeProcess::ServeProcess(const fs::path& data_dir, std::vector<std::string> extra,
                           bool quickstart, bool merge_stderr) {
  std::vector<std::string> argv = {CUSTODY_BINARY, "serve",      "--listen",
                                   "127.0.0.1:0",  "--data-dir", data_dir.string()};
  if (quickstart) argv.push_back("--quickstart");
  for (auto& e : extra) argv.push_back(e);
  proc_ = std::make_unique<Subprocess>(argv, merge_stderr);
  std::string line;
  while (proc_->ReadLine(&line)) {
    lines_.push_back(line);
    if (line.find("\"event\":\"admin_token\"") != std::string::npos) {
      token_ = json::parse(line).as_object().at("token").as_string().c_str();
    }
    if (line.find("\"event\":\"listening\"") != std::string::npos) {
      auto obj = json::parse(line).as_object();
      std::string address = obj.at("address").as_string().c_str();
      port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
      vkey_ = obj.at("verifier_key").as_string().c_str();
      url_ = obj.at("url").as_string().c_str();
      break;
    }
  }
}

ServeProcess::~ServeProcess() {
  if (!stopped_) {
    proc_->Kill(SIGKILL);
    proc_->Wait();
  }
}

int ServeProcess::Stop(int signal) {
  proc_->Kill(signal);
  stopped_ = true;
  return proc_->Wait();
}

std::vector<std::string> ServeProcess::DrainOutput() {
  std::string line;
  while (proc_->ReadLine(&line)) lines_.push_back(line);
  return lines_;
}

ClientRequest Get(std::string target) {
  ClientRequest r;
  r.target = std::move(target);
  return r;
}

ClientRequest PostJson(std::string body, const std::string& token, std::string target) {
  ClientRequest r;
  r.method = "POST";
  r.target = std::move(target);
  r.body = std::move(body);
  r.headers.Set("content-type", "application/json");
  if (!token.empty()) r.headers.Set("authorization", "Bearer " + token);
  return r;
}

std::string CreateToken(const fs::path& data, const std::string& role, std::string* id) {
  std::string out;
  int rc = RunCommand(
      {CUSTODY_BINARY, "admin", "token", "create", "--role", role, "--data-dir", data.string()},
      &out);
  EXPECT_EQ(rc, 0) << out;
  auto obj = json::parse(out).as_object();
  if (id) *id = obj.at("id").as_string().c_str();
  return obj.at("token").as_string().c_str();
}

http::ClientRequest RegisterAgent(const std::string& name, const std::string& environment,
                                  const std::vector<std::string>& grants,
                                  const std::string& admin_token) {
  boost::json::array g;
  for (const std::string& grant : grants) g.emplace_back(grant);
  boost::json::object a{{"name", name},
                        {"environment", environment},
                        {"business_owner", "ops"},
                        {"technical_owner", "platform"},
                        {"revocation_contact", "sec@example.com"},
                        {"grants", g},
                        {"client_secret", true}};
  return PostJson(boost::json::serialize(a), admin_token, "/v1/agents");
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    for (const std::string* part : {&k, &v}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          out += static_cast<char>(c);
        } else {
          out += '%';
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
      }
      if (part == &k) out += '=';
    }
  }
  return out;
}

ClientRequest PostForm(const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       const std::string& token) {
  ClientRequest r;
  r.method = "POST";
  r.target = target;
  r.body = FormEncode(fields);
  r.headers.Set("content-type", "application/x-www-form-urlencoded");
  if (!token.empty()) r.headers.Set("authorization", "Bearer " + token);
  return r;
}

CliResult RunCli(const std::vector<std::string>& args, const std::filesystem::path& scratch,
                 const std::string& input, const std::vector<std::string>& env) {
  std::filesystem::path err = scratch / "cli-stderr.txt";
  std::vector<std::string> argv = {"/usr/bin/env", "CLI_ERR=" + err.string()};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>\"$CLI_ERR\"", CUSTODY_BINARY});
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv);
  if (!input.empty()) {
    EXPECT_TRUE(p.Write(input));
  }
  p.CloseStdin();
  CliResult r;
  std::string line;
  while (p.ReadLine(&line)) r.out += line + "\n";
  int st = p.Wait();
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  r.err = text.str();
  return r;
}

}  // namespace custody::testing
