// StdioUpstream: an MCP server that Custody spawns and supervises, spoken to in JSON-RPC over
// newline-delimited stdin/stdout (the MCP stdio transport).
//
// A supervisor thread starts the process, performs the MCP initialize handshake, and restarts
// it with exponential backoff when it exits. A reader thread parses stdout; another forwards
// stderr lines to the log. Many requests may be in flight: each gets a fresh upstream id, and
// the response is routed back to the caller's callback by that id (the caller's own id never
// reaches the upstream). Requests sent while the server is (re)starting wait for the handshake;
// when the process dies, or a request outlives its deadline, its callback gets Unavailable.
// Requests from the server to the client: `ping` is answered with {}, the others go to
// UpstreamOptions::on_request. The handshake starts with server/discover: a server of MCP
// 2026-07-28 is spoken to statelessly (upstream_era.h), any other after initialize.
//
// Thread-safe. Callbacks run on the reader or supervisor thread and must not block.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "mcp/upstream.h"
#include "mcp/upstream_era.h"

namespace custody::mcp {

class StdioUpstream final : public Upstream {
 public:
  StdioUpstream(StdioServerConfig config, UpstreamOptions options);
  ~StdioUpstream();  // Stop()
  StdioUpstream(const StdioUpstream&) = delete;
  StdioUpstream& operator=(const StdioUpstream&) = delete;

  // Starts the supervisor (returns at once; the process starts in the background).
  void Start() override;
  // Terminates the process (SIGTERM, then SIGKILL after 2 s) and fails what is in flight.
  void Stop() override;

  // Sends a request; `done` runs once. Returns the upstream id (for Cancel), 0 if refused.
  using Upstream::Call;
  // The Transaction Token of `extras` goes in params._meta["dev.custody/txn-token"], minted
  // anew for each send (a retry after input_required too).
  int64_t Call(const std::string& method, boost::json::value params, RequestExtras extras,
               UpstreamCallback done) override;
  // Gives up on request `id`: sends notifications/cancelled upstream (if it was sent) and runs
  // its callback with Unavailable. Nothing happens if it already finished.
  void Cancel(int64_t id, const std::string& reason) override;
  // Sends a notification (dropped while the server is not initialized).
  void Notify(const std::string& method, boost::json::value params) override;
  void Respond(const boost::json::value& id, boost::json::object answer) override;

  const std::string& name() const override { return config_.name; }
  bool ready() const override;
  bool HasCapability(std::string_view name) const override;
  bool modern() const override;
  int64_t starts() const;  // processes started so far (1 + restarts)
  int pid() const;         // of the current process, 0 when none

 private:
  struct Pending {
    UpstreamCallback done;
    std::chrono::steady_clock::time_point deadline;
    // The request: kept while waiting for the handshake, and by a modern server's for a retry
    // after input_required. Without the Transaction Token, which each send gets anew.
    boost::json::object request;
    TxnTokenSource txn_token;  // RequestExtras::txn_token (empty: none)
  };
  // One send of pending request `id`: the request as it goes, and the source of its token.
  struct Outgoing {
    int64_t id = 0;
    boost::json::object request;
    TxnTokenSource txn_token;
  };
  void Supervise() EXCLUDES(mu_, write_mu_);
  bool Spawn() EXCLUDES(mu_, write_mu_);
  void ReadStdout(int fd) EXCLUDES(mu_);
  void ReadStderr(int fd);
  void HandleLine(std::string_view line) EXCLUDES(mu_, write_mu_);
  bool WriteLine(const std::string& line) EXCLUDES(write_mu_);  // takes write_mu_
  void FailAll(const std::string& why, bool include_waiting) EXCLUDES(mu_);
  void ExpireDeadlines() EXCLUDES(mu_);
  // What to send for pending request `id` (shaped for a modern server), or nullopt when it is
  // gone or the gateway answered it itself (then `*local` holds the answer).
  std::optional<Outgoing> Prepare(int64_t id, std::optional<boost::json::object>* local,
                                  bool* changed) REQUIRES(mu_);
  // Writes `out` with a Transaction Token minted for this send (when it has a source); when
  // none can be minted, the request is failed instead (true). False: the write failed.
  bool Send(Outgoing out) EXCLUDES(mu_, write_mu_);
  void Answered(ModernEra::Step step) EXCLUDES(mu_, write_mu_);
  void Finish(int64_t id, Result<boost::json::object> r) EXCLUDES(mu_);
  // Opens a modern server's subscriptions/listen (cancelling the one open).
  void Listen() EXCLUDES(mu_, write_mu_);

  const StdioServerConfig config_;
  const UpstreamOptions options_;
  ModernEra era_{options_};

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  bool ready_ GUARDED_BY(mu_) = false;                               // handshake done
  std::set<std::string, std::less<>> capabilities_ GUARDED_BY(mu_);  // the server's, declared
  bool child_gone_ GUARDED_BY(mu_) = false;                          // stdout reached EOF
  int pid_ GUARDED_BY(mu_) = 0;
  int64_t starts_ GUARDED_BY(mu_) = 0;
  int64_t next_id_ GUARDED_BY(mu_) = 1;
  int64_t init_id_ GUARDED_BY(mu_) = 0;
  bool probing_ GUARDED_BY(mu_) = false;  // init_id_ is a server/discover probe
  std::chrono::steady_clock::time_point probe_deadline_ GUARDED_BY(mu_);
  bool modern_ GUARDED_BY(mu_) = false;                 // the server answered the probe: 2026-07-28
  int64_t listen_id_ GUARDED_BY(mu_) = 0;               // the open subscriptions/listen (0: none)
  std::map<int64_t, Pending> pending_ GUARDED_BY(mu_);  // sent, awaiting a response
  std::vector<int64_t> waiting_ GUARDED_BY(mu_);        // ids not yet sent (before ready)

  Mutex write_mu_;
  int stdin_fd_ GUARDED_BY(write_mu_) = -1;

  std::thread supervisor_;
  std::thread stdout_reader_;  // owned by the supervisor thread
  std::thread stderr_reader_;  // owned by the supervisor thread
};

}  // namespace custody::mcp
