#include "export/reader.h"

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>

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
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return InvalidArgumentError(
        "--since takes an RFC 3339 time (2026-12-05T10:00:00Z) or Unix "
        "milliseconds");
  }
  std::string rest = text.substr(size_t(n));
  int64_t ms = 0;
  size_t i = 0;
  if (i < rest.size() && rest[i] == '.') {
    int digits = 0;
    for (++i; i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])); ++i) {
      if (digits < 3) ms = ms * 10 + (rest[i] - '0'), ++digits;
    }
    while (digits++ < 3) ms *= 10;
  }
  int64_t offset_s = 0;
  std::string zone = rest.substr(i);
  if (zone == "Z" || zone == "z") {
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    int oh = std::atoi(zone.substr(1, 2).c_str()), om = std::atoi(zone.substr(4, 2).c_str());
    offset_s = (oh * 3600 + om * 60) * (zone[0] == '+' ? 1 : -1);
  } else {
    return InvalidArgumentError("--since: a time needs its zone (Z or +HH:MM)");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (int64_t(timegm(&tm)) - offset_s) * 1000 + ms;
}

Result<uint64_t> FirstAtOrAfter(store::LedgerStore& store, uint64_t from, uint64_t to,
                                int64_t since_ms) {
  uint64_t found = to;
  RETURN_IF_ERROR(store.ScanLeaves(from, [&](const store::StoredLeaf& leaf) {
    if (leaf.index >= to) return false;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(leaf.data, ec);
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
