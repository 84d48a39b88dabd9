// The configuration flags `custody serve` and `custody migrate` share (--config, --data-dir,
// --set, …), and how they become an api::Config: the same file, environment and overrides, so
// `custody migrate` sees exactly the storage a `custody serve` with the same flags would open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/config.h"
#include "common/status.h"

namespace CLI {
class App;
}

namespace custody::cli {

struct ServeFlags {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::string origin;
  std::string log_level;
  std::string log_format;
  std::string tls_cert;
  std::string tls_key;
  int64_t threads = -1;
  bool quickstart = false;
  bool migrate = false;
  std::vector<std::string> sets;  // key=value
};

// --config, --data-dir and --set on `cmd`.
void AddConfigFlags(CLI::App* cmd, ServeFlags& f);
// The file (--config or CUSTODY_CONFIG), then CUSTODY_* variables, then the flags.
Result<api::Config> LoadServeConfig(const ServeFlags& f);

}  // namespace custody::cli
