#include "subprocess.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace custody::testing {

Subprocess::Subprocess(const std::vector<std::string>& argv, bool merge_stderr) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) std::abort();
  // Built before fork: a child of a multi-threaded test must not allocate (another thread may
  // hold the allocator's lock at the fork), only call async-signal-safe functions until exec.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    // A test that crashes must not leave its servers running.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (merge_stderr) dup2(out[1], 2);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  in_fd_ = in[1];
  out_fd_ = out[0];
  signal(SIGPIPE, SIG_IGN);
}

Subprocess::~Subprocess() {
  if (!waited_) {
    Kill(SIGKILL);
    Wait();
  }
  if (in_fd_ >= 0) close(in_fd_);
  if (out_fd_ >= 0) close(out_fd_);
}

bool Subprocess::Write(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(in_fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

void Subprocess::CloseStdin() {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
}

bool Subprocess::ReadLine(std::string* line) {
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      *line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    char tmp[65536];
    ssize_t n = read(out_fd_, tmp, sizeof(tmp));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // a partial last line is dropped: it was never complete
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

void Subprocess::Kill(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Subprocess::Wait() {
  if (!waited_) {
    while (waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    waited_ = true;
  }
  return status_;
}

int RunCommand(const std::vector<std::string>& argv, std::string* out) {
  Subprocess p(argv, /*merge_stderr=*/true);
  p.CloseStdin();
  std::string line;
  out->clear();
  while (p.ReadLine(&line)) *out += line + "\n";
  int st = p.Wait();
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return -WTERMSIG(st);
}

}  // namespace custody::testing
