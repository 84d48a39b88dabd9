// A child process with pipes to its stdin and stdout, for end-to-end tests of the binary.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace custody::testing {

class Subprocess {
 public:
  // Starts `argv` (argv[0] is the program path) with piped stdin and stdout; stderr is inherited
  // unless `merge_stderr`, which sends it to the stdout pipe too.
  explicit Subprocess(const std::vector<std::string>& argv, bool merge_stderr = false);
  ~Subprocess();

  // Writes all of `data` to the child's stdin; false if the pipe is closed.
  bool Write(const std::string& data);
  void CloseStdin();
  // Reads one line from the child's stdout (without the newline); false on EOF.
  bool ReadLine(std::string* line);
  void Kill(int signal);
  // Waits for exit; returns the exit status as from waitpid.
  int Wait();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buf_;
  bool waited_ = false;
  int status_ = 0;
};

// Runs a command to completion, capturing stdout and stderr; returns the exit code (or -signal).
int RunCommand(const std::vector<std::string>& argv, std::string* out);

}  // namespace custody::testing
