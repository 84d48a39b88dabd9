#include "store/memory/memory_tool_pin_store.h"

namespace custody::store {

Result<PinObservation> MemoryToolPinStore::Observe(PinKind kind, const std::string& server,
                                                   const std::string& name, const std::string& hash,
                                                   int64_t now_ms) {
  MutexLock lock(mu_);
  PinObservation obs;
  auto [it, inserted] = pins_.try_emplace({kind, server, name});
  PinRecord& p = it->second;
  if (inserted) {
    p = PinRecord{server, kind, name, hash, hash, now_ms, 0};
    obs.approved = true;
    obs.first_seen = true;
    obs.approved_hash = hash;
    return obs;
  }
  obs.approved_hash = p.approved_hash;
  obs.approved = p.approved_hash == hash;
  obs.newly_changed = !obs.approved && p.seen_hash != hash;
  if (p.seen_hash != hash) {
    p.seen_hash = hash;
    if (obs.newly_changed) p.changed_ms = now_ms;
  }
  return obs;
}

Status MemoryToolPinStore::Approve(PinKind kind, const std::string& server, const std::string& name,
                                   const std::string& hash) {
  MutexLock lock(mu_);
  auto it = pins_.find({kind, server, name});
  if (it == pins_.end()) {
    return NotFoundError(std::string(PinKindName(kind)) + " " + server + "/" + name +
                         " has never been seen");
  }
  if (it->second.seen_hash != hash) {
    return FailedPreconditionError("the upstream currently advertises " + server + "/" + name +
                                   " with definition hash " + it->second.seen_hash + ", not " +
                                   hash);
  }
  it->second.approved_hash = hash;
  return OkStatus();
}

Result<std::vector<PinRecord>> MemoryToolPinStore::List(PinKind kind) {
  MutexLock lock(mu_);
  std::vector<PinRecord> out;
  for (const auto& [key, p] : pins_) {
    if (std::get<0>(key) == kind) out.push_back(p);
  }
  return out;
}

}  // namespace custody::store
