#include "export/reader.h"

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>

#include "common/json_parse.h"
#include "common/rfc3339.h"

namespace custody::ocsf {

Status ForEachRecord(store::LedgerStore& store, uint64_t from, uint64_t to, const Options& options,
                     const std::function<bool(uint64_t index, const std::string& record)>& fn) {
  if (from >= to) return OkStatus();
  Status failure = OkStatus();
  Status st = store.ScanLeaves(from, [&](const store::StoredLeaf& leaf) {
    if (leaf.index >= to) return false;
    Result<std::string> record = MapEntry(leaf.index, leaf.data, options);
    if (!record.ok()) {
      failure = DataLossError(record.status().message());
      return false;
    }
    return fn(leaf.index, *record);
  });
  RETURN_IF_ERROR(st);
  return failure;
}

Result<int64_t> ParseSince(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
      text.size() <= 15) {
    return std::stoll(text);
  }
  if (auto ms = ParseRfc3339Millis(text)) return *ms;
  return InvalidArgumentError(
      "--since takes an RFC 3339 time with its zone (2026-12-05T10:00:00Z, +HH:MM) or Unix "
      "milliseconds");
}

Result<uint64_t> FirstAtOrAfter(store::LedgerStore& store, uint64_t from, uint64_t to,
                                int64_t since_ms) {
  uint64_t found = to;
  RETURN_IF_ERROR(store.ScanLeaves(from, [&](const store::StoredLeaf& leaf) {
    if (leaf.index >= to) return false;
    boost::system::error_code ec;
    boost::json::value v = ParseJson(leaf.data, ec);
    if (!ec && v.is_object()) {
      if (auto* t = v.get_object().if_contains("time"); t && t->is_string()) {
        Result<int64_t> ms = ParseSince(std::string(t->get_string()));
        if (ms.ok() && *ms >= since_ms) {
          found = leaf.index;
          return false;
        }
      }
    }
    return true;
  }));
  return found;
}

}  // namespace custody::ocsf
