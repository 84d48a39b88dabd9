// Injected randomness. SystemRandom reads the kernel CSPRNG (getrandom(2)) and is thread-safe.
#pragma once

#include <cstdint>
#include <span>

namespace custody {

class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<uint8_t> out) = 0;
};

class SystemRandom final : public Random {
 public:
  void Fill(std::span<uint8_t> out) override;
};

}  // namespace custody
