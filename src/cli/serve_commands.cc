// `custody serve`: runs the HTTP service until SIGTERM or SIGINT, then shuts down gracefully
// (stop accepting, finish in-flight requests, flush the ledger) and exits 0.
//
// stdout carries only machine-readable lines, flushed at once:
//   {"event":"admin_token","id":"…","role":"admin","token":"cst_…"}   (quickstart, once)
//   {"event":"listening","address":"127.0.0.1:8750","url":"http://127.0.0.1:8750",…}
// Logs (JSON lines by default) go to stderr. Without identity.issuer the issuer is that "url"
// (port 0 resolved), with a warning at start (api::Service::Open).
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "api/config.h"
#include "api/service.h"
#include "cli/commands.h"
#include "cli/serve_flags.h"
#include "common/jcs.h"
#include "common/stream_logger.h"

namespace custody::cli {
namespace {

[[noreturn]] void Fail(const Status& s) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(s.code() == StatusCode::kInvalidArgument ? 2 : 1);
}

std::string JsonString(std::string_view s) {
  std::string out;
  AppendJcsString(s, out);
  return out;
}

int RunServe(const ServeFlags& f) {
  // Every file the service creates (databases, their WAL and shared-memory files, keys) is for
  // its own user only, whatever umask it was started with (as SPIRE does). The data directory
  // is 0700 as well; this keeps the files private if it is ever moved or opened up.
  ::umask(077);
  Result<api::Config> config = LoadServeConfig(f);
  if (!config.ok()) Fail(config.status().WithContext("configuration"));

  // Block the shutdown signals in every thread (threads inherit the mask), and take them
  // synchronously with sigwait below: no async-signal-safety concerns.
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is discarded
  // rather than left pending for sigwait, so restore the default disposition first.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SystemClock clock;
  SystemRandom random;
  StreamLogger log(*ParseLogLevel(config->log.level), config->log.format == "json", clock);
  api::ServiceOptions options;
  options.quickstart = f.quickstart;
  options.migrate = f.migrate;
  auto service = api::Service::Open(*config, options, clock, random, log);
  if (!service.ok()) Fail(service.status());
  if (const auto& t = (*service)->bootstrap_token()) {
    std::cout << "{\"event\":\"admin_token\",\"id\":\"" << t->id << "\",\"role\":\"" << t->role
              << "\",\"token\":\"" << t->token << "\"}" << std::endl;
    std::cerr << "custody: an admin token was created and printed above (token id " << t->id
              << "). It is shown only this once and stored hashed; keep it somewhere safe.\n";
  }
  Status st = (*service)->Start();
  if (!st.ok()) Fail(st);
  api::HostPort hp = *api::ParseListen(config->listen);
  hp.port = (*service)->port();
  std::string url = api::ListenUrl(hp, (*service)->tls());
  std::string address = url.substr(url.find("://") + 3);
  std::string vkey = (*service)->VerifierKey();
  log.Log(LogLevel::kInfo, "listening",
          {{"address", std::string_view(address)},
           {"issuer", std::string_view((*service)->issuer())},
           {"tls", (*service)->tls()},
           {"threads", static_cast<int64_t>((*service)->threads())},
           {"data_dir", std::string_view(config->data_dir)},
           {"ledger_verifier_key", std::string_view(vkey)}});
  std::cout << "{\"event\":\"listening\",\"address\":" << JsonString(address)
            << ",\"url\":" << JsonString(url) << ",\"verifier_key\":" << JsonString(vkey) << "}"
            << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  log.Log(LogLevel::kInfo, "shutting down",
          {{"signal", std::string_view(sig == SIGTERM ? "SIGTERM" : "SIGINT")}});
  (*service)->Shutdown();
  log.Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace

void AddConfigFlags(CLI::App* cmd, ServeFlags& f) {
  cmd->add_option("--config", f.config_file, "TOML config file (or CUSTODY_CONFIG)");
  cmd->add_option("--data-dir", f.data_dir, "Data directory (default ./custody-data)");
  cmd->add_option("--set", f.sets, "Any config key: --set limits.max_body_bytes=65536");
}

Result<api::Config> LoadServeConfig(const ServeFlags& f) {
  api::ConfigSources sources;
  sources.env = api::ProcessEnvironment();
  if (!f.config_file.empty()) {
    sources.file = f.config_file;
  } else if (auto it = sources.env.find("CUSTODY_CONFIG"); it != sources.env.end()) {
    sources.file = it->second;
  }
  auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) sources.overrides.emplace_back(key, v);
  };
  add("listen", f.listen);
  add("data_dir", f.data_dir);
  add("ledger.origin", f.origin);
  add("log.level", f.log_level);
  add("log.format", f.log_format);
  add("tls.cert", f.tls_cert);
  add("tls.key", f.tls_key);
  if (f.threads >= 0) add("worker_threads", std::to_string(f.threads));
  for (const std::string& kv : f.sets) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return InvalidArgumentError("--set expects KEY=VALUE: " + kv);
    sources.overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return api::LoadConfig(sources);
}

void RegisterServeCommands(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand("serve", "Run the HTTP service");
  AddConfigFlags(serve, *f);
  serve->add_option("--listen", f->listen, "ADDR:PORT (default 127.0.0.1:8750; port 0: any)");
  serve->add_option("--origin", f->origin, "Ledger origin for a new ledger");
  serve->add_option("--log-level", f->log_level, "debug|info|warn|error");
  serve->add_option("--log-format", f->log_format, "json|text");
  serve->add_option("--tls-cert", f->tls_cert, "PEM certificate chain (enables TLS)");
  serve->add_option("--tls-key", f->tls_key, "PEM private key");
  serve->add_option("--threads", f->threads,
                    "Worker threads (0: one per hardware thread, four on PostgreSQL)");
  serve->add_flag("--quickstart", f->quickstart,
                  "Create the data directory, keys and an admin token if missing, then serve");
  serve->add_flag("--migrate", f->migrate,
                  "PostgreSQL: bring an older schema to this version first (as `custody migrate`)");
  serve->callback([f] {
    if (int rc = RunServe(*f); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace custody::cli
