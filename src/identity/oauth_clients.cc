#include "identity/oauth_clients.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "identity/client_metadata.h"

namespace custody::identity {

namespace {

bool IsLoopbackHost(std::string_view host) {
  return host == "127.0.0.1" || host == "[::1]" || host == "localhost";
}

}  // namespace

bool IsLoopbackHttpUri(std::string_view uri) {
  auto u = boost::urls::parse_absolute_uri(uri);
  if (!u) return false;
  std::string_view host = u->encoded_host();  // an IP literal keeps its brackets
  return u->scheme() == "http" && IsLoopbackHost(host);
}

Status ValidateRedirectUri(std::string_view uri) {
  if (uri.empty() || uri.size() > 2048)
    return InvalidArgumentError("redirect URI is empty or too long");
  for (char c : uri) {
    if (c <= 0x20 || c >= 0x7f) {
      return InvalidArgumentError("redirect URI has spaces or non-ASCII characters");
    }
  }
  auto u = boost::urls::parse_absolute_uri(uri);
  if (!u) return InvalidArgumentError("redirect URI is not an absolute URI");
  if (u->has_fragment()) return InvalidArgumentError("redirect URI may not have a fragment");
  std::string scheme(u->scheme());
  if (scheme == "https") {
    if (u->encoded_host().empty()) return InvalidArgumentError("https redirect URI has no host");
    return OkStatus();
  }
  if (scheme == "http") {
    if (!IsLoopbackHttpUri(uri)) {
      return InvalidArgumentError(
          "an http redirect URI must be on a loopback host (127.0.0.1, [::1], localhost)");
    }
    return OkStatus();
  }
  // RFC 8252 §7.1: a private-use scheme, in reverse domain name form.
  if (scheme.find('.') == std::string::npos) {
    return InvalidArgumentError(
        "redirect URI scheme must be https, loopback http, or a "
        "private-use scheme in reverse domain form");
  }
  return OkStatus();
}

Status ValidateClientId(std::string_view id) {
  if (id.empty() || id.size() > 256)
    return InvalidArgumentError("client_id must be 1-256 characters");
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) {
      return InvalidArgumentError("client_id must be printable ASCII without spaces");
    }
  }
  return OkStatus();
}

Result<StaticClientDirectory> StaticClientDirectory::Create(std::vector<OAuthClient> clients) {
  StaticClientDirectory d;
  for (OAuthClient& c : clients) {
    RETURN_IF_ERROR(ValidateClientId(c.client_id));
    std::string what = "oauth.clients.\"" + c.client_id + "\"";
    if (c.redirect_uris.empty() && !IsClientIdUrl(c.client_id)) {
      return InvalidArgumentError(what + ": needs redirect_uris");
    }
    for (const std::string& r : c.redirect_uris) {
      RETURN_IF_ERROR(ValidateRedirectUri(r).WithContext(what + ".redirect_uris"));
    }
    if (c.agent.empty()) return InvalidArgumentError(what + ": needs agent");
    if (c.name.empty()) c.name = c.client_id;
    c.dev = false;
    std::string id = c.client_id;
    if (!d.clients_.emplace(id, std::move(c)).second) {
      return InvalidArgumentError(what + ": registered twice");
    }
  }
  return d;
}

Result<OAuthClient> FirstFoundClientDirectory::Find(const std::string& client_id) {
  for (ClientDirectory* d : directories_) {
    auto found = d->Find(client_id);
    if (found.ok() || found.status().code() != StatusCode::kNotFound) return found;
  }
  return NotFoundError("unknown client");
}

Result<DynamicClientRegistry::Registered> DynamicClientRegistry::Register(const std::string& body,
                                                                          int64_t now,
                                                                          Error* error) {
  namespace json = boost::json;
  auto fail = [&](std::string code, std::string description) -> Status {
    *error = Error{code, description};
    return InvalidArgumentError(description);
  };
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return fail("invalid_client_metadata", "body must be a JSON object");
  const json::object& o = v.as_object();
  auto strings = [&](std::string_view k, std::vector<std::string>* out) -> bool {
    auto it = o.find(k);
    if (it == o.end()) return true;
    if (!it->value().is_array()) return false;
    for (const auto& e : it->value().as_array()) {
      if (!e.is_string()) return false;
      out->emplace_back(e.as_string());
    }
    return true;
  };
  OAuthClient c;
  if (!strings("redirect_uris", &c.redirect_uris) || c.redirect_uris.empty()) {
    return fail("invalid_redirect_uri", "redirect_uris must be a non-empty array of strings");
  }
  for (const std::string& r : c.redirect_uris) {
    if (Status s = ValidateRedirectUri(r); !s.ok()) {
      return fail("invalid_redirect_uri", s.message());
    }
  }
  if (auto it = o.find("client_name"); it != o.end()) {
    if (!it->value().is_string() || it->value().as_string().size() > 200) {
      return fail("invalid_client_metadata", "client_name must be a string of at most 200 bytes");
    }
    for (char ch : it->value().as_string()) {
      if (static_cast<unsigned char>(ch) < 0x20) {
        return fail("invalid_client_metadata", "client_name has control characters");
      }
    }
    c.name = std::string(it->value().as_string());
  }
  if (auto it = o.find("token_endpoint_auth_method");
      it != o.end() && !(it->value().is_string() && it->value().as_string() == "none")) {
    return fail("invalid_client_metadata",
                "token_endpoint_auth_method must be \"none\" (public clients only)");
  }
  std::vector<std::string> grants, responses;
  if (!strings("grant_types", &grants) || !strings("response_types", &responses)) {
    return fail("invalid_client_metadata", "grant_types and response_types must be arrays");
  }
  for (const std::string& g : grants) {
    if (g != "authorization_code" && g != "refresh_token") {
      return fail("invalid_client_metadata",
                  "grant_types may be authorization_code and "
                  "refresh_token only");
    }
  }
  for (const std::string& r : responses) {
    if (r != "code") return fail("invalid_client_metadata", "response_types may be code only");
  }
  std::vector<uint8_t> raw(32);
  random_.Fill(raw);
  c.client_id = "dcr_" + Base64UrlEncode(raw);
  if (c.name.empty()) c.name = c.client_id;
  {
    MutexLock lock(mu_);
    while (clients_.size() >= max_clients_ && !order_.empty()) {
      clients_.erase(order_.front());
      order_.pop_front();
    }
    clients_[c.client_id] = c;
    order_.push_back(c.client_id);
  }
  return Registered{std::move(c), now};
}

Result<OAuthClient> DynamicClientRegistry::Find(const std::string& client_id) {
  MutexLock lock(mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return NotFoundError("unknown client");
  return it->second;
}

Result<OAuthClient> MetadataDocumentClientDirectory::Find(const std::string& client_id) {
  auto registered = registered_.Find(client_id);
  if (registered.ok() && !registered->redirect_uris.empty()) return registered;
  if (!registered.ok() && registered.status().code() != StatusCode::kNotFound) return registered;
  if (!IsClientIdUrl(client_id)) return NotFoundError("unknown client");
  ASSIGN_OR_RETURN(ClientMetadata doc, fetcher_.Fetch(client_id));
  if (!doc.token_endpoint_auth_method.empty() && doc.token_endpoint_auth_method != "none") {
    return InvalidArgumentError(
        "client metadata document: token_endpoint_auth_method must be \"none\" (public "
        "clients only)");
  }
  OAuthClient c;
  c.client_id = client_id;
  c.name = !doc.client_name.empty() ? doc.client_name : client_id;
  c.redirect_uris = doc.redirect_uris;
  c.logo_uri = doc.logo_uri;
  c.client_uri = doc.client_uri;
  if (registered.ok()) c.agent = registered->agent;  // the operator's mapping to an agent
  return c;
}

Result<OAuthClient> StaticClientDirectory::Find(const std::string& client_id) {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return NotFoundError("unknown client");
  return it->second;
}

}  // namespace custody::identity
