#include "cli/line_reader.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace custody::cli {

LineReader::LineReader(int fd, size_t buffer_size) : fd_(fd) {
  buf_.resize(buffer_size == 0 ? 1 : buffer_size);
}

Result<size_t> LineReader::Fill() {
  if (begin_ > 0) {
    // Moving the unread tail is cheap next to the read that follows: it is under one line.
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    scanned_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // one line fills the whole buffer
  if (before_read_) before_read_();
  while (true) {
    ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n >= 0) {
      end_ += static_cast<size_t>(n);
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return UnavailableError(std::string("cannot read standard input: ") + std::strerror(errno));
    }
  }
}

Result<bool> LineReader::Next(std::string_view* line) {
  while (true) {
    const char* start = buf_.data() + scanned_;
    const void* nl = std::memchr(start, '\n', end_ - scanned_);
    if (nl != nullptr) {
      size_t pos = static_cast<const char*>(nl) - buf_.data();
      *line = std::string_view(buf_.data() + begin_, pos - begin_);
      begin_ = scanned_ = pos + 1;
      return true;
    }
    scanned_ = end_;
    if (eof_) break;
    ASSIGN_OR_RETURN(size_t n, Fill());
    if (n == 0) eof_ = true;
  }
  if (begin_ == end_) return false;
  *line = std::string_view(buf_.data() + begin_, end_ - begin_);  // the last line, no '\n'
  begin_ = scanned_ = end_;
  return true;
}

}  // namespace custody::cli
