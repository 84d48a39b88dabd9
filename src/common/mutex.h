// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with the annotations of
// common/thread_annotations.h, so that clang's -Wthread-safety (the `tsa` preset) checks that
// every GUARDED_BY member is touched with its lock held. libstdc++'s own types carry none.
//
//   Mutex mu_;
//   std::deque<Item> queue_ GUARDED_BY(mu_);
//   CondVar cv_;
//
//   MutexLock lock(mu_);                                     // held until the scope ends
//   cv_.Wait(mu_, [&]() REQUIRES(mu_) { return !queue_.empty(); });
//   Item item = std::move(queue_.front());
//   queue_.pop_front();
//   lock.Unlock();                                           // early, e.g. before a callback
//   Run(item);
//   lock.Lock();                                             // again, before the next look
//
// Same costs as the std types they wrap (one bool more in MutexLock). Not recursive. Mutex and
// CondVar are neither copyable nor movable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace custody {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds this mutex, where it cannot see it (a callback run
  // under the lock). std::mutex cannot tell its owner, so nothing is checked at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction, like std::lock_guard; Unlock() and Lock() give it
// up and take it again in between (the destructor unlocks only if it is held), like
// std::unique_lock.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A condition variable waited on with a Mutex the caller holds (through a MutexLock or
// Mutex::Lock): each Wait* releases `mu` while it sleeps and holds it again when it returns,
// as std::condition_variable does with a std::unique_lock. Predicates run with `mu` held; a
// lambda that reads members guarded by `mu` says so with REQUIRES(mu).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void NotifyOne() noexcept { cv_.notify_one(); }
  void NotifyAll() noexcept { cv_.notify_all(); }

  // Sleeps until notified (or woken spuriously).
  void Wait(Mutex& mu) REQUIRES(mu) {
    Adopted lock(mu);
    cv_.wait(lock.lock);
  }
  // Sleeps until `pred()` is true.
  template <class Predicate>
  void Wait(Mutex& mu, Predicate pred) REQUIRES(mu) {
    Adopted lock(mu);
    cv_.wait(lock.lock, std::move(pred));
  }

  // Sleeps until notified, woken spuriously or `timeout` has passed; false when it timed out.
  template <class Rep, class Period>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout) == std::cv_status::no_timeout;
  }
  // Sleeps until `pred()` is true or `timeout` has passed; returns `pred()`.
  template <class Rep, class Period, class Predicate>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout, Predicate pred)
      REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout, std::move(pred));
  }

  // The same with a deadline.
  template <class Clock, class Duration>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline) == std::cv_status::no_timeout;
  }
  template <class Clock, class Duration, class Predicate>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate pred) REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline, std::move(pred));
  }

 private:
  // The caller's lock lent to std::condition_variable for one wait. It is held again when the
  // wait returns (or a predicate throws), and stays the caller's: never unlocked here.
  struct Adopted {
    explicit Adopted(Mutex& mu) : lock(mu.mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    std::unique_lock<std::mutex> lock;
  };

  std::condition_variable cv_;
};

}  // namespace custody
