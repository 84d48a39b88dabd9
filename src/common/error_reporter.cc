#include "common/error_reporter.h"

namespace custody {

void ErrorReporter::Report(std::string_view site, const Status& status) {
  {
    MutexLock lock(mu_);
    auto it = counts_.find(site);
    if (it == counts_.end()) it = counts_.emplace(std::string(site), 0).first;
    ++it->second;
  }
  log_.Log(LogLevel::kWarn, "error",
           {{"site", site},
            {"code", StatusCodeName(status.code())},
            {"message", std::string_view(status.message())}});
}

uint64_t ErrorReporter::Count(std::string_view site) const {
  MutexLock lock(mu_);
  auto it = counts_.find(site);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, uint64_t>> ErrorReporter::Counts() const {
  MutexLock lock(mu_);
  return {counts_.begin(), counts_.end()};
}

}  // namespace custody
