#include "http/http.h"

#include <algorithm>
#include <cctype>

#include "common/jcs.h"
#include "common/utf8.h"

namespace custody::http {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a query component ('+' is a space there).
std::string DecodeQueryComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool IsParam(const std::string& seg) {
  return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}';
}
bool IsRest(const std::string& seg) {
  return IsParam(seg) && seg.size() > 5 && seg.compare(seg.size() - 4, 4, "...}") == 0;
}
std::string ParamName(const std::string& seg) {
  return IsRest(seg) ? seg.substr(1, seg.size() - 5) : seg.substr(1, seg.size() - 2);
}

}  // namespace

void Headers::Add(std::string name, std::string value) {
  entries_.emplace_back(Lower(name), std::move(value));
}

void Headers::Set(std::string name, std::string value) {
  std::string key = Lower(name);
  std::erase_if(entries_, [&](const auto& e) { return e.first == key; });
  entries_.emplace_back(std::move(key), std::move(value));
}

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  std::string key = Lower(name);
  for (const auto& e : entries_) {
    if (e.first == key) return std::string_view(e.second);
  }
  return std::nullopt;
}

std::optional<std::string> FormParam(std::string_view q, std::string_view name) {
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = DecodeQueryComponent(pair.substr(0, eq));
    if (key == name) {
      return eq == std::string_view::npos ? std::string()
                                          : DecodeQueryComponent(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  return FormParam(query, name);
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("content-type", std::move(content_type));
  return r;
}

Response Response::Json(int status, std::string body) {
  return Text(status, std::move(body), "application/json");
}

std::string FormatSseEvent(std::string_view event, std::string_view data, std::string_view id) {
  std::string out;
  if (!event.empty()) out.append("event: ").append(event).append("\n");
  if (!id.empty()) out.append("id: ").append(id).append("\n");
  // Every line of the payload becomes its own data: field, so embedded newlines survive.
  size_t i = 0;
  while (true) {
    size_t j = data.find('\n', i);
    if (j == std::string_view::npos) j = data.size();
    out.append("data: ").append(data.substr(i, j - i)).append("\n");
    if (j == data.size()) break;
    i = j + 1;
  }
  out += '\n';
  return out;
}

std::optional<std::string_view> BearerToken(const Headers& headers) {
  std::optional<std::string_view> h = headers.Get("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (!h || h->size() < kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>((*h)[i])) != kScheme[i]) return std::nullopt;
  }
  return h->substr(kScheme.size());
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
      return 500;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view HttpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string ErrorBody(const Status& status, std::string_view request_id) {
  std::string out = "{\"error\":{\"code\":\"";
  out += StatusCodeName(status.code());
  out += "\",\"message\":";
  // Messages may quote what a client sent (a path segment, a query value): the body stays JSON.
  AppendJcsString(ToValidUtf8(status.message()), out);
  out += ",\"request_id\":";
  AppendJcsString(ToValidUtf8(request_id), out);
  out += "}}";
  return out;
}

Response ErrorResponse(const Status& status, std::string_view request_id, int http_status) {
  Response r = Response::Json(http_status ? http_status : HttpStatusFor(status.code()),
                              ErrorBody(status, request_id));
  if (status.code() == StatusCode::kUnauthenticated) {
    r.headers.Set("www-authenticate", "Bearer realm=\"custody\", error=\"invalid_token\"");
  }
  return r;
}

Status Router::Add(Route route) {
  if (route.pattern.empty() || route.pattern[0] != '/') {
    return InvalidArgumentError("route pattern must start with '/': " + route.pattern);
  }
  Compiled c;
  c.segments = SplitPath(route.pattern);
  for (size_t i = 0; i < c.segments.size(); ++i) {
    const std::string& seg = c.segments[i];
    bool brace = seg.find_first_of("{}") != std::string::npos;
    if (brace && !IsParam(seg)) return InvalidArgumentError("bad route segment: " + seg);
    if (IsRest(seg) && i + 1 != c.segments.size()) {
      return InvalidArgumentError("a {name...} segment must be last: " + route.pattern);
    }
  }
  for (const Compiled& other : routes_) {
    if (other.route.method == route.method && other.route.pattern == route.pattern) {
      return AlreadyExistsError("duplicate route: " + route.method + " " + route.pattern);
    }
  }
  c.route = std::move(route);
  routes_.push_back(std::move(c));
  return OkStatus();
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match best;
  std::vector<std::string> segs = SplitPath(path);
  int best_score = -1;
  for (const Compiled& c : routes_) {
    std::map<std::string, std::string> params;
    bool ok = true;
    int score = 0;  // literal segments count more, so "/a/b" wins over "/a/{x}"
    size_t i = 0;
    for (; i < c.segments.size(); ++i) {
      const std::string& seg = c.segments[i];
      if (IsRest(seg)) {
        std::string rest;
        for (size_t k = i; k < segs.size(); ++k) {
          if (k > i) rest += '/';
          rest += segs[k];
        }
        if (i >= segs.size() || rest.empty()) ok = false;
        params[ParamName(seg)] = rest;
        i = segs.size();
        break;
      }
      if (i >= segs.size()) {
        ok = false;
        break;
      }
      if (IsParam(seg)) {
        if (segs[i].empty()) {
          ok = false;
          break;
        }
        params[ParamName(seg)] = segs[i];
      } else if (seg == segs[i]) {
        score += 2;
      } else {
        ok = false;
        break;
      }
    }
    if (!ok || i != segs.size()) continue;
    best.path_matched = true;
    if (std::find(best.allowed.begin(), best.allowed.end(), c.route.method) == best.allowed.end()) {
      best.allowed.push_back(c.route.method);
    }
    bool method_ok = c.route.method == method || (method == "HEAD" && c.route.method == "GET");
    if (method_ok && score > best_score) {
      best_score = score;
      best.route = &c.route;
      best.params = std::move(params);
    }
  }
  return best;
}

bool IsSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
           c == '-';
  });
}

}  // namespace custody::http
