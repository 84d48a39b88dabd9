// VerifiedCache<T>: what a token's signature vouched for, kept by the token's SHA-256 so that the
// same bytes are not verified again (ES256 verification is most of an exchange's CPU). Only what
// never changes for those bytes goes in T (the verified claims); whatever can change (time,
// audience asked for, session and revocation state) the caller checks on every use, cached or
// not. Each entry lives until the time its Put names (at most the token's expiry, its key's
// publication, a short TTL); at most `capacity` entries, evicted oldest-first. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/mutex.h"
#include "common/status.h"
#include "crypto/sha256.h"

namespace custody::identity {

template <typename T>
class VerifiedCache {
 public:
  explicit VerifiedCache(size_t capacity) : capacity_(capacity) {}

  // The cached value for `token` if it is still valid at `now`; else verify(token) (a Result<T>),
  // kept until until(value) when it verified.
  template <typename Verify, typename Until>
  Result<T> GetOrVerify(const std::string& token, int64_t now, Verify&& verify, Until&& until)
      EXCLUDES(mu_) {
    if (capacity_ == 0) return verify(token);
    std::array<uint8_t, 32> digest = crypto::Sha256(token);
    std::string key(reinterpret_cast<const char*>(digest.data()), digest.size());
    {
      MutexLock lock(mu_);
      auto it = map_.find(key);
      if (it != map_.end()) {
        if (it->second.valid_until > now) return it->second.value;
        map_.erase(it);  // its slot in order_ is skipped when it comes up
      }
    }
    Result<T> verified = verify(token);
    if (!verified.ok()) return verified;
    int64_t valid_until = until(*verified);
    MutexLock lock(mu_);
    Put(std::move(key), *verified, valid_until);
    return verified;
  }

  size_t size() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return map_.size();
  }

 private:
  struct Entry {
    T value;
    int64_t valid_until = 0;
  };

  void Put(std::string key, const T& value, int64_t valid_until) REQUIRES(mu_) {
    // Evict the oldest insertions (FIFO): entries live a short time anyway.
    while (!order_.empty() && map_.size() >= capacity_) {
      map_.erase(order_.front());
      order_.pop_front();
    }
    // An erased key can leave order_ longer than map_; bound it too.
    if (order_.size() > 2 * capacity_) {
      std::deque<std::string> live;
      for (auto& k : order_) {
        if (map_.count(k) != 0) live.push_back(std::move(k));
      }
      order_.swap(live);
    }
    if (map_.insert_or_assign(key, Entry{value, valid_until}).second) {
      order_.push_back(std::move(key));
    }
  }

  const size_t capacity_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> map_ GUARDED_BY(mu_);
  std::deque<std::string> order_ GUARDED_BY(mu_);  // insertion order
};

}  // namespace custody::identity
