#include "cli/line_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace custody::cli {

LineWriter::LineWriter(int fd, bool interactive, size_t flush_at)
    : fd_(fd), interactive_(interactive), flush_at_(flush_at) {}

LineWriter::~LineWriter() {
  // Nothing can report a failure from a destructor; the pipelines flush and check before this.
  Flush().IgnoreError();
}

Status LineWriter::Write(std::string_view line) {
  buf_.append(line);
  buf_ += '\n';
  if (interactive_ || buf_.size() >= flush_at_) return Flush();
  return OkStatus();
}

Status LineWriter::Flush() {
  size_t done = 0;
  while (done < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      buf_.erase(0, done);
      return UnavailableError(std::string("cannot write standard output: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
  return OkStatus();
}

}  // namespace custody::cli
