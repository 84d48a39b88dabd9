// Cedar runtime values: booleans, longs, strings, entity references, sets, records and the
// extension types (decimal, ipaddr, datetime, duration).
//
// Values are immutable once built. Sets and records share their storage through shared_ptr, so
// copying a Value is cheap; a Value may be read from many threads at once.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace custody::policy {

// An entity reference `Type::"id"`. `type` is the fully qualified type name (`A::B::User`).
struct EntityUid {
  std::string type;
  std::string id;

  friend bool operator==(const EntityUid&, const EntityUid&) = default;
  friend std::strong_ordering operator<=>(const EntityUid&, const EntityUid&) = default;
  // `Type::"id"` with the id escaped as in policy text.
  std::string ToString() const;
};

// An entity uid with its hash computed once, for repeated lookups in the containers below.
struct UidRef {
  const EntityUid* uid = nullptr;
  size_t hash = 0;
};

// Transparent hash and equality: containers keyed by EntityUid accept a UidRef as lookup key,
// which skips rehashing the strings.
struct EntityUidHash {
  using is_transparent = void;
  size_t operator()(const EntityUid& uid) const;
  size_t operator()(const UidRef& ref) const { return ref.hash; }
};
struct EntityUidEq {
  using is_transparent = void;
  bool operator()(const EntityUid& a, const EntityUid& b) const { return a == b; }
  bool operator()(const UidRef& a, const EntityUid& b) const { return *a.uid == b; }
  bool operator()(const EntityUid& a, const UidRef& b) const { return a == *b.uid; }
};
inline UidRef MakeUidRef(const EntityUid& uid) { return UidRef{&uid, EntityUidHash()(uid)}; }

// Fixed-point decimal with four fractional digits: the value is `scaled / 10^4`.
struct Decimal {
  int64_t scaled = 0;
  friend bool operator==(const Decimal&, const Decimal&) = default;
};

// An IPv4 or IPv6 address with a prefix length (a single address has the full prefix).
struct IpAddr {
  bool v6 = false;
  // Big-endian address bytes; IPv4 uses the last four.
  std::array<uint8_t, 16> bytes{};
  uint8_t prefix = 32;
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

// Milliseconds since the Unix epoch, UTC.
struct Datetime {
  int64_t ms = 0;
  friend bool operator==(const Datetime&, const Datetime&) = default;
};

// A signed span of milliseconds.
struct Duration {
  int64_t ms = 0;
  friend bool operator==(const Duration&, const Duration&) = default;
};

class Value;
// Sets are kept sorted by Value::Compare with no duplicates, so equality is element-wise.
using ValueSet = std::vector<Value>;
using Record = std::map<std::string, Value, std::less<>>;

class Value {
 public:
  enum class Kind : uint8_t {
    kBool,
    kLong,
    kString,
    kEntity,
    kSet,
    kRecord,
    kDecimal,
    kIp,
    kDatetime,
    kDuration
  };

  Value() = default;  // false
  static Value Bool(bool b);
  static Value Long(int64_t v);
  static Value String(std::string s);
  static Value Entity(EntityUid uid);
  // Sorts and deduplicates `elems`.
  static Value Set(std::vector<Value> elems);
  static Value MakeRecord(Record rec);
  static Value FromDecimal(Decimal d);
  static Value FromIp(IpAddr ip);
  static Value FromDatetime(Datetime d);
  static Value FromDuration(Duration d);

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }

  bool as_bool() const { return scalar_ != 0; }
  int64_t as_long() const { return scalar_; }
  const std::string& as_string() const { return *static_cast<const std::string*>(ptr_.get()); }
  const EntityUid& as_entity() const { return *static_cast<const EntityUid*>(ptr_.get()); }
  const ValueSet& as_set() const { return *static_cast<const ValueSet*>(ptr_.get()); }
  const Record& as_record() const { return *static_cast<const Record*>(ptr_.get()); }
  Decimal as_decimal() const { return Decimal{scalar_}; }
  const IpAddr& as_ip() const { return *static_cast<const IpAddr*>(ptr_.get()); }
  Datetime as_datetime() const { return Datetime{scalar_}; }
  Duration as_duration() const { return Duration{scalar_}; }

  // Total order used to canonicalise sets: first by kind, then by content.
  static int Compare(const Value& a, const Value& b);
  friend bool operator==(const Value& a, const Value& b) { return Compare(a, b) == 0; }

  // Cedar-like rendering for messages and tests.
  std::string ToString() const;

  // The name of this value's type as Cedar reports it ("Long", "String", "decimal", ...).
  static std::string_view KindName(Kind k);

 private:
  Kind kind_ = Kind::kBool;
  int64_t scalar_ = 0;
  // Owns the payload of strings, entities, sets, records and ip values (type given by kind_).
  std::shared_ptr<const void> ptr_;
};

// Escapes a string the way Cedar policy text writes it (without the quotes).
std::string EscapeCedarString(std::string_view s);

}  // namespace custody::policy
