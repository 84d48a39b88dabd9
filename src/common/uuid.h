// UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits. Ids from one generator
// are strictly increasing: within one millisecond the 12-bit rand_a field is a counter
// (RFC 9562 §6.2, method 1), and a clock that steps backwards does not reorder ids.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"

namespace custody {

using Uuid = std::array<uint8_t, 16>;

// Lowercase 8-4-4-4-12 text form.
std::string FormatUuid(const Uuid& id);
Result<Uuid> ParseUuid(std::string_view text);

class UuidV7Generator {
 public:
  UuidV7Generator(const Clock& clock, Random& random) : clock_(clock), random_(random) {}
  Uuid Next();
  std::string NextString() { return FormatUuid(Next()); }

 private:
  const Clock& clock_;
  Random& random_;
  Mutex mu_;
  int64_t last_ms_ GUARDED_BY(mu_) = -1;
  uint16_t counter_ GUARDED_BY(mu_) = 0;
};

}  // namespace custody
