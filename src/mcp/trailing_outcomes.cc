#include "mcp/trailing_outcomes.h"

#include <utility>

namespace custody::mcp {

TrailingOutcomes::TrailingOutcomes(std::chrono::microseconds linger) : linger_(linger) {
  thread_ = std::thread([this] { Run(); });
}

TrailingOutcomes::~TrailingOutcomes() { Stop(); }

void TrailingOutcomes::Add(Record record) {
  bool held = false, first = false, wake = false;
  {
    MutexLock lock(mu_);
    if (!stop_) {
      first = held_.empty();
      wake = idle_;
      if (first) oldest_ = std::chrono::steady_clock::now();
      held_.push_back(std::move(record));
      held = true;
    }
  }
  if (!held) {
    record();  // stopped: nothing would run it later
    return;
  }
  // Only the first of a generation starts the thread's wait, and only when the thread is idle:
  // one in a timed wait (for a generation a Take ended meanwhile, the usual case at one call in
  // flight) wakes at that earlier deadline and then waits for this one, so a call's answer costs
  // no thread wake-up.
  if (first && wake) cv_.NotifyOne();
}

std::vector<TrailingOutcomes::Record> TrailingOutcomes::Take() {
  std::vector<Record> take;
  MutexLock lock(mu_);
  if (held_.empty()) return take;
  take.swap(held_);
  ++generation_;
  return take;
}

void TrailingOutcomes::Flush() {
  for (auto& r : Take()) r();
}

void TrailingOutcomes::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  Flush();
}

size_t TrailingOutcomes::size() const {
  MutexLock lock(mu_);
  return held_.size();
}

void TrailingOutcomes::Run() {
  MutexLock lock(mu_);
  while (true) {
    idle_ = true;
    cv_.Wait(mu_, [&]() REQUIRES(mu_) { return stop_ || !held_.empty(); });
    idle_ = false;
    if (stop_) return;  // Stop flushes what is held
    const uint64_t generation = generation_;
    const auto deadline = oldest_ + linger_;
    // Flushed meanwhile (the usual case under steady calls): wait for the next generation.
    if (cv_.WaitUntil(mu_, deadline,
                      [&]() REQUIRES(mu_) { return stop_ || generation_ != generation; })) {
      continue;
    }
    std::vector<Record> take;
    take.swap(held_);
    ++generation_;
    lock.Unlock();
    for (auto& r : take) r();
    lock.Lock();
  }
}

}  // namespace custody::mcp
