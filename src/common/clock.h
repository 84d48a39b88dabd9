// Injected time. Production code takes a Clock& so tests can use FakeClock (no sleeps).
// SystemClock is stateless and thread-safe; FakeClock is thread-safe (atomic).
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace custody {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1700000000)))
      : now_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch())
                    .count()) {}
  TimePoint Now() const override {
    return TimePoint(
        std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(now_ns_.load())));
  }
  void Advance(std::chrono::nanoseconds d) { now_ns_ += d.count(); }
  void Set(TimePoint t) {
    now_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

 private:
  std::atomic<int64_t> now_ns_;
};

// "2026-11-22T05:13:31.123Z": RFC 3339 UTC with millisecond precision.
std::string FormatRfc3339Millis(TimePoint t);

// Milliseconds since the Unix epoch.
inline int64_t UnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace custody
