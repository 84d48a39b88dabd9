// LineWriter: output lines gathered in one buffer and written with write(2) in large pieces,
// for the CLI's stdout pipelines. To a terminal every line is written at once, as a person
// expects; to a pipe or a file only when the buffer is large or on Flush(), which the
// pipelines call whenever they would otherwise wait (for input, or for a batch to commit).
// Not thread-safe; it does not own or close the descriptor.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::cli {

class LineWriter {
 public:
  static constexpr size_t kDefaultFlushAt = 1 << 20;

  // `interactive`: write each line at once (callers pass isatty(fd)). Otherwise the buffer is
  // written once it holds `flush_at` bytes.
  LineWriter(int fd, bool interactive, size_t flush_at = kDefaultFlushAt);
  // Writes what is left; an error here is lost, so pipelines call Flush() themselves at the end.
  ~LineWriter();

  // Adds `line` and a '\n'.
  [[nodiscard]] Status Write(std::string_view line);
  // Writes everything buffered.
  [[nodiscard]] Status Flush();

 private:
  int fd_;
  bool interactive_;
  size_t flush_at_;
  std::string buf_;
};

}  // namespace custody::cli
