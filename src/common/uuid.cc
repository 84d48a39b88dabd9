#include "common/uuid.h"

#include "common/encoding.h"

namespace custody {

std::string FormatUuid(const Uuid& id) {
  std::string hex = HexEncode(id);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Result<Uuid> ParseUuid(std::string_view text) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return InvalidArgumentError("malformed UUID");
  }
  std::string hex;
  for (char c : text) {
    if (c != '-') hex += c;
  }
  auto bytes = HexDecode(hex);
  if (!bytes.ok()) return InvalidArgumentError("malformed UUID");
  Uuid id{};
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}

Uuid UuidV7Generator::Next() {
  Uuid id{};
  random_.Fill(id);
  int64_t ms = UnixMillis(clock_.Now());
  {
    MutexLock lock(mu_);
    if (ms <= last_ms_) {
      // Same (or earlier) millisecond: count up; on counter overflow borrow the next millisecond.
      if (++counter_ > 0x0FFF) {
        counter_ = 0;
        ++last_ms_;
      }
      ms = last_ms_;
    } else {
      last_ms_ = ms;
      counter_ = static_cast<uint16_t>((id[6] & 0x07) << 8 | id[7]);  // random start, room to count
    }
    id[6] = static_cast<uint8_t>(0x70 | ((counter_ >> 8) & 0x0F));
    id[7] = static_cast<uint8_t>(counter_ & 0xFF);
  }
  for (int i = 0; i < 6; ++i)
    id[i] = static_cast<uint8_t>(static_cast<uint64_t>(ms) >> (40 - 8 * i));
  id[8] = static_cast<uint8_t>(0x80 | (id[8] & 0x3F));
  return id;
}

}  // namespace custody
