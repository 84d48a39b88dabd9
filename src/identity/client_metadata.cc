#include "identity/client_metadata.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cstdint>
#include <future>
#include <list>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/json_parse.h"
#include "common/mutex.h"
#include "http/client.h"

namespace custody::identity {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr size_t kMaxClientIdBytes = 2048;

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool InPrefix4(uint32_t a, uint32_t net, int bits) {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (a & mask) == (net & mask);
}

AddressClass Classify4(uint32_t a) {
  auto in = [a](uint8_t b0, uint8_t b1, uint8_t b2, int bits) {
    return InPrefix4(a, (uint32_t{b0} << 24) | (uint32_t{b1} << 16) | (uint32_t{b2} << 8), bits);
  };
  if (in(127, 0, 0, 8)) return AddressClass::kLoopback;
  if (in(10, 0, 0, 8) || in(172, 16, 0, 12) || in(192, 168, 0, 16) || in(100, 64, 0, 10)) {
    return AddressClass::kPrivate;
  }
  if (in(169, 254, 0, 16)) return AddressClass::kLinkLocal;
  if (in(0, 0, 0, 8) ||     // "this network"
      in(192, 0, 0, 24) ||  // IETF protocol assignments
      in(192, 0, 2, 24) || in(198, 51, 100, 24) || in(203, 0, 113, 24) ||      // documentation
      in(192, 31, 196, 24) || in(192, 52, 193, 24) || in(192, 175, 48, 24) ||  // AS112, AMT
      in(192, 88, 99, 24) ||                                                   // 6to4 relay anycast
      in(198, 18, 0, 15) ||                                                    // benchmarking
      in(224, 0, 0, 4) ||                                                      // multicast
      in(240, 0, 0, 4)) {  // reserved, broadcast
    return AddressClass::kSpecial;
  }
  return AddressClass::kPublic;
}

bool InPrefix6(const std::array<unsigned char, 16>& a, std::initializer_list<unsigned char> net,
               int bits) {
  std::array<unsigned char, 16> n{};
  size_t i = 0;
  for (unsigned char b : net) n[i++] = b;
  for (int bit = 0; bit < bits; ++bit) {
    int byte = bit / 8, shift = 7 - bit % 8;
    if (((a[byte] >> shift) & 1) != ((n[byte] >> shift) & 1)) return false;
  }
  return true;
}

AddressClass Classify6(const asio::ip::address_v6& v6) {
  auto a = v6.to_bytes();
  if (v6.is_v4_mapped()) {
    return Classify4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint());
  }
  if (InPrefix6(a, {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) {  // NAT64
    return Classify4((uint32_t{a[12]} << 24) | (uint32_t{a[13]} << 16) | (uint32_t{a[14]} << 8) |
                     a[15]);
  }
  if (v6.is_loopback()) return AddressClass::kLoopback;
  if (InPrefix6(a, {0xfc}, 7)) return AddressClass::kPrivate;
  if (InPrefix6(a, {0xfe, 0x80}, 10)) return AddressClass::kLinkLocal;
  // Only 2000::/3 is global unicast; inside it, the special-purpose blocks.
  if (!InPrefix6(a, {0x20}, 3) ||                    // ::, ::/96, 100::/64, ff00::/8, fec0::, ...
      InPrefix6(a, {0x20, 0x01, 0x00, 0x00}, 23) ||  // IETF protocol assignments, Teredo
      InPrefix6(a, {0x20, 0x01, 0x0d, 0xb8}, 32) ||  // documentation
      InPrefix6(a, {0x20, 0x02}, 16) ||              // 6to4 (may carry any IPv4 address)
      InPrefix6(a, {0x3f, 0xff}, 20) ||              // documentation (RFC 9637)
      InPrefix6(a, {0x5f, 0x00}, 16)) {              // SRv6 SIDs
    return AddressClass::kSpecial;
  }
  return AddressClass::kPublic;
}

bool IsLoopbackHostName(std::string_view host) { return LowerCopy(host) == "localhost"; }

// A client_id that passed the draft's rules, taken apart for the fetch.
struct ClientIdUrl {
  bool https = true;
  std::string host;  // a name, or an IP literal without brackets
  bool host_is_ip = false;
  uint16_t port = 443;
  std::string target;  // path and query, exactly as in the URL
};

// Hosts that allow_loopback_http lets through over http.
bool IsLoopbackHost(const ClientIdUrl& u) {
  if (!u.host_is_ip) return IsLoopbackHostName(u.host);
  auto c = ClassifyAddress(u.host);
  return c.ok() && *c == AddressClass::kLoopback;
}

bool IsDnsName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<ClientIdUrl> ParseClientIdUrl(std::string_view client_id, bool allow_loopback_http) {
  if (client_id.size() > kMaxClientIdBytes) {
    return InvalidArgumentError("client_id is longer than " + std::to_string(kMaxClientIdBytes) +
                                " bytes");
  }
  ClientIdUrl out;
  if (client_id.starts_with("https://")) {
    out.https = true;
  } else if (client_id.starts_with("http://")) {
    out.https = false;
  } else {
    return InvalidArgumentError("client_id must be an https URL");
  }
  for (unsigned char c : client_id) {
    if (c <= 0x20 || c >= 0x7F) {
      return InvalidArgumentError("client_id must not contain spaces or control characters");
    }
  }
  auto parsed = urls::parse_uri(client_id);
  if (!parsed) return InvalidArgumentError("client_id is not a valid URL");
  const urls::url_view& u = *parsed;
  if (u.has_userinfo()) return InvalidArgumentError("client_id must not contain a userinfo");
  if (u.has_fragment()) return InvalidArgumentError("client_id must not contain a fragment");
  switch (u.host_type()) {
    case urls::host_type::name: {
      std::string_view host = u.encoded_host();
      if (!IsDnsName(host)) return InvalidArgumentError("client_id has an invalid host name");
      out.host = std::string(host);
      break;
    }
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      out.host = std::string(u.encoded_host_address());
      out.host_is_ip = true;
      break;
    default:
      return InvalidArgumentError("client_id must name a host");
  }
  if (u.has_port()) {
    std::string_view port = u.port();
    uint32_t number = 0;
    for (char c : port) number = number * 10 + static_cast<uint32_t>(c - '0');  // digits only
    if (port.empty() || port.size() > 5 || number == 0 || number > 65535) {
      return InvalidArgumentError("client_id has an invalid port");
    }
    out.port = static_cast<uint16_t>(number);
  } else {
    out.port = out.https ? 443 : 80;
  }
  std::string_view path = u.encoded_path();
  if (path.empty()) return InvalidArgumentError("client_id must contain a path");
  // Dot segments, also percent-encoded ones, which a server could normalize away.
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string segment = LowerCopy(path.substr(start, end - start));
    if (segment == "." || segment == ".." || segment == "%2e" || segment == "%2e%2e" ||
        segment == ".%2e" || segment == "%2e.") {
      return InvalidArgumentError("client_id must not contain . or .. path segments");
    }
    start = end + 1;
  }
  out.target = std::string(path);
  if (u.has_query()) out.target += "?" + std::string(u.encoded_query());
  if (!out.https && !(allow_loopback_http && IsLoopbackHost(out))) {
    return InvalidArgumentError("client_id must be an https URL");
  }
  return out;
}

// http on a loopback host, as RFC 8252 section 7.3 allows native apps.
bool IsLoopbackHttpUri(const urls::url_view& u) {
  if (u.host_type() == urls::host_type::name) return IsLoopbackHostName(u.encoded_host());
  if (u.host_type() != urls::host_type::ipv4 && u.host_type() != urls::host_type::ipv6) {
    return false;
  }
  auto c = ClassifyAddress(std::string(u.encoded_host_address()));
  return c.ok() && *c == AddressClass::kLoopback;
}

// An absolute URI without userinfo or fragment; its scheme lower-case.
Result<urls::url_view> ParseAbsoluteUri(std::string_view s, std::string_view what) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7F) {
      return InvalidArgumentError(std::string(what) + " must not contain spaces or controls");
    }
  }
  auto parsed = urls::parse_uri(s);
  if (!parsed) return InvalidArgumentError(std::string(what) + " is not an absolute URI");
  if (parsed->has_fragment()) {
    return InvalidArgumentError(std::string(what) + " must not contain a fragment");
  }
  if (parsed->has_userinfo()) {
    return InvalidArgumentError(std::string(what) + " must not contain a userinfo");
  }
  for (char c : parsed->scheme()) {
    if (c >= 'A' && c <= 'Z') {
      return InvalidArgumentError(std::string(what) + " must have a lower-case scheme");
    }
  }
  return *parsed;
}

// A web URL the document points at (client_uri, logo_uri, jwks_uri): https with a host, or http
// on loopback in development.
Status CheckWebUrl(std::string_view s, std::string_view what, bool allow_loopback_http) {
  auto u = ParseAbsoluteUri(s, what);
  if (!u.ok()) return u.status();
  bool has_host = u->host_type() != urls::host_type::none && !u->encoded_host().empty();
  if (u->scheme() == "https" && has_host) return OkStatus();
  if (u->scheme() == "http" && allow_loopback_http && IsLoopbackHttpUri(*u)) return OkStatus();
  return InvalidArgumentError(std::string(what) + " must be an https URL");
}

// A redirect URI: https with a host; http on a loopback host (RFC 8252 7.3); or a private-use
// scheme in reverse domain-name form, e.g. com.example.app:/callback (RFC 8252 7.1), which
// also rules out javascript:, data:, file: and the like.
Status CheckRedirectUri(std::string_view s, std::string_view what) {
  auto u = ParseAbsoluteUri(s, what);
  if (!u.ok()) return u.status();
  std::string_view scheme = u->scheme();
  bool has_host = u->host_type() != urls::host_type::none && !u->encoded_host().empty();
  if (scheme == "https") {
    if (has_host) return OkStatus();
    return InvalidArgumentError(std::string(what) + " must name a host");
  }
  if (scheme == "http") {
    if (has_host && IsLoopbackHttpUri(*u)) return OkStatus();
    return InvalidArgumentError(std::string(what) +
                                " uses http, which is allowed only for a loopback host");
  }
  if (scheme.find('.') == std::string_view::npos) {
    return InvalidArgumentError(std::string(what) +
                                " must use https, http on loopback, or a private-use scheme in "
                                "reverse domain name form");
  }
  return OkStatus();
}

// The optional string member `name`: "" when absent, an error when not a string.
Result<std::string> OptionalString(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return std::string();
  const json::string* s = v->if_string();
  if (s == nullptr) return InvalidArgumentError(std::string(name) + " must be a string");
  return std::string(s->data(), s->size());
}

// The optional array of strings `name`: `fallback` when absent.
Result<std::vector<std::string>> OptionalStrings(const json::object& o, std::string_view name,
                                                 std::vector<std::string> fallback) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return fallback;
  const json::array* a = v->if_array();
  if (a == nullptr) return InvalidArgumentError(std::string(name) + " must be an array");
  std::vector<std::string> out;
  for (const json::value& e : *a) {
    const json::string* s = e.if_string();
    if (s == nullptr) return InvalidArgumentError(std::string(name) + " must hold strings");
    out.emplace_back(s->data(), s->size());
  }
  return out;
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string type = LowerCopy(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  return type == "application/json" ||
         (type.starts_with("application/") && type.ends_with("+json"));
}

// RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); nullopt for anything else.
std::optional<TimePoint> ParseHttpDate(std::string_view s) {
  std::string text(s);
  struct tm tm = {};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

struct CacheDirectives {
  bool no_store = false;  // no-store or no-cache (Custody does not revalidate)
  std::optional<int64_t> max_age;
};

CacheDirectives ParseCacheControl(const http::Headers& headers) {
  CacheDirectives d;
  for (const auto& [name, value] : headers.entries()) {
    if (name != "cache-control") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      size_t eq = item.find('=');
      std::string key = LowerCopy(item.substr(0, eq));
      std::string_view arg = eq == std::string_view::npos ? "" : item.substr(eq + 1);
      if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
        arg = arg.substr(1, arg.size() - 2);
      }
      if (key == "no-store" || key == "no-cache") {
        d.no_store = true;
      } else if (key == "max-age") {
        // RFC 9111 5.2.2.1: digits; an invalid value makes the response stale.
        int64_t seconds = 0;
        bool valid = !arg.empty() && arg.size() <= 10;
        for (char c : arg) valid = valid && c >= '0' && c <= '9';
        if (valid) {
          for (char c : arg) seconds = seconds * 10 + (c - '0');
        }
        int64_t value = valid ? seconds : 0;
        d.max_age = d.max_age ? std::min(*d.max_age, value) : value;
      }
    }
  }
  return d;
}

}  // namespace

Result<AddressClass> ClassifyAddress(std::string_view ip) {
  error_code ec;
  asio::ip::address a = asio::ip::make_address(ip, ec);
  if (ec) return InvalidArgumentError("not an IP address");
  if (a.is_v4()) return Classify4(a.to_v4().to_uint());
  return Classify6(a.to_v6());
}

std::string_view AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kSpecial:
      return "special-use";
  }
  return "special-use";
}

bool IsClientIdUrl(std::string_view client_id) {
  return client_id.starts_with("https://") || client_id.starts_with("http://");
}

Status ValidateClientIdUrl(std::string_view client_id, bool allow_loopback_http) {
  return ParseClientIdUrl(client_id, allow_loopback_http).status();
}

Result<ClientMetadata> ParseClientMetadataDocument(std::string_view client_id,
                                                   std::string_view body,
                                                   bool allow_loopback_http) {
  error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec) return InvalidArgumentError("the client metadata document is not valid JSON");
  const json::object* o = v.if_object();
  if (o == nullptr) return InvalidArgumentError("the client metadata document is not an object");
  auto invalid = [](const Status& s) {
    return InvalidArgumentError("the client metadata document's " + s.message());
  };

  ClientMetadata m;
  const json::value* id = o->if_contains("client_id");
  if (id == nullptr || !id->is_string()) {
    return InvalidArgumentError("the client metadata document has no client_id");
  }
  if (std::string_view(id->get_string()) != client_id) {
    return InvalidArgumentError(
        "the client metadata document's client_id does not match the URL it was fetched from");
  }
  m.client_id = std::string(client_id);

  if (o->contains("client_secret") || o->contains("client_secret_expires_at")) {
    return InvalidArgumentError(
        "the client metadata document must not contain a client secret (no shared secrets)");
  }
  auto method = OptionalString(*o, "token_endpoint_auth_method");
  if (!method.ok()) return invalid(method.status());
  m.token_endpoint_auth_method = method->empty() ? "none" : *method;
  if (m.token_endpoint_auth_method != "none" && m.token_endpoint_auth_method != "private_key_jwt") {
    return InvalidArgumentError(
        "the client metadata document's token_endpoint_auth_method must be none or "
        "private_key_jwt (shared secrets cannot be used)");
  }

  // Keys: public ones only, and one source of them.
  if (const json::value* jwks = o->if_contains("jwks")) {
    const json::object* set = jwks->if_object();
    const json::value* keys = set ? set->if_contains("keys") : nullptr;
    if (keys == nullptr || !keys->is_array()) {
      return InvalidArgumentError("the client metadata document's jwks must be a JWK set");
    }
    for (const json::value& k : keys->get_array()) {
      const json::object* key = k.if_object();
      if (key == nullptr) {
        return InvalidArgumentError("the client metadata document's jwks must hold objects");
      }
      for (std::string_view secret : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
        if (key->contains(secret)) {
          return InvalidArgumentError(
              "the client metadata document's jwks must hold public keys only");
        }
      }
    }
    m.jwks = json::serialize(*jwks);
  }
  auto jwks_uri = OptionalString(*o, "jwks_uri");
  if (!jwks_uri.ok()) return invalid(jwks_uri.status());
  if (!jwks_uri->empty()) {
    Status st = CheckWebUrl(*jwks_uri, "jwks_uri", allow_loopback_http);
    if (!st.ok()) return invalid(st);
    m.jwks_uri = *jwks_uri;
  }
  if (!m.jwks.empty() && !m.jwks_uri.empty()) {
    return InvalidArgumentError(
        "the client metadata document must not contain both jwks and jwks_uri");
  }
  if (m.token_endpoint_auth_method == "private_key_jwt" && m.jwks.empty() && m.jwks_uri.empty()) {
    return InvalidArgumentError(
        "the client metadata document uses private_key_jwt but has neither jwks nor jwks_uri");
  }

  const json::value* redirects = o->if_contains("redirect_uris");
  if (redirects == nullptr) {
    return InvalidArgumentError("the client metadata document has no redirect_uris");
  }
  if (!redirects->is_array() || redirects->get_array().empty()) {
    return InvalidArgumentError(
        "the client metadata document's redirect_uris must be a non-empty array");
  }
  for (size_t i = 0; i < redirects->get_array().size(); ++i) {
    const json::string* s = redirects->get_array()[i].if_string();
    std::string what = "redirect_uris[" + std::to_string(i) + "]";
    if (s == nullptr) return InvalidArgumentError(what + " must be a string");
    Status st = CheckRedirectUri(std::string_view(*s), what);
    if (!st.ok()) return invalid(st);
    m.redirect_uris.emplace_back(s->data(), s->size());
  }

  using Field = std::pair<std::string*, std::string_view>;
  for (auto [field, name] : std::initializer_list<Field>{{&m.client_name, "client_name"},
                                                         {&m.scope, "scope"},
                                                         {&m.client_uri, "client_uri"},
                                                         {&m.logo_uri, "logo_uri"}}) {
    auto s = OptionalString(*o, name);
    if (!s.ok()) return invalid(s.status());
    *field = std::move(*s);
  }
  for (auto [value, name] :
       std::initializer_list<Field>{{&m.client_uri, "client_uri"}, {&m.logo_uri, "logo_uri"}}) {
    if (value->empty()) continue;
    Status st = CheckWebUrl(*value, name, allow_loopback_http);
    if (!st.ok()) return invalid(st);
  }
  auto grants = OptionalStrings(*o, "grant_types", {"authorization_code"});
  if (!grants.ok()) return invalid(grants.status());
  m.grant_types = std::move(*grants);
  auto responses = OptionalStrings(*o, "response_types", {"code"});
  if (!responses.ok()) return invalid(responses.status());
  m.response_types = std::move(*responses);
  return m;
}

Result<std::string> CheckLogoImage(std::string_view content_type, std::string_view bytes) {
  std::string type = LowerCopy(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  // The formats' signatures: PNG's 8 bytes, JPEG's SOI and a marker, GIF87a/GIF89a, and WebP's
  // RIFF container naming WEBP.
  bool matches = false;
  if (type == "image/png") {
    matches = bytes.starts_with(std::string_view("\x89PNG\r\n\x1a\n", 8));
  } else if (type == "image/jpeg") {
    matches = bytes.starts_with("\xff\xd8\xff");
  } else if (type == "image/gif") {
    matches = bytes.starts_with("GIF87a") || bytes.starts_with("GIF89a");
  } else if (type == "image/webp") {
    matches = bytes.size() >= 12 && bytes.starts_with("RIFF") && bytes.substr(8, 4) == "WEBP";
  } else {
    return InvalidArgumentError(
        "the logo is not served as image/png, image/jpeg, image/gif or "
        "image/webp");
  }
  if (!matches) return InvalidArgumentError("the logo's bytes are not the " + type + " it claims");
  return type;
}

std::chrono::seconds CacheLifetime(const http::Headers& headers, TimePoint now,
                                   const ClientMetadataOptions& options) {
  using std::chrono::seconds;
  CacheDirectives d = ParseCacheControl(headers);
  if (d.no_store) return seconds(0);
  int64_t lifetime = options.default_cache_lifetime.count();
  if (d.max_age) {
    lifetime = *d.max_age;
  } else if (auto expires = headers.Get("expires")) {
    // Expires counts from the response's Date (RFC 9111 4.2.1), else from now; an invalid
    // date means already expired.
    std::optional<TimePoint> at = ParseHttpDate(*expires);
    std::optional<TimePoint> date;
    if (auto d_header = headers.Get("date")) date = ParseHttpDate(*d_header);
    lifetime = at ? std::chrono::duration_cast<seconds>(*at - date.value_or(now)).count() : 0;
  }
  if (lifetime <= 0) return seconds(0);
  lifetime = std::max<int64_t>(lifetime, options.min_cache_lifetime.count());
  lifetime = std::min<int64_t>(lifetime, options.max_cache_lifetime.count());
  return seconds(lifetime);
}

namespace {

// What a lookup thread needs of the fetcher, kept alive by the thread itself.
struct LookupGate {
  Mutex mu;
  asio::io_context* ioc GUARDED_BY(mu) = nullptr;
  bool alive GUARDED_BY(mu) = true;   // the io_context may still be posted to
  size_t lookups GUARDED_BY(mu) = 0;  // threads running
};

// A lookup's answer, delivered on the fetcher's thread.
struct Lookup {
  explicit Lookup(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;  // the deadline; cancelled when the answer comes
  std::optional<Result<std::vector<std::string>>> result;
};

// The system resolver (getaddrinfo), blocking; each address once.
Result<std::vector<std::string>> SystemResolve(const std::string& host) {
  asio::io_context io;
  tcp::resolver resolver(io);
  error_code ec;
  auto results = resolver.resolve(host, "443", ec);
  if (ec) return UnavailableError(ec.message());
  std::vector<std::string> out;
  for (const auto& r : results) {
    std::string a = r.endpoint().address().to_string();
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

struct ClientMetadataFetcher::Impl {
  explicit Impl(ClientMetadataOptions o)
      : options(std::move(o)),
        work(asio::make_work_guard(ioc)),
        gate(std::make_shared<LookupGate>()) {
    MutexLock lock(gate->mu);
    gate->ioc = &ioc;
  }

  ClientMetadataOptions options;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::shared_ptr<LookupGate> gate;

  struct Entry {
    ClientMetadata metadata;
    std::list<std::string>::iterator position;  // in lru
  };
  Mutex mu;
  std::list<std::string> lru GUARDED_BY(mu);  // client_ids, most recently used first
  std::unordered_map<std::string, Entry> cache GUARDED_BY(mu);
  // Fetches in progress, with everyone waiting for each.
  std::unordered_map<std::string, std::vector<Callback>> pending GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;

  void Log(std::string_view client_id, std::string_view why, std::string_view detail,
           std::string_view what = "client metadata document refused",
           std::string_view key = "client_id") {
    if (options.logger == nullptr || !options.logger->Enabled(LogLevel::kInfo)) return;
    // The client_id (or logo URL) is the client's text: at most 256 bytes of it.
    options.logger->Log(LogLevel::kInfo, what,
                        {{key, client_id.substr(0, 256)}, {"reason", why}, {"detail", detail}});
  }

  Status Fail(std::string_view client_id, Status status, std::string_view detail = {}) {
    Log(client_id, status.message(), detail);
    return status;
  }

  Status FailLogo(std::string_view logo_uri, Status status, std::string_view detail = {}) {
    Log(logo_uri, status.message(), detail, "client logo not shown", "logo_uri");
    return status;
  }

  // The logo behind `u`: the document's address rules, then the logo's own (size, type).
  asio::awaitable<Result<ClientLogo>> FetchLogoOnce(const std::string& logo_uri,
                                                    const ClientIdUrl& u) {
    static constexpr FetchOf kLogo{"the logo's host", "the logo", "logos",
                                   "image/png, image/jpeg, image/gif, image/webp"};
    std::string detail;
    auto resp = co_await Get(u, kLogo, options.max_logo_bytes, &detail);
    if (!resp.ok()) co_return FailLogo(logo_uri, resp.status(), detail);
    if (resp->status != 200) {
      co_return FailLogo(logo_uri, InvalidArgumentError("the logo URL answered HTTP " +
                                                        std::to_string(resp->status) +
                                                        " (redirects are not followed)"));
    }
    auto type = CheckLogoImage(resp->headers.Get("content-type").value_or(""), resp->body);
    if (!type.ok()) co_return FailLogo(logo_uri, type.status());
    co_return ClientLogo{std::move(*type), std::move(resp->body)};
  }

  // Resolves `u.host`, bounded by `deadline`. Each lookup runs on a thread of its own:
  // getaddrinfo cannot be interrupted, and Asio's resolver runs every lookup on one thread, so a
  // host whose DNS is slow would otherwise hold the fetch past its deadline and every other
  // fetch's lookup behind it. A lookup that outlives its deadline finishes on its own and is
  // dropped; at most max_concurrent_fetches of them run at once.
  asio::awaitable<Result<std::vector<std::string>>> Resolve(
      const ClientIdUrl& u, std::chrono::steady_clock::time_point deadline) {
    if (u.host_is_ip) co_return std::vector<std::string>{u.host};
    {
      MutexLock lock(gate->mu);
      if (gate->lookups >= options.max_concurrent_fetches) {
        co_return FailedPreconditionError("too many host name lookups in progress");
      }
      ++gate->lookups;
    }
    auto waiting = std::make_shared<Lookup>(ioc);
    waiting->timer.expires_at(deadline);
    auto lookup = [gate = gate, resolve = options.resolve, host = u.host,
                   weak = std::weak_ptr<Lookup>(waiting)] {
      Result<std::vector<std::string>> r = resolve ? resolve(host) : SystemResolve(host);
      MutexLock lock(gate->mu);
      --gate->lookups;
      // The io_context exists while `alive` (the fetcher clears it, under this lock, first).
      if (!gate->alive) return;
      asio::post(*gate->ioc, [weak, r = std::move(r)]() mutable {
        if (auto w = weak.lock()) {
          w->result.emplace(std::move(r));
          w->timer.cancel();
        }
      });
    };
    try {
      std::thread(std::move(lookup)).detach();
    } catch (const std::system_error&) {  // no thread to be had: this fetch fails, nothing else
      MutexLock lock(gate->mu);
      --gate->lookups;
      co_return UnavailableError("cannot start a host name lookup");
    }
    co_await waiting->timer.async_wait(kTuple);
    if (!waiting->result) co_return UnavailableError("timed out");
    co_return std::move(*waiting->result);
  }

  bool Allowed(AddressClass c, const ClientIdUrl& u) const {
    // Plain http is a development switch for loopback: never to any other address.
    if (!u.https) return c == AddressClass::kLoopback && options.allow_loopback_http;
    switch (c) {
      case AddressClass::kPublic:
        return true;
      case AddressClass::kLoopback:
        return options.allow_loopback_addresses;
      case AddressClass::kPrivate:
        return options.allow_private_addresses;
      default:
        return false;
    }
  }

  // What a GET is of, for its errors.
  struct FetchOf {
    std::string_view host;    // "the client_id host"
    std::string_view thing;   // "the client metadata document"
    std::string_view things;  // "client metadata documents"
    const char* accept;
  };

  // GET `u` under the rules every fetch of a client's URL follows: resolved within the time
  // limit, every address allowed (the connection may go to any of them), at most `max_bytes`,
  // no redirect followed (the caller sees the 3xx). A refusal is the status for the client;
  // `detail` receives what only the operator's log should say.
  asio::awaitable<Result<http::ClientResponse>> Get(const ClientIdUrl& u, const FetchOf& of,
                                                    size_t max_bytes, std::string* detail) {
    using std::chrono::steady_clock;
    auto deadline = steady_clock::now() + options.timeout;
    std::string limit_text = std::to_string(options.timeout.count()) + " ms";
    std::string host(of.host), thing(of.thing);

    auto resolved = co_await Resolve(u, deadline);
    if (!resolved.ok() && resolved.status().code() == StatusCode::kFailedPrecondition) {
      co_return UnavailableError("too many " + std::string(of.things) +
                                 " are being fetched; try again later");
    }
    if (steady_clock::now() >= deadline) {
      co_return UnavailableError(host + " could not be resolved within " + limit_text);
    }
    if (!resolved.ok() || resolved->empty()) {
      *detail = resolved.ok() ? "no addresses" : resolved.status().message();
      co_return UnavailableError(host + " could not be resolved");
    }
    for (const std::string& a : *resolved) {
      auto c = ClassifyAddress(a);
      *detail = a;
      if (!c.ok()) co_return UnavailableError(host + " is invalid");
      if (!Allowed(*c, u)) {
        co_return InvalidArgumentError(host + " resolves to a " +
                                       std::string(AddressClassName(*c)) +
                                       " address, which is not allowed");
      }
    }
    detail->clear();

    http::ClientOptions co;
    co.tls = u.https;
    co.ca_file = options.ca_file;
    co.max_response_bytes = max_bytes;
    co.connect_addresses = *resolved;
    // Rounded up, so a fetch the client gives up on is past the deadline when checked below.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now());
    co.timeout = std::max(left, std::chrono::milliseconds(1));
    http::HttpClient client(ioc.get_executor(), u.host, u.port, co);
    http::ClientRequest req;
    req.method = "GET";
    req.target = u.target;
    req.headers.Set("accept", of.accept);
    req.headers.Set("user-agent", "custody");
    auto resp = co_await client.Send(std::move(req));
    if (!resp.ok()) {
      if (http::IsResponseTooLarge(resp.status())) {
        co_return InvalidArgumentError(thing + " is larger than " + std::to_string(max_bytes) +
                                       " bytes");
      }
      *detail = resp.status().message();
      if (steady_clock::now() >= deadline) {
        co_return UnavailableError(thing + " was not fetched within " + limit_text);
      }
      co_return UnavailableError(thing + " could not be fetched (connection or TLS failure)");
    }
    co_return resp;
  }

  asio::awaitable<Result<ClientMetadata>> FetchOnce(const std::string& client_id,
                                                    const ClientIdUrl& u) {
    static constexpr FetchOf kDocument{"the client_id host", "the client metadata document",
                                       "client metadata documents", "application/json"};
    std::string detail;
    auto resp = co_await Get(u, kDocument, options.max_document_bytes, &detail);
    if (!resp.ok()) co_return Fail(client_id, resp.status(), detail);
    std::string status_text = std::to_string(resp->status);
    if (resp->status >= 300 && resp->status < 400) {
      co_return Fail(client_id,
                     InvalidArgumentError("the client_id URL answered with a redirect (HTTP " +
                                          status_text + "); redirects are not followed"));
    }
    if (resp->status != 200) {
      co_return Fail(client_id,
                     InvalidArgumentError("the client_id URL answered HTTP " + status_text +
                                          ", not 200 with the client metadata document"));
    }
    if (!IsJsonMediaType(resp->headers.Get("content-type").value_or(""))) {
      co_return Fail(client_id,
                     InvalidArgumentError("the client metadata document is not served as JSON "
                                          "(Content-Type application/json)"));
    }
    auto m = ParseClientMetadataDocument(client_id, resp->body, options.allow_loopback_http);
    if (!m.ok()) co_return Fail(client_id, m.status());
    m->fetched_at = options.clock->Now();
    m->expires_at = m->fetched_at + CacheLifetime(resp->headers, m->fetched_at, options);
    co_return m;
  }

  void Complete(const std::string& client_id, Result<ClientMetadata> result) {
    std::vector<Callback> waiters;
    {
      MutexLock lock(mu);
      auto it = pending.find(client_id);
      if (it != pending.end()) {
        waiters = std::move(it->second);
        pending.erase(it);
      }
      if (result.ok() && result->expires_at > result->fetched_at && options.max_cache_entries > 0 &&
          !stopping) {
        Insert(client_id, *result);
      }
    }
    for (auto& w : waiters) w(result);
  }

  void Insert(const std::string& client_id, const ClientMetadata& m) REQUIRES(mu) {
    auto it = cache.find(client_id);
    if (it != cache.end()) {
      lru.erase(it->second.position);
      cache.erase(it);
    }
    while (cache.size() >= options.max_cache_entries && !lru.empty()) {
      cache.erase(lru.back());
      lru.pop_back();
    }
    lru.push_front(client_id);
    cache.emplace(client_id, Entry{m, lru.begin()});
  }
};

ClientMetadataFetcher::ClientMetadataFetcher(ClientMetadataOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

ClientMetadataFetcher::~ClientMetadataFetcher() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  {
    MutexLock lock(impl_->gate->mu);
    impl_->gate->alive = false;  // lookups still running post nothing from now on
  }
  impl_->work.reset();
  impl_->ioc.stop();
  impl_->thread.join();
  std::unordered_map<std::string, std::vector<Callback>> left;
  {
    MutexLock lock(impl_->mu);
    left.swap(impl_->pending);
  }
  for (auto& [id, waiters] : left) {
    for (auto& w : waiters) w(UnavailableError("the authorization server is shutting down"));
  }
}

void ClientMetadataFetcher::FetchAsync(std::string client_id, Callback done) {
  Impl& impl = *impl_;
  auto url = ParseClientIdUrl(client_id, impl.options.allow_loopback_http);
  if (!url.ok()) {
    done(impl.Fail(client_id, url.status()));
    return;
  }
  TimePoint now = impl.options.clock->Now();
  {
    MutexLock lock(impl.mu);
    if (impl.stopping) {
      lock.Unlock();
      done(UnavailableError("the authorization server is shutting down"));
      return;
    }
    auto hit = impl.cache.find(client_id);
    if (hit != impl.cache.end()) {
      if (now < hit->second.metadata.expires_at) {
        impl.lru.splice(impl.lru.begin(), impl.lru, hit->second.position);
        ClientMetadata m = hit->second.metadata;
        lock.Unlock();
        done(std::move(m));
        return;
      }
      impl.lru.erase(hit->second.position);
      impl.cache.erase(hit);
    }
    auto waiting = impl.pending.find(client_id);
    if (waiting != impl.pending.end()) {
      waiting->second.push_back(std::move(done));
      return;
    }
    if (impl.pending.size() >= impl.options.max_concurrent_fetches) {
      lock.Unlock();
      done(impl.Fail(client_id, UnavailableError("too many client metadata documents are being "
                                                 "fetched; try again later")));
      return;
    }
    impl.pending[client_id].push_back(std::move(done));
  }
  asio::co_spawn(
      impl.ioc,
      [&impl, client_id, u = std::move(*url)]() -> asio::awaitable<void> {
        Result<ClientMetadata> r = co_await impl.FetchOnce(client_id, u);
        impl.Complete(client_id, std::move(r));
      },
      [&impl, client_id](std::exception_ptr e) {
        if (e) impl.Complete(client_id, InternalError("the client metadata fetch failed"));
      });
}

Result<ClientLogo> ClientMetadataFetcher::FetchLogo(std::string logo_uri) {
  Impl& impl = *impl_;
  auto url = ParseClientIdUrl(logo_uri, impl.options.allow_loopback_http);
  if (!url.ok()) {
    return impl.FailLogo(logo_uri,
                         InvalidArgumentError("the logo_uri is not a URL Custody fetches"),
                         url.status().message());
  }
  {
    MutexLock lock(impl.mu);
    if (impl.stopping) return UnavailableError("the authorization server is shutting down");
  }
  auto promise = std::make_shared<std::promise<Result<ClientLogo>>>();
  auto future = promise->get_future();
  asio::co_spawn(
      impl.ioc,
      [&impl, logo_uri, u = std::move(*url), promise]() -> asio::awaitable<void> {
        promise->set_value(co_await impl.FetchLogoOnce(logo_uri, u));
      },
      [promise](std::exception_ptr e) {
        if (e) promise->set_value(InternalError("the logo fetch failed"));
      });
  // The fetch ends by its deadline; a fetcher stopped meanwhile drops the coroutine, and with it
  // the promise (broken_promise below).
  try {
    return future.get();
  } catch (const std::future_error&) {
    return UnavailableError("the authorization server is shutting down");
  }
}

Result<ClientMetadata> ClientMetadataFetcher::Fetch(std::string client_id) {
  auto promise = std::make_shared<std::promise<Result<ClientMetadata>>>();
  auto future = promise->get_future();
  FetchAsync(std::move(client_id),
             [promise](Result<ClientMetadata> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace custody::identity
