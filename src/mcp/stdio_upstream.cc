#include "mcp/stdio_upstream.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/json_parse.h"

extern char** environ;

namespace custody::mcp {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

StdioUpstream::StdioUpstream(StdioServerConfig config, UpstreamOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

StdioUpstream::~StdioUpstream() { Stop(); }

void StdioUpstream::Start() {
  MutexLock lock(mu_);
  if (started_ || stop_) return;
  started_ = true;
  supervisor_ = std::thread([this] { Supervise(); });
}

void StdioUpstream::Stop() {
  {
    MutexLock lock(mu_);
    if (stop_ && !supervisor_.joinable()) return;
    stop_ = true;
  }
  cv_.NotifyAll();
  if (supervisor_.joinable()) supervisor_.join();
  FailAll("the gateway is shutting down", /*include_waiting=*/true);
}

bool StdioUpstream::ready() const {
  MutexLock lock(mu_);
  return ready_;
}
bool StdioUpstream::HasCapability(std::string_view name) const {
  MutexLock lock(mu_);
  return capabilities_.contains(name);
}
bool StdioUpstream::modern() const {
  MutexLock lock(mu_);
  return modern_;
}
int64_t StdioUpstream::starts() const {
  MutexLock lock(mu_);
  return starts_;
}
int StdioUpstream::pid() const {
  MutexLock lock(mu_);
  return pid_;
}

void StdioUpstream::Supervise() {
  auto backoff = options_.min_backoff;
  for (;;) {
    {
      MutexLock lock(mu_);
      if (stop_) break;
    }
    auto started_at = Clock::now();
    if (Spawn()) {
      MutexLock lk(mu_);
      while (!child_gone_ && !stop_) {
        cv_.WaitFor(mu_, std::chrono::milliseconds(100));
        lk.Unlock();
        ExpireDeadlines();
        lk.Lock();
      }
      bool stopping = stop_;
      int pid = pid_;
      if (stopping && !child_gone_) {
        ::kill(pid, SIGTERM);
        if (!cv_.WaitFor(mu_, std::chrono::seconds(2),
                         [this]() REQUIRES(mu_) { return child_gone_; })) {
          ::kill(pid, SIGKILL);
        }
      }
      lk.Unlock();
      if (stdout_reader_.joinable()) stdout_reader_.join();
      if (stderr_reader_.joinable()) stderr_reader_.join();
      int wstatus = 0;
      ::waitpid(pid, &wstatus, 0);
      {
        MutexLock wl(write_mu_);
        if (stdin_fd_ >= 0) ::close(stdin_fd_);
        stdin_fd_ = -1;
      }
      {
        MutexLock lock(mu_);
        ready_ = false;
        pid_ = 0;
        child_gone_ = false;
      }
      std::string how =
          WIFEXITED(wstatus)     ? "exited with status " + std::to_string(WEXITSTATUS(wstatus))
          : WIFSIGNALED(wstatus) ? "was killed by signal " + std::to_string(WTERMSIG(wstatus))
                                 : "ended";
      if (options_.log) {
        LogUpstream(options_, stopping ? LogLevel::kInfo : LogLevel::kWarn, config_.name,
                    "upstream server " + how);
      }
      FailAll("upstream server " + how, /*include_waiting=*/false);
      if (stopping) break;
      if (Clock::now() - started_at > std::chrono::seconds(10)) backoff = options_.min_backoff;
    }
    if (options_.log) {
      LogUpstream(options_, LogLevel::kWarn, config_.name,
                  "restarting upstream server in " + std::to_string(backoff.count()) + " ms");
    }
    MutexLock lk(mu_);
    auto until = Clock::now() + backoff;
    while (!stop_ && Clock::now() < until) {
      cv_.WaitUntil(mu_, std::min(until, Clock::now() + std::chrono::milliseconds(100)));
      lk.Unlock();
      ExpireDeadlines();
      lk.Lock();
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool StdioUpstream::Spawn() {
  int in[2], out[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return false;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return false;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[1], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // `custody serve` blocks SIGTERM/SIGINT in every thread; the child must not inherit that.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGHUP}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argv_s{config_.command};
  argv_s.insert(argv_s.end(), config_.args.begin(), config_.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    std::string key(kv.substr(0, kv.find('=')));
    if (!config_.env.count(key)) env_s.emplace_back(kv);
  }
  for (const auto& [k, v] : config_.env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, config_.command.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in[1]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[0]);
    ::close(out[0]);
    ::close(err[0]);
    if (options_.log) {
      LogUpstream(options_, LogLevel::kError, config_.name,
                  "cannot start " + config_.command + ": " + std::strerror(rc));
    }
    return false;
  }
  int64_t init_id;
  bool probe = config_.protocol != "2025";
  {
    MutexLock lock(mu_);
    pid_ = pid;
    ++starts_;
    child_gone_ = false;
    ready_ = false;
    modern_ = false;
    listen_id_ = 0;
    init_id = init_id_ = next_id_++;
    probing_ = probe;
    probe_deadline_ = Clock::now() + kDiscoverWait;
  }
  {
    MutexLock wl(write_mu_);
    stdin_fd_ = in[0];
  }
  stdout_reader_ = std::thread([this, fd = out[0]] { ReadStdout(fd); });
  stderr_reader_ = std::thread([this, fd = err[0]] { ReadStderr(fd); });
  if (options_.log) {
    LogUpstream(options_, LogLevel::kInfo, config_.name,
                "started upstream server (pid " + std::to_string(pid) + "): " + config_.command);
  }
  // A failed write is reported by WriteLine; the handshake then times out and is retried.
  (void)WriteLine(probe ? DiscoverRequest(init_id) : InitializeRequest(init_id, options_));
  return true;
}

namespace {

// Reads lines from `fd` until EOF, calling `on_line` for each; lines longer than `max` are
// dropped (reported once each through `on_overlong`).
template <typename F, typename G>
void ReadLines(int fd, size_t max, F on_line, G on_overlong) {
  std::string buf;
  bool skipping = false;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (;;) {
      size_t nl = buf.find('\n', start);
      if (nl == std::string::npos) break;
      if (!skipping) on_line(std::string_view(buf).substr(start, nl - start));
      skipping = false;
      start = nl + 1;
    }
    buf.erase(0, start);
    if (buf.size() > max) {
      if (!skipping) on_overlong();
      skipping = true;
      buf.clear();
    }
  }
  if (!buf.empty() && !skipping) on_line(buf);
  ::close(fd);
}

}  // namespace

void StdioUpstream::ReadStdout(int fd) {
  ReadLines(
      fd, options_.max_line_bytes, [this](std::string_view line) { HandleLine(line); },
      [this] {
        LogUpstream(options_, LogLevel::kWarn, config_.name, "dropped an overlong stdout line");
      });
  {
    MutexLock lock(mu_);
    child_gone_ = true;
  }
  cv_.NotifyAll();
}

void StdioUpstream::ReadStderr(int fd) {
  ReadLines(
      fd, 64 * 1024,
      [this](std::string_view line) {
        if (!options_.log || line.empty()) return;
        std::string s(line.substr(0, 4096));
        LogUpstream(options_, LogLevel::kInfo, config_.name, "stderr: " + s);
      },
      [] {});
}

void StdioUpstream::HandleLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return;
  boost::system::error_code ec;
  json::value v = ParseJson(line, ec);
  if (ec || !v.is_object()) {
    LogUpstream(options_, LogLevel::kWarn, config_.name,
                "ignored a stdout line that is not JSON-RPC");
    return;
  }
  json::object& o = v.get_object();
  bool modern;
  {
    MutexLock lock(mu_);
    modern = modern_;
  }
  if (modern && o.contains("method") && !o.contains("id") && !ModernEra::Inbound(o)) return;
  if (HandleServerMessage(
          o, /*related=*/0,
          [this](std::string text) {
            (void)WriteLine(text);  // reported by WriteLine; the server is being restarted
          },
          options_)) {
    return;
  }
  auto idit = o.find("id");
  if (idit == o.end() || !idit->value().is_int64()) return;  // not one of our ids
  int64_t id = idit->value().get_int64();
  MutexLock lk(mu_);
  if (id == init_id_ && probing_) {
    probing_ = false;
    if (auto caps = ModernCapabilities(o)) {
      modern_ = true;
      ready_ = true;
      capabilities_ = std::move(*caps);
      std::vector<Outgoing> outs;
      std::vector<std::pair<int64_t, json::object>> answered;
      for (int64_t w : waiting_) {
        std::optional<json::object> local;
        bool changed = false;
        if (auto out = Prepare(w, &local, &changed)) outs.push_back(std::move(*out));
        if (local) answered.emplace_back(w, std::move(*local));
      }
      waiting_.clear();
      lk.Unlock();
      LogUpstream(options_, LogLevel::kInfo, config_.name,
                  "upstream server speaks MCP " + std::string(kModernProtocol));
      for (auto& [w, a] : answered) Finish(w, std::move(a));
      for (auto& out : outs) (void)Send(std::move(out));
      Listen();
      return;
    }
    if (config_.protocol == kModernProtocol) {
      int pid = pid_;
      lk.Unlock();
      std::string why = "upstream server " + config_.name + " does not speak MCP " +
                        std::string(kModernProtocol) +
                        " (server/discover answered otherwise), which its configuration requires";
      LogUpstream(options_, LogLevel::kError, config_.name, why);
      ::kill(pid, SIGTERM);
      FailAll(why, /*include_waiting=*/true);  // they would wait for a handshake that never comes
      return;
    }
    init_id_ = next_id_++;
    int64_t init = init_id_;
    lk.Unlock();
    (void)WriteLine(InitializeRequest(init, options_));
    return;
  }
  if (id == init_id_) {
    if (o.contains("error")) {
      int pid = pid_;
      lk.Unlock();
      if (options_.log) {
        LogUpstream(options_, LogLevel::kError, config_.name,
                    "upstream refused initialize: " + json::serialize(o["error"]));
      }
      ::kill(pid, SIGTERM);
      return;
    }
    ready_ = true;
    if (auto r = o.find("result"); r != o.end() && r->value().is_object()) {
      capabilities_ = CapabilityNames(r->value().get_object());
    }
    std::vector<Outgoing> outs;
    for (int64_t w : waiting_) {
      std::optional<json::object> local;  // only a modern server's requests are answered here
      bool changed = false;
      if (auto out = Prepare(w, &local, &changed)) outs.push_back(std::move(*out));
    }
    waiting_.clear();
    lk.Unlock();
    // Failed writes are reported by WriteLine; the waiting calls then time out (their callers
    // hear Unavailable) and the supervisor restarts the server.
    (void)WriteLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    for (auto& out : outs) (void)Send(std::move(out));
    LogUpstream(options_, LogLevel::kInfo, config_.name, "upstream server initialized");
    return;
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // timed out already
  o.erase("id");
  o.erase("jsonrpc");
  if (modern_) {
    json::object request = it->second.request;
    lk.Unlock();
    Answered(era_.OnAnswer(id, request, std::move(o)));
    return;
  }
  UpstreamCallback done = std::move(it->second.done);
  pending_.erase(it);
  lk.Unlock();
  done(std::move(o));
}

std::optional<StdioUpstream::Outgoing> StdioUpstream::Prepare(int64_t id,
                                                              std::optional<json::object>* local,
                                                              bool* changed) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  Pending& p = it->second;
  if (!modern_) return Outgoing{id, std::exchange(p.request, {}), p.txn_token};
  *local = era_.Local(p.request, changed);
  if (*local) return std::nullopt;
  era_.Shape(p.request);  // kept (without its token): a retry after input_required sends it again
  return Outgoing{id, p.request, p.txn_token};
}

bool StdioUpstream::Send(Outgoing out) {
  if (out.txn_token) {
    // Minted now, for this send: a round answered minutes after the first send still carries
    // a valid token (RequestExtras).
    auto token = TxnTokenForSend(out.txn_token, "upstream server " + config_.name);
    if (!token.ok()) {
      Finish(out.id, token.status());
      return true;
    }
    PlaceTxnTokenMeta(out.request["params"], std::move(*token));
  }
  return WriteLine(json::serialize(out.request));
}

void StdioUpstream::Finish(int64_t id, Result<json::object> r) {
  UpstreamCallback done;
  {
    MutexLock lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    done = std::move(it->second.done);
    pending_.erase(it);
    std::erase(waiting_, id);
  }
  era_.Forget(id);
  done(std::move(r));
}

void StdioUpstream::Answered(ModernEra::Step step) {
  step = ModernEra::Deliver(std::move(step), options_);
  switch (step.kind) {
    case ModernEra::Step::kFinal:
      Finish(step.call, std::move(step.answer));
      break;
    case ModernEra::Step::kRetry: {
      std::optional<Outgoing> out;
      {
        MutexLock lock(mu_);
        auto it = pending_.find(step.call);
        if (it == pending_.end()) break;
        it->second.request = std::move(step.request);
        out = Outgoing{step.call, it->second.request, it->second.txn_token};
      }
      (void)Send(std::move(*out));  // a failed write is reported; the call then times out
      break;
    }
    case ModernEra::Step::kAsk:  // delivered: Deliver returns kWait for it
    case ModernEra::Step::kWait:
      break;
  }
}

void StdioUpstream::Listen() {
  int64_t old, id;
  std::set<std::string, std::less<>> caps;
  {
    MutexLock lock(mu_);
    if (!modern_ || !ready_) return;
    old = listen_id_;
    id = next_id_++;
    caps = capabilities_;
  }
  auto request = era_.ListenRequest(id, caps);
  {
    MutexLock lock(mu_);
    listen_id_ = request ? id : 0;
  }
  if (old != 0) {
    (void)WriteLine(json::serialize(json::object{
        {"jsonrpc", "2.0"},
        {"method", "notifications/cancelled"},
        {"params", json::object{{"requestId", old}, {"reason", "the subscriptions changed"}}}}));
  }
  if (request) (void)WriteLine(json::serialize(*request));
}

bool StdioUpstream::WriteLine(const std::string& line) {
  MutexLock wl(write_mu_);
  if (stdin_fd_ < 0) return false;  // no server running: the supervisor is (re)starting one
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(stdin_fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // The server's stdin is gone (it exited or closed it); the supervisor sees it exit and
      // restarts it. Every caller of WriteLine relies on this report.
      ReportUpstream(options_, "mcp.upstream_write",
                     UnavailableError("writing to upstream server " + config_.name + ": " +
                                      (n < 0 ? std::strerror(errno) : "nothing written")));
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

int64_t StdioUpstream::Call(const std::string& method, json::value params, RequestExtras extras,
                            UpstreamCallback done) {
  PlaceTxnTokenMeta(params, "");  // the gateway's own token is placed at each send (Send)
  MutexLock lk(mu_);
  if (stop_) {
    lk.Unlock();
    done(UnavailableError("the gateway is shutting down"));
    return 0;
  }
  int64_t id = next_id_++;
  json::object req{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = std::move(params);
  auto deadline = Clock::now() + options_.request_timeout;
  if (ready_) {
    pending_[id] = Pending{std::move(done), deadline, std::move(req), std::move(extras.txn_token)};
    std::optional<json::object> local;
    bool changed = false;
    std::optional<Outgoing> out = Prepare(id, &local, &changed);
    lk.Unlock();
    if (local) {
      Finish(id, std::move(*local));
      if (changed) Listen();
      return id;
    }
    if (out && !Send(std::move(*out))) {
      lk.Lock();
      auto it = pending_.find(id);
      if (it == pending_.end()) return id;
      UpstreamCallback d = std::move(it->second.done);
      pending_.erase(it);
      lk.Unlock();
      d(UnavailableError("upstream server " + config_.name + " is not reachable"));
    }
    return id;
  }
  if (waiting_.size() >= options_.max_waiting) {
    lk.Unlock();
    done(UnavailableError("upstream server " + config_.name + " is starting; too many waiting"));
    return 0;
  }
  pending_[id] = Pending{std::move(done), deadline, std::move(req), std::move(extras.txn_token)};
  waiting_.push_back(id);
  return id;
}

void StdioUpstream::Cancel(int64_t id, const std::string& reason) {
  UpstreamCallback done;
  bool sent = true;
  {
    MutexLock lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    done = std::move(it->second.done);
    pending_.erase(it);
    if (std::find(waiting_.begin(), waiting_.end(), id) != waiting_.end()) {
      sent = false;
      std::erase(waiting_, id);
    }
  }
  era_.Forget(id);
  if (sent) Notify("notifications/cancelled", json::object{{"requestId", id}, {"reason", reason}});
  done(UnavailableError("cancelled: " + reason));
}

void StdioUpstream::Notify(const std::string& method, json::value params) {
  {
    MutexLock lock(mu_);
    if (!ready_) return;
    // 2026-07-28 has one client notification: the cancellation.
    if (modern_ && method != "notifications/cancelled") return;
  }
  json::object n{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) n["params"] = std::move(params);
  (void)WriteLine(json::serialize(n));  // notifications are best effort; WriteLine reports
}

void StdioUpstream::Respond(const json::value& id, json::object answer) {
  {
    MutexLock lock(mu_);
    if (!ready_) return;
    if (modern_) {  // an answer to one of the input requests of an input_required result
      lock.Unlock();
      if (auto step = era_.OnRespond(id, std::move(answer))) Answered(std::move(*step));
      return;
    }
  }
  (void)WriteLine(ResponseText(id, std::move(answer)));  // WriteLine reports a failure
}

void StdioUpstream::FailAll(const std::string& why, bool include_waiting) {
  std::vector<UpstreamCallback> failed;
  {
    MutexLock lock(mu_);
    std::set<int64_t> waiting(waiting_.begin(), waiting_.end());
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (!include_waiting && waiting.count(it->first)) {
        ++it;
        continue;
      }
      era_.Forget(it->first);
      failed.push_back(std::move(it->second.done));
      it = pending_.erase(it);
    }
    if (include_waiting) waiting_.clear();
  }
  for (auto& d : failed) d(UnavailableError(why));
}

void StdioUpstream::ExpireDeadlines() {
  std::vector<std::pair<int64_t, UpstreamCallback>> expired;
  auto now = Clock::now();
  int64_t fallback = 0;  // a probe went unanswered: initialize under this id
  {
    MutexLock lock(mu_);
    if (probing_ && now > probe_deadline_ && pid_ != 0) {
      probing_ = false;
      fallback = init_id_ = next_id_++;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.emplace_back(it->first, std::move(it->second.done));
      std::erase(waiting_, it->first);
      it = pending_.erase(it);
    }
  }
  if (fallback != 0) {
    LogUpstream(options_, LogLevel::kInfo, config_.name,
                "upstream server did not answer server/discover; initializing");
    (void)WriteLine(InitializeRequest(fallback, options_));
  }
  for (auto& [id, d] : expired) {
    era_.Forget(id);
    Notify("notifications/cancelled",
           json::object{{"requestId", id}, {"reason", "timed out at the Custody gateway"}});
    d(UnavailableError("upstream server " + config_.name + " did not answer in time"));
  }
}

}  // namespace custody::mcp
