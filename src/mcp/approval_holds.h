// ApprovalHolds: the waits of requests the MCP gateway holds while a person decides an approval
// (docs/MCP.md, "Approvals"). Each hold is a poll function, run on the holds' own thread: at
// once, then every kPollPeriod (or at its deadline if sooner), and at once when Wake names its
// approval (the attribution service saw it change). It runs until it returns false. Nothing
// waits on a caller's or an I/O thread: one asio io_context on one thread runs every hold's
// timer, and the poll functions are the only work done there (a store read each, at most).
//
// Thread-safe. Stop() (and the destructor) runs every remaining poll once more with kStopping,
// so each held request is answered, then joins the thread; holds added after Stop get kStopping
// at once, on the caller's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace custody::mcp {

class ApprovalHolds {
 public:
  enum class Why {
    kTimer,     // its period (or deadline) came
    kWoken,     // Wake named its approval
    kStopping,  // the gateway is stopping: answer, and return false
  };
  // Returns whether the hold goes on.
  using Poll = std::function<bool(Why)>;
  static constexpr std::chrono::milliseconds kPollPeriod{500};

  ApprovalHolds();
  ~ApprovalHolds();
  ApprovalHolds(const ApprovalHolds&) = delete;
  ApprovalHolds& operator=(const ApprovalHolds&) = delete;

  // Holds on approval `approval_id` until `poll` returns false; polled no later than `deadline`.
  void Add(const std::string& approval_id, std::chrono::steady_clock::time_point deadline,
           Poll poll);
  // The holds on `approval_id` are polled at once (kWoken). Never blocks.
  void Wake(const std::string& approval_id);
  void Stop();
  size_t size() const;  // holds in progress (tests)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace custody::mcp
