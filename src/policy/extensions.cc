#include "policy/extensions.h"

#include <cstdio>
#include <vector>

namespace custody::policy {
namespace {

using u128 = unsigned __int128;
using i128 = __int128;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!IsDigit(c)) return false;
  return true;
}

// Parses a non-empty digit string into a 128-bit value, failing on absurd lengths.
std::optional<i128> ParseDigits(std::string_view s) {
  if (!AllDigits(s) || s.size() > 30) return std::nullopt;
  i128 v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

constexpr int64_t kMsPerDay = 86400000;

bool FitsI64(i128 v) { return v >= INT64_MIN && v <= INT64_MAX; }

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

std::optional<int> Fixed(std::string_view s, size_t pos, size_t len) {
  if (pos + len > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (!IsDigit(s[i])) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

Status TypeError(std::string_view fn, std::span<const Value> args) {
  std::string msg = "type error: `" + std::string(fn) + "` does not apply to (";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) msg += ", ";
    msg += Value::KindName(args[i].kind());
  }
  return InvalidArgumentError(msg + ")");
}

Status ExtError(std::string msg) { return InvalidArgumentError("extension error: " + msg); }

struct IpRange {
  u128 lo, hi;
};

IpRange RangeOf(const IpAddr& ip) {
  u128 v = 0;
  for (uint8_t b : ip.bytes) v = (v << 8) | b;
  int width = (ip.v6 ? 128 : 32) - ip.prefix;
  u128 lo = width >= 128 ? 0 : (v >> width) << width;
  u128 span = width >= 128 ? ~static_cast<u128>(0) : ((static_cast<u128>(1) << width) - 1);
  return {lo, lo + span};
}

bool InRange(const IpAddr& a, const IpAddr& b) {
  if (a.v6 != b.v6) return false;
  IpRange r1 = RangeOf(a), r2 = RangeOf(b);
  return r2.hi >= r1.hi && r1.lo >= r2.lo;
}

std::optional<int> ParsePrefix(std::string_view s, size_t max_digits, int size) {
  if (s.empty() || s.size() > max_digits || !AllDigits(s)) return std::nullopt;
  if (s[0] == '0' && s != "0") return std::nullopt;
  int n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  if (n > size) return std::nullopt;
  return n;
}

std::optional<IpAddr> ParseIpv4(std::string_view s) {
  auto parts = Split(s, '/');
  if (parts.size() > 2) return std::nullopt;
  IpAddr ip;
  ip.v6 = false;
  ip.prefix = 32;
  if (parts.size() == 2) {
    auto p = ParsePrefix(parts[1], 2, 32);
    if (!p) return std::nullopt;
    ip.prefix = static_cast<uint8_t>(*p);
  }
  auto segs = Split(parts[0], '.');
  if (segs.size() != 4) return std::nullopt;
  for (int i = 0; i < 4; ++i) {
    std::string_view seg = segs[i];
    if (seg.empty() || seg.size() > 3 || !AllDigits(seg)) return std::nullopt;
    if (seg[0] == '0' && seg != "0") return std::nullopt;
    int n = 0;
    for (char c : seg) n = n * 10 + (c - '0');
    if (n > 255) return std::nullopt;
    ip.bytes[12 + i] = static_cast<uint8_t>(n);
  }
  return ip;
}

bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::optional<std::vector<uint16_t>> ParseV6Groups(std::string_view s) {
  std::vector<uint16_t> out;
  if (s.empty()) return out;
  for (std::string_view g : Split(s, ':')) {
    if (g.empty() || g.size() > 4) return std::nullopt;
    unsigned v = 0;
    for (char c : g) {
      if (!IsHex(c)) return std::nullopt;
      v = v * 16 + (IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    out.push_back(static_cast<uint16_t>(v));
  }
  return out;
}

std::optional<IpAddr> ParseIpv6(std::string_view s) {
  auto parts = Split(s, '/');
  if (parts.size() > 2) return std::nullopt;
  IpAddr ip;
  ip.v6 = true;
  ip.prefix = 128;
  if (parts.size() == 2) {
    auto p = ParsePrefix(parts[1], 3, 128);
    if (!p) return std::nullopt;
    ip.prefix = static_cast<uint8_t>(*p);
  }
  std::string_view addr = parts[0];
  std::vector<uint16_t> groups;
  size_t dc = addr.find("::");
  if (dc == std::string_view::npos) {
    auto g = ParseV6Groups(addr);
    if (!g) return std::nullopt;
    groups = *g;
  } else {
    if (addr.find("::", dc + 1) != std::string_view::npos) return std::nullopt;
    auto a = ParseV6Groups(addr.substr(0, dc));
    auto b = ParseV6Groups(addr.substr(dc + 2));
    if (!a || !b || a->size() + b->size() >= 8) return std::nullopt;
    groups = *a;
    groups.resize(8 - b->size(), 0);
    groups.insert(groups.end(), b->begin(), b->end());
  }
  if (groups.size() != 8) return std::nullopt;
  for (int i = 0; i < 8; ++i) {
    ip.bytes[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
    ip.bytes[2 * i + 1] = static_cast<uint8_t>(groups[i] & 0xff);
  }
  return ip;
}

}  // namespace

std::optional<Decimal> ParseDecimal(std::string_view s) {
  auto parts = Split(s, '.');
  if (parts.size() != 2) return std::nullopt;
  std::string_view left = parts[0], right = parts[1];
  if (right.empty() || right.size() > 4 || !AllDigits(right)) return std::nullopt;
  bool neg = !left.empty() && left[0] == '-';
  if (neg) left.remove_prefix(1);
  auto l = ParseDigits(left);
  auto r = ParseDigits(right);
  if (!l || !r) return std::nullopt;
  i128 scale = 1;
  for (size_t i = right.size(); i < 4; ++i) scale *= 10;
  // The sign applies to the whole number: "-0.5" is -0.5 (as cedar-wasm computes it).
  i128 v = *l * 10000 + *r * scale;
  if (neg) v = -v;
  if (!FitsI64(v)) return std::nullopt;
  return Decimal{static_cast<int64_t>(v)};
}

std::string FormatDecimal(Decimal d) {
  int64_t v = d.scaled;
  bool neg = v < 0;
  u128 a = neg ? static_cast<u128>(-(static_cast<i128>(v))) : static_cast<u128>(v);
  uint64_t ip = static_cast<uint64_t>(a / 10000), fp = static_cast<uint64_t>(a % 10000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%llu.%04llu", neg ? "-" : "", (unsigned long long)ip,
                (unsigned long long)fp);
  std::string out = buf;
  while (out.size() > 2 && out.back() == '0' && out[out.size() - 2] != '.') out.pop_back();
  return out;
}

std::optional<IpAddr> ParseIp(std::string_view s) {
  if (auto v4 = ParseIpv4(s)) return v4;
  return ParseIpv6(s);
}

std::string FormatIp(const IpAddr& ip) {
  char buf[96];
  if (!ip.v6) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u/%u", ip.bytes[12], ip.bytes[13], ip.bytes[14],
                  ip.bytes[15], ip.prefix);
    return buf;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%s%x", i ? ":" : "",
                  (ip.bytes[2 * i] << 8) | ip.bytes[2 * i + 1]);
    out += buf;
  }
  return out + "/" + std::to_string(ip.prefix);
}

std::optional<Datetime> ParseDatetime(std::string_view s) {
  // YYYY-MM-DD, then optionally Thh:mm:ss, optional .SSS, then Z or (+|-)hhmm.
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto y = Fixed(s, 0, 4), mo = Fixed(s, 5, 2), d = Fixed(s, 8, 2);
  if (!y || !mo || !d) return std::nullopt;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > static_cast<int>(DaysInMonth(*y, *mo)))
    return std::nullopt;
  i128 ms = static_cast<i128>(DaysFromCivil(*y, *mo, *d)) * kMsPerDay;
  if (s.size() == 10) {
    if (!FitsI64(ms)) return std::nullopt;
    return Datetime{static_cast<int64_t>(ms)};
  }
  if (s.size() < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
  auto h = Fixed(s, 11, 2), mi = Fixed(s, 14, 2), se = Fixed(s, 17, 2);
  if (!h || !mi || !se || *h > 23 || *mi > 59 || *se > 59) return std::nullopt;
  ms += (static_cast<i128>(*h) * 3600 + *mi * 60 + *se) * 1000;
  size_t pos = 19;
  if (s[pos] == '.') {
    auto frac = Fixed(s, pos + 1, 3);
    if (!frac) return std::nullopt;
    ms += *frac;
    pos += 4;
  }
  if (pos >= s.size()) return std::nullopt;
  if (s[pos] == 'Z') {
    if (pos + 1 != s.size()) return std::nullopt;
  } else if (s[pos] == '+' || s[pos] == '-') {
    if (pos + 5 != s.size()) return std::nullopt;
    auto oh = Fixed(s, pos + 1, 2), om = Fixed(s, pos + 3, 2);
    if (!oh || !om || *om >= 60) return std::nullopt;
    int64_t off_s = *oh * 3600 + *om * 60;
    if (off_s >= 86400) return std::nullopt;
    // Local time = UTC + offset, so UTC = local - offset.
    ms += (s[pos] == '+' ? -1 : 1) * static_cast<i128>(off_s) * 1000;
  } else {
    return std::nullopt;
  }
  if (!FitsI64(ms)) return std::nullopt;
  return Datetime{static_cast<int64_t>(ms)};
}

std::optional<Duration> ParseDuration(std::string_view s) {
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  struct Unit {
    std::string_view suffix;
    int64_t ms;
  };
  static const Unit kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", kMsPerDay}};
  i128 total = 0;
  for (const Unit& u : kUnits) {
    if (s.size() < u.suffix.size() || s.substr(s.size() - u.suffix.size()) != u.suffix) continue;
    std::string_view rest = s.substr(0, s.size() - u.suffix.size());
    size_t n = 0;
    while (n < rest.size() && IsDigit(rest[rest.size() - 1 - n])) ++n;
    if (n == 0) return std::nullopt;
    auto q = ParseDigits(rest.substr(rest.size() - n));
    if (!q || !FitsI64(neg ? -*q : *q)) return std::nullopt;
    total += (neg ? -*q : *q) * u.ms;
    s = rest.substr(0, rest.size() - n);
  }
  if (!s.empty() || !FitsI64(total)) return std::nullopt;
  return Duration{static_cast<int64_t>(total)};
}

namespace {
struct FnInfo {
  ExtFn fn;
  std::string_view name;
  bool method;
  int arity;
};
constexpr FnInfo kFns[] = {
    {ExtFn::kDecimal, "decimal", false, 1},
    {ExtFn::kIp, "ip", false, 1},
    {ExtFn::kDatetime, "datetime", false, 1},
    {ExtFn::kDuration, "duration", false, 1},
    {ExtFn::kLessThan, "lessThan", true, 2},
    {ExtFn::kLessThanOrEqual, "lessThanOrEqual", true, 2},
    {ExtFn::kGreaterThan, "greaterThan", true, 2},
    {ExtFn::kGreaterThanOrEqual, "greaterThanOrEqual", true, 2},
    {ExtFn::kIsIpv4, "isIpv4", true, 1},
    {ExtFn::kIsIpv6, "isIpv6", true, 1},
    {ExtFn::kIsLoopback, "isLoopback", true, 1},
    {ExtFn::kIsMulticast, "isMulticast", true, 1},
    {ExtFn::kIsInRange, "isInRange", true, 2},
    {ExtFn::kOffset, "offset", true, 2},
    {ExtFn::kDurationSince, "durationSince", true, 2},
    {ExtFn::kToDate, "toDate", true, 1},
    {ExtFn::kToTime, "toTime", true, 1},
    {ExtFn::kToDays, "toDays", true, 1},
    {ExtFn::kToHours, "toHours", true, 1},
    {ExtFn::kToMinutes, "toMinutes", true, 1},
    {ExtFn::kToSeconds, "toSeconds", true, 1},
    {ExtFn::kToMilliseconds, "toMilliseconds", true, 1},
};
}  // namespace

std::optional<ExtFn> LookupExtConstructor(std::string_view name) {
  for (const auto& f : kFns)
    if (!f.method && f.name == name) return f.fn;
  return std::nullopt;
}
std::optional<ExtFn> LookupExtMethod(std::string_view name) {
  for (const auto& f : kFns)
    if (f.method && f.name == name) return f.fn;
  return std::nullopt;
}
std::optional<ExtFn> LookupExtAny(std::string_view name) {
  for (const auto& f : kFns)
    if (f.name == name) return f.fn;
  return std::nullopt;
}
std::string_view ExtFnName(ExtFn fn) { return kFns[static_cast<int>(fn)].name; }
int ExtFnArity(ExtFn fn) { return kFns[static_cast<int>(fn)].arity; }

Result<Value> CallExt(ExtFn fn, std::span<const Value> args) {
  using K = Value::Kind;
  std::string_view name = ExtFnName(fn);
  if (static_cast<int>(args.size()) != ExtFnArity(fn)) {
    return InvalidArgumentError("wrong number of arguments to `" + std::string(name) +
                                "`: expected " + std::to_string(ExtFnArity(fn)) + ", got " +
                                std::to_string(args.size()));
  }
  auto kinds = [&](K a, K b) { return args[0].is(a) && args[1].is(b); };
  switch (fn) {
    case ExtFn::kDecimal: {
      if (!args[0].is(K::kString)) return TypeError(name, args);
      auto d = ParseDecimal(args[0].as_string());
      if (!d)
        return ExtError("invalid decimal literal \"" + EscapeCedarString(args[0].as_string()) +
                        "\"");
      return Value::FromDecimal(*d);
    }
    case ExtFn::kIp: {
      if (!args[0].is(K::kString)) return TypeError(name, args);
      auto d = ParseIp(args[0].as_string());
      if (!d)
        return ExtError("invalid ip literal \"" + EscapeCedarString(args[0].as_string()) + "\"");
      return Value::FromIp(*d);
    }
    case ExtFn::kDatetime: {
      if (!args[0].is(K::kString)) return TypeError(name, args);
      auto d = ParseDatetime(args[0].as_string());
      if (!d)
        return ExtError("invalid datetime literal \"" + EscapeCedarString(args[0].as_string()) +
                        "\"");
      return Value::FromDatetime(*d);
    }
    case ExtFn::kDuration: {
      if (!args[0].is(K::kString)) return TypeError(name, args);
      auto d = ParseDuration(args[0].as_string());
      if (!d)
        return ExtError("invalid duration literal \"" + EscapeCedarString(args[0].as_string()) +
                        "\"");
      return Value::FromDuration(*d);
    }
    case ExtFn::kLessThan:
    case ExtFn::kLessThanOrEqual:
    case ExtFn::kGreaterThan:
    case ExtFn::kGreaterThanOrEqual: {
      if (!kinds(K::kDecimal, K::kDecimal)) return TypeError(name, args);
      int64_t a = args[0].as_decimal().scaled, b = args[1].as_decimal().scaled;
      bool r = fn == ExtFn::kLessThan          ? a < b
               : fn == ExtFn::kLessThanOrEqual ? a <= b
               : fn == ExtFn::kGreaterThan     ? a > b
                                               : a >= b;
      return Value::Bool(r);
    }
    case ExtFn::kIsIpv4:
    case ExtFn::kIsIpv6:
    case ExtFn::kIsLoopback:
    case ExtFn::kIsMulticast: {
      if (!args[0].is(K::kIp)) return TypeError(name, args);
      const IpAddr& ip = args[0].as_ip();
      if (fn == ExtFn::kIsIpv4) return Value::Bool(!ip.v6);
      if (fn == ExtFn::kIsIpv6) return Value::Bool(ip.v6);
      IpAddr net;
      net.v6 = ip.v6;
      if (fn == ExtFn::kIsLoopback) {
        if (ip.v6) {
          net.bytes[15] = 1;
          net.prefix = 128;
        } else {
          net.bytes[12] = 127;
          net.prefix = 8;
        }
      } else {
        if (ip.v6) {
          net.bytes[0] = 0xff;
          net.prefix = 8;
        } else {
          net.bytes[12] = 224;
          net.prefix = 4;
        }
      }
      return Value::Bool(InRange(ip, net));
    }
    case ExtFn::kIsInRange:
      if (!kinds(K::kIp, K::kIp)) return TypeError(name, args);
      return Value::Bool(InRange(args[0].as_ip(), args[1].as_ip()));
    case ExtFn::kOffset: {
      if (!kinds(K::kDatetime, K::kDuration)) return TypeError(name, args);
      int64_t r;
      if (__builtin_add_overflow(args[0].as_datetime().ms, args[1].as_duration().ms, &r))
        return ExtError("overflow in datetime offset");
      return Value::FromDatetime(Datetime{r});
    }
    case ExtFn::kDurationSince: {
      if (!kinds(K::kDatetime, K::kDatetime)) return TypeError(name, args);
      int64_t r;
      if (__builtin_sub_overflow(args[0].as_datetime().ms, args[1].as_datetime().ms, &r))
        return ExtError("overflow in durationSince");
      return Value::FromDuration(Duration{r});
    }
    case ExtFn::kToDate: {
      if (!args[0].is(K::kDatetime)) return TypeError(name, args);
      int64_t v = args[0].as_datetime().ms;
      if (v >= 0) return Value::FromDatetime(Datetime{kMsPerDay * (v / kMsPerDay)});
      if (v % kMsPerDay == 0) return Value::FromDatetime(Datetime{v});
      i128 r = (static_cast<i128>(v / kMsPerDay) - 1) * kMsPerDay;
      if (!FitsI64(r)) return ExtError("overflow in toDate");
      return Value::FromDatetime(Datetime{static_cast<int64_t>(r)});
    }
    case ExtFn::kToTime: {
      if (!args[0].is(K::kDatetime)) return TypeError(name, args);
      int64_t v = args[0].as_datetime().ms;
      int64_t rem = v % kMsPerDay;
      if (rem < 0) rem += kMsPerDay;
      return Value::FromDuration(Duration{rem});
    }
    case ExtFn::kToDays:
    case ExtFn::kToHours:
    case ExtFn::kToMinutes:
    case ExtFn::kToSeconds:
    case ExtFn::kToMilliseconds: {
      if (!args[0].is(K::kDuration)) return TypeError(name, args);
      int64_t v = args[0].as_duration().ms;
      switch (fn) {
        case ExtFn::kToDays:
          return Value::Long(v / kMsPerDay);
        case ExtFn::kToHours:
          return Value::Long(v / 3600000);
        case ExtFn::kToMinutes:
          return Value::Long(v / 60000);
        case ExtFn::kToSeconds:
          return Value::Long(v / 1000);
        default:
          return Value::Long(v);
      }
    }
  }
  return InternalError("unknown extension function");
}

}  // namespace custody::policy
