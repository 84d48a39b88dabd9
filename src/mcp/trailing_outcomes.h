// TrailingOutcomes: the outcomes of calls already answered (mcp.await_outcome = false), held a
// moment so that each goes to the ledger right after the next decision rather than just before it.
//
// Why: at one call in flight, a client's next call arrives about when the previous call's outcome
// (queued as its answer left) is being committed, so the next decision waited for that commit
// and then for its own: two durable commits on the critical path of every call. Held here, an
// outcome is queued when the next decision has been queued (taken by the gateway before it asks for
// the next decision, run right after that decision is queued), so it rides in that decision's
// commit or in the one after it, while the call is upstream; and when no call follows, the holder's
// thread queues it `linger` after it arrived. An outcome was never durable when its answer left;
// this only moves when it is queued, by at most `linger`.
//
// Thread-safe. Stop() (and the destructor) runs everything held, then joins the thread; records
// added after Stop run at once on the caller's thread.
#pragma once

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace custody::mcp {

class TrailingOutcomes {
 public:
  using Record = std::function<void()>;

  explicit TrailingOutcomes(std::chrono::microseconds linger);
  ~TrailingOutcomes();
  TrailingOutcomes(const TrailingOutcomes&) = delete;
  TrailingOutcomes& operator=(const TrailingOutcomes&) = delete;

  // Holds `record` until the next Flush, or `linger` after the oldest held one arrived.
  void Add(Record record) EXCLUDES(mu_);
  // Everything held, for the caller to run (the gateway takes them before it asks for a
  // decision and runs them once it is queued, so a call answered meanwhile, even this one, is
  // not among them).
  std::vector<Record> Take() EXCLUDES(mu_);
  // Runs everything held, now, on the caller's thread.
  void Flush() EXCLUDES(mu_);
  void Stop() EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);  // held (tests)

 private:
  void Run() EXCLUDES(mu_);

  const std::chrono::microseconds linger_;
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<Record> held_ GUARDED_BY(mu_);
  // When the oldest held record arrived, and how many times the held records were taken: the
  // thread's wait is for one generation, so one Flush and a new Add meanwhile start a new wait.
  std::chrono::steady_clock::time_point oldest_ GUARDED_BY(mu_);
  uint64_t generation_ GUARDED_BY(mu_) = 0;
  bool idle_ GUARDED_BY(mu_) = false;  // the thread waits for a record, with no deadline
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace custody::mcp
