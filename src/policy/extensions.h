// Cedar extension types: parsing of decimal, ipaddr, datetime and duration literals, and the
// extension functions and methods over them. Stateless and thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "policy/value.h"

namespace custody::policy {

std::optional<Decimal> ParseDecimal(std::string_view s);
std::optional<IpAddr> ParseIp(std::string_view s);
std::optional<Datetime> ParseDatetime(std::string_view s);
std::optional<Duration> ParseDuration(std::string_view s);

std::string FormatDecimal(Decimal d);
std::string FormatIp(const IpAddr& ip);

enum class ExtFn : uint8_t {
  // Constructors, called as functions: decimal("1.0").
  kDecimal,
  kIp,
  kDatetime,
  kDuration,
  // Methods, called on a receiver: d.lessThan(e). The receiver is argument 0.
  kLessThan,
  kLessThanOrEqual,
  kGreaterThan,
  kGreaterThanOrEqual,
  kIsIpv4,
  kIsIpv6,
  kIsLoopback,
  kIsMulticast,
  kIsInRange,
  kOffset,
  kDurationSince,
  kToDate,
  kToTime,
  kToDays,
  kToHours,
  kToMinutes,
  kToSeconds,
  kToMilliseconds,
};

// Function-call syntax names: "decimal", "ip", "datetime", "duration".
std::optional<ExtFn> LookupExtConstructor(std::string_view name);
// Method-call syntax names: "lessThan", "isInRange", "offset", ...
std::optional<ExtFn> LookupExtMethod(std::string_view name);
// Either kind, as named in an `__extn` JSON escape.
std::optional<ExtFn> LookupExtAny(std::string_view name);
std::string_view ExtFnName(ExtFn fn);
// The number of arguments including the receiver.
int ExtFnArity(ExtFn fn);

// Applies `fn` to `args` (receiver first for methods). Type mismatches and invalid literals are
// errors, as in Cedar.
[[nodiscard]] Result<Value> CallExt(ExtFn fn, std::span<const Value> args);

}  // namespace custody::policy
