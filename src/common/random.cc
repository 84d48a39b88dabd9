#include "common/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

namespace custody {

void SystemRandom::Fill(std::span<uint8_t> out) {
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::getrandom(out.data() + off, out.size() - off, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // No entropy source: continuing would produce guessable ids and keys.
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace custody
