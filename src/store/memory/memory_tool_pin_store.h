// MemoryToolPinStore: the ToolPinStore in memory, for unit tests. It answers as
// SqliteToolPinStore does: both pass store/testing/tool_pin_store_conformance.h.
// Thread-safe (one mutex).
#pragma once

#include <map>
#include <string>
#include <tuple>

#include "common/mutex.h"
#include "store/tool_pin_store.h"

namespace custody::store {

class MemoryToolPinStore final : public ToolPinStore {
 public:
  Result<PinObservation> Observe(PinKind kind, const std::string& server, const std::string& name,
                                 const std::string& hash, int64_t now_ms) override;
  Status Approve(PinKind kind, const std::string& server, const std::string& name,
                 const std::string& hash) override;
  Result<std::vector<PinRecord>> List(PinKind kind) override;

 private:
  Mutex mu_;
  // By (kind, server, name): List's order within a kind.
  std::map<std::tuple<PinKind, std::string, std::string>, PinRecord> pins_ GUARDED_BY(mu_);
};

}  // namespace custody::store
