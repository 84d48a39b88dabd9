#include "policy/value.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "policy/extensions.h"

namespace custody::policy {

std::string EscapeCedarString(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[16];
          std::snprintf(buf, sizeof buf, "\\u{%x}", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string EntityUid::ToString() const { return type + "::\"" + EscapeCedarString(id) + "\""; }

size_t EntityUidHash::operator()(const EntityUid& uid) const {
  size_t h = std::hash<std::string>()(uid.type);
  return h ^ (std::hash<std::string>()(uid.id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.scalar_ = b ? 1 : 0;
  return v;
}
Value Value::Long(int64_t x) {
  Value v;
  v.kind_ = Kind::kLong;
  v.scalar_ = x;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.ptr_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::Entity(EntityUid uid) {
  Value v;
  v.kind_ = Kind::kEntity;
  v.ptr_ = std::make_shared<const EntityUid>(std::move(uid));
  return v;
}
Value Value::Set(std::vector<Value> elems) {
  std::sort(elems.begin(), elems.end(),
            [](const Value& a, const Value& b) { return Compare(a, b) < 0; });
  elems.erase(std::unique(elems.begin(), elems.end(),
                          [](const Value& a, const Value& b) { return Compare(a, b) == 0; }),
              elems.end());
  Value v;
  v.kind_ = Kind::kSet;
  v.ptr_ = std::make_shared<const ValueSet>(std::move(elems));
  return v;
}
Value Value::MakeRecord(Record rec) {
  Value v;
  v.kind_ = Kind::kRecord;
  v.ptr_ = std::make_shared<const Record>(std::move(rec));
  return v;
}
Value Value::FromDecimal(Decimal d) {
  Value v;
  v.kind_ = Kind::kDecimal;
  v.scalar_ = d.scaled;
  return v;
}
Value Value::FromIp(IpAddr ip) {
  Value v;
  v.kind_ = Kind::kIp;
  v.ptr_ = std::make_shared<const IpAddr>(ip);
  return v;
}
Value Value::FromDatetime(Datetime d) {
  Value v;
  v.kind_ = Kind::kDatetime;
  v.scalar_ = d.ms;
  return v;
}
Value Value::FromDuration(Duration d) {
  Value v;
  v.kind_ = Kind::kDuration;
  v.scalar_ = d.ms;
  return v;
}

namespace {
template <typename T>
int Cmp(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}
}  // namespace

int Value::Compare(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return Cmp(a.kind_, b.kind_);
  switch (a.kind_) {
    case Kind::kBool:
    case Kind::kLong:
    case Kind::kDecimal:
    case Kind::kDatetime:
    case Kind::kDuration:
      return Cmp(a.scalar_, b.scalar_);
    case Kind::kString:
      return a.as_string().compare(b.as_string()) < 0 ? -1
                                                      : (a.as_string() == b.as_string() ? 0 : 1);
    case Kind::kEntity: {
      auto c = a.as_entity() <=> b.as_entity();
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case Kind::kSet: {
      if (a.ptr_ == b.ptr_) return 0;
      const ValueSet& x = a.as_set();
      const ValueSet& y = b.as_set();
      if (x.size() != y.size()) return Cmp(x.size(), y.size());
      for (size_t i = 0; i < x.size(); ++i) {
        int c = Compare(x[i], y[i]);
        if (c != 0) return c;
      }
      return 0;
    }
    case Kind::kRecord: {
      if (a.ptr_ == b.ptr_) return 0;
      const Record& x = a.as_record();
      const Record& y = b.as_record();
      if (x.size() != y.size()) return Cmp(x.size(), y.size());
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
        int c = i->first.compare(j->first);
        if (c != 0) return c < 0 ? -1 : 1;
        c = Compare(i->second, j->second);
        if (c != 0) return c;
      }
      return 0;
    }
    case Kind::kIp: {
      const IpAddr& x = a.as_ip();
      const IpAddr& y = b.as_ip();
      if (x.v6 != y.v6) return Cmp(x.v6, y.v6);
      if (x.bytes != y.bytes) return Cmp(x.bytes, y.bytes);
      return Cmp(x.prefix, y.prefix);
    }
  }
  return 0;
}

std::string_view Value::KindName(Kind k) {
  switch (k) {
    case Kind::kBool:
      return "Bool";
    case Kind::kLong:
      return "Long";
    case Kind::kString:
      return "String";
    case Kind::kEntity:
      return "Entity";
    case Kind::kSet:
      return "Set";
    case Kind::kRecord:
      return "Record";
    case Kind::kDecimal:
      return "decimal";
    case Kind::kIp:
      return "ipaddr";
    case Kind::kDatetime:
      return "datetime";
    case Kind::kDuration:
      return "duration";
  }
  return "?";
}

std::string Value::ToString() const {
  switch (kind_) {
    case Kind::kBool:
      return as_bool() ? "true" : "false";
    case Kind::kLong:
      return std::to_string(scalar_);
    case Kind::kString:
      return "\"" + EscapeCedarString(as_string()) + "\"";
    case Kind::kEntity:
      return as_entity().ToString();
    case Kind::kSet: {
      std::string out = "[";
      bool first = true;
      for (const Value& v : as_set()) {
        if (!first) out += ", ";
        first = false;
        out += v.ToString();
      }
      return out + "]";
    }
    case Kind::kRecord: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : as_record()) {
        if (!first) out += ", ";
        first = false;
        out += "\"" + EscapeCedarString(k) + "\": " + v.ToString();
      }
      return out + "}";
    }
    case Kind::kDecimal:
      return "decimal(\"" + FormatDecimal(as_decimal()) + "\")";
    case Kind::kIp:
      return "ip(\"" + FormatIp(as_ip()) + "\")";
    case Kind::kDatetime:
      return "datetime(" + std::to_string(scalar_) + "ms)";
    case Kind::kDuration:
      return "duration(\"" + std::to_string(scalar_) + "ms\")";
  }
  return "?";
}

}  // namespace custody::policy
