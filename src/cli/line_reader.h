// LineReader: the lines of a file descriptor (the CLI's standard input), read with read(2) into
// one large buffer and split there, instead of a character at a time through iostreams.
// Not thread-safe; one reader per descriptor, which it does not own or close.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::cli {

class LineReader {
 public:
  static constexpr size_t kDefaultBufferSize = 1 << 20;

  // `buffer_size` is where the buffer starts; it grows to hold a longer line.
  explicit LineReader(int fd, size_t buffer_size = kDefaultBufferSize);

  // Runs before every read(2) that may block, i.e. once the buffered lines are used up. A
  // pipeline flushes its output here, so a consumer waiting for an answer before it writes
  // the next line is never left waiting.
  void SetBeforeRead(std::function<void()> before_read) { before_read_ = std::move(before_read); }

  // The next line, without its '\n' (a '\r' before it is kept: that is the caller's to judge).
  // The last line needs no '\n'. The view is valid until the next call. Returns false at the
  // end of input; an error if read(2) fails (the lines before it have been returned).
  [[nodiscard]] Result<bool> Next(std::string_view* line);

 private:
  // Reads more after end_, first moving the unread part to the front or growing the buffer.
  // Returns the number of bytes read (0 at the end of input).
  [[nodiscard]] Result<size_t> Fill();

  int fd_;
  std::string buf_;
  size_t begin_ = 0;    // first byte not yet returned
  size_t end_ = 0;      // end of the bytes read
  size_t scanned_ = 0;  // [begin_, scanned_) holds no '\n'
  bool eof_ = false;
  std::function<void()> before_read_;
};

}  // namespace custody::cli
